"""Intake of signed approved-record batches (``ktp-approved-batch/1``)."""
