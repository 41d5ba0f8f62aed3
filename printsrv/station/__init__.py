"""The station daemon: one CUPS queue + one PC/SC reader + a profile + an office, making cards.

Modules: :mod:`.journal` (the per-card intent journal), :mod:`.claim` (leases on queued
records), :mod:`.daemon` (the loop), :mod:`.recovery` (start-up reconciliation),
:mod:`.devices` (building printers and encoders), :mod:`.stock` (the adapter to the ledger).
"""
