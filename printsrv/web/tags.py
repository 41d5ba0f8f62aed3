"""Audit tags written by the web app (registered in :mod:`printsrv.audit_tags`)."""

from __future__ import annotations

from printsrv.audit_tags import WebTag

__all__ = ["WebTag"]
