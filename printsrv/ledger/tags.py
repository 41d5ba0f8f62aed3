"""Audit tags of the ledger (``source:subject:action``)."""

from __future__ import annotations

import enum


class LedgerTag(enum.StrEnum):
    BLANK_RECEIVE = "ledger:blank:receive"
    BLANK_TRANSFER = "ledger:blank:transfer"
    BLANK_LOAD = "ledger:blank:load"
    BLANK_UNLOAD = "ledger:blank:unload"
    BLANK_RESERVE = "ledger:blank:reserve"
    BLANK_RELEASE = "ledger:blank:release"
    BLANK_ISSUE = "ledger:blank:issue"
    BLANK_SPOIL = "ledger:blank:spoil"
    BLANK_DESTROY = "ledger:blank:destroy"
    BLANK_ADJUST = "ledger:blank:adjust"
    HANDOVER_CREATE = "ledger:handover:create"
    DESTRUCTION_CREATE = "ledger:destruction:create"
    ADJUSTMENT_REQUEST = "ledger:adjustment:request"
    ADJUSTMENT_APPROVE = "ledger:adjustment:approve"
    ADJUSTMENT_REJECT = "ledger:adjustment:reject"
    STATION_CREATE = "ledger:station:create"
    STATION_UPDATE = "ledger:station:update"
    RIBBON_RECEIVE = "ledger:ribbon:receive"
    RIBBON_LOAD = "ledger:ribbon:load"
    RIBBON_TRANSFER = "ledger:ribbon:transfer"
    RIBBON_FINISH = "ledger:ribbon:finish"
    RIBBON_USAGE = "ledger:ribbon:usage"


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
}
