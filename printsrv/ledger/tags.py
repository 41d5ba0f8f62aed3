"""The ledger's audit tags (registered in :mod:`printsrv.audit_tags`) by movement kind."""

from __future__ import annotations

from printsrv.audit_tags import LedgerTag

__all__ = ["MOVEMENT_TAGS", "LedgerTag"]  # LedgerTag's home is printsrv.audit_tags

#: Tag of each blank movement kind.
MOVEMENT_TAGS = {
    "receive": LedgerTag.BLANK_RECEIVE,
    "transfer": LedgerTag.BLANK_TRANSFER,
    "load": LedgerTag.BLANK_LOAD,
    "unload": LedgerTag.BLANK_UNLOAD,
    "reserve": LedgerTag.BLANK_RESERVE,
    "release": LedgerTag.BLANK_RELEASE,
    "issue": LedgerTag.BLANK_ISSUE,
    "spoil": LedgerTag.BLANK_SPOIL,
    "destroy": LedgerTag.BLANK_DESTROY,
    "adjust": LedgerTag.BLANK_ADJUST,
    "accept": LedgerTag.BLANK_ACCEPT,
}
