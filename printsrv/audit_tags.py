"""The one registry of audit event tags (``source:subject:action``, Warehouse
``events/tags.py`` style).

Every tag the code writes is a member of one of the enums below, one per writer; :data:`ALL_TAGS`
is their union. The audit page has an Indonesian and an English sentence for each
(:func:`printsrv.web.labels.event_sentence`), and ``tests/foundation/test_audit_tags.py`` checks
both: a new tag is added here first. This module imports nothing of the application, so the
daemon, the web app and the ledger can all use it.
"""

from __future__ import annotations

import enum


class AuditTag(enum.StrEnum):
    """The application core: intake, records, offices, keys, the database."""

    SYSTEM_DATABASE_UPGRADE = "system:database:upgrade"
    SYSTEM_KEYS_CREATE = "system:keys:create"
    INTAKE_BATCH_IMPORT = "intake:batch:import"
    INTAKE_BATCH_REJECT = "intake:batch:reject"
    INTAKE_RECORD_IMPORT = "intake:record:import"
    INTAKE_RECORD_HOLD = "intake:record:hold"
    RECORD_STATE_CHANGE = "record:record:state_change"
    RECORD_MEDIA_PURGE = "record:media:purge"
    RECORD_MEDIA_DECRYPT = "record:media:decrypt"
    OFFICE_OFFICE_CREATE = "admin:office:create"
    USER_USER_CREATE = "admin:user:create"


class OpsTag(enum.StrEnum):
    """Operations: restoring a backup, print holds, the checkpoint file."""

    BACKUP_RESTORE = "ops:backup:restore"
    CHECKPOINTS_SET_ASIDE = "ops:checkpoints:set_aside"
    HOLD_ACKNOWLEDGE = "ops:hold:acknowledge"


class LedgerTag(enum.StrEnum):
    """The ledger of blanks and consumables."""

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
    BLANK_ACCEPT = "ledger:blank:accept"
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
    RIBBON_ACCEPT = "ledger:ribbon:accept"
    RIBBON_FINISH = "ledger:ribbon:finish"
    RIBBON_USAGE = "ledger:ribbon:usage"


class StationTag(enum.StrEnum):
    """A print station: its runs, pauses and each card's fate."""

    START = "station:station:start"
    STOP = "station:station:stop"
    PAUSE = "station:station:pause"
    RESUME = "station:station:resume"
    BATCH_REQUEST = "station:station:batch_request"
    ISSUE = "station:card:issue"
    SPOIL = "station:card:spoil"
    RELEASE = "station:card:release"
    RECOVER = "station:card:recover"


class WebTag(enum.StrEnum):
    """The web app and its API."""

    LOGIN_OK = "web:session:login"
    LOGIN_FAIL = "web:session:login_failed"
    LOCKED = "web:session:locked"
    LOGOUT = "web:session:logout"
    TOTP_ENROL = "web:user:totp_enrol"
    TOTP_RESET = "admin:user:totp_reset"
    ROLE_CHANGE = "admin:user:role_change"
    SESSIONS_END = "admin:user:sessions_end"
    USER_CREATE = "admin:user:create"
    TOKEN_CREATE = "admin:token:create"
    TOKEN_REVOKE = "admin:token:revoke"
    QUEUE_VIEW = "web:queue:view"
    HELD_VIEW = "web:held:view"
    RECORD_VIEW = "web:record:view"
    RECORD_RELEASE = "web:record:release"
    RECORD_REJECT = "web:record:reject"
    AUDIT_VIEW = "web:audit:view"
    REPRINT_REQUEST = "web:reprint:request"
    REPRINT_APPROVE = "web:reprint:approve"
    REPRINT_REJECT = "web:reprint:reject"
    EXPORT = "web:export:download"
    STOCK_VIEW = "web:stock:view"
    DOCUMENT_DOWNLOAD = "web:document:download"
    ANOMALY_VIEW = "web:anomaly:view"
    STATION_RESUME = "web:station:resume"
    STATION_BATCH = "web:station:batch"
    API_RECORD_VIEW = "api:record:view"
    API_BATCH_IMPORT = "api:batch:import"
    API_STATS_VIEW = "api:stats:view"


class DeskTag(enum.StrEnum):
    """The pickup desk: cards received and handed over, reminders, Suket, IKD counts."""

    CARD_ARRIVE = "desk:card:arrive"
    CARD_HANDOVER = "desk:card:handover"
    CARD_RETURN = "desk:card:return"
    CARD_REMIND = "desk:card:remind"
    SUKET_ISSUE = "desk:suket:issue"
    SUKET_REVOKE = "desk:suket:revoke"
    IKD_IMPORT = "desk:ikd:import"


class SyncTag(enum.StrEnum):
    """The kecamatan sync: nodes enrolled, approved, revoked; records handed to a node,
    recalled and released."""

    NODE_ENROL = "sync:node:enrol"
    NODE_APPROVE = "sync:node:approve"
    NODE_REVOKE = "sync:node:revoke"
    RECORD_ASSIGN = "sync:record:assign"
    RECORD_RECALL = "sync:record:recall"
    RECORD_RELEASE = "sync:record:release"
    NODE_LOST = "sync:node:lost"
    FATE_SETTLE = "sync:fate:settle"
    STOCK_TRANSFER = "sync:stock:transfer"  # blanks and ribbons handed to a node (BAST)
    USERS_SYNC = "sync:user:update"  # a node brought its office's users up to the server's
    LEDGER_MISMATCH = "sync:blank:reject"  # a node blank movement the server's copy refused
    AUDIT_REJECT = "sync:audit:reject"  # an audit upload signed by a key not the node's
    AUDIT_KEY_PIN = "sync:keys:accept"  # a node enrolled before 0035: its key on first sight
    RIBBON_MISMATCH = "sync:ribbon:reject"  # a node roll movement the server's copy refused
    MEDIA_SHRED = "sync:media:purge"  # a node confirmed it crypto-shredded a record's biometrics


#: Every enum of tags; a new writer's enum is added here.
TAG_ENUMS: tuple[type[enum.StrEnum], ...] = (
    AuditTag, OpsTag, LedgerTag, StationTag, WebTag, DeskTag, SyncTag,
)

#: Every registered tag.
ALL_TAGS: frozenset[str] = frozenset(str(tag) for tags in TAG_ENUMS for tag in tags)


def is_registered(tag: str) -> bool:
    """Whether ``tag`` is a registered audit event tag."""
    return tag in ALL_TAGS
