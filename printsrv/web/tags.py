"""Audit tags written by the web app (``source:subject:action``)."""

from __future__ import annotations

import enum


class WebTag(enum.StrEnum):
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
