"""The JSON API for stations and integration clients (bearer tokens), with its OpenAPI
document at ``/api/openapi.json``. Personal data travels only in request bodies."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from printsrv.errors import NotFound
from printsrv.models import Record
from printsrv.offices import visible_offices
from printsrv.web import db
from printsrv.web import services as svc
from printsrv.web.models import ApiToken, TokenScope
from printsrv.web.tags import WebTag

bp = Blueprint("api", __name__, url_prefix="/api")
F = TypeVar("F", bound=Callable[..., Any])


def _error(status: int, message: str) -> Any:
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="printsrv"'
    return response


def token_required(*scopes: TokenScope) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            secret = header[7:].strip() if header[:7].lower() == "bearer " else ""
            token = svc.token_for(db(), secret) if secret else None
            if token is None:
                return _error(401, "invalid or missing bearer token")
            if token.scope not in scopes:
                return _error(403, "token scope does not allow this call")
            g.token = token
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def _audit(tag: WebTag, token: ApiToken, subject: str | None, details: dict[str, Any]) -> None:
    from printsrv import audit

    audit.record(
        db(),
        tag,
        actor=f"token:{token.name}",
        office_code=token.office.code,
        subject=subject,
        details=details,
    )


def _record_state(record: Record) -> dict[str, Any]:
    return {
        "request_id": record.request_id,
        "state": record.state.value,
        "hold_reason": record.hold_reason,
        "card_type": record.card_type,
        "office": record.office.code,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
        "issued_at": record.issued_at.isoformat() if record.issued_at else None,
    }


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return _error(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(NotFound)
def _not_found(_exc: NotFound) -> Any:
    return _error(404, "not found")


@bp.route("/openapi.json")
def openapi() -> Any:
    return jsonify(OPENAPI)


@bp.route("/v1/records/<request_id>")
@token_required(TokenScope.STATION, TokenScope.CLIENT)
def record_state(request_id: str) -> Any:
    token: ApiToken = g.token
    if len(request_id) > 64:
        return _error(404, "not found")
    record = svc.get_visible_record_by_request_id(db(), token.office, request_id)
    _audit(WebTag.API_RECORD_VIEW, token, record.request_id, {})
    return jsonify(_record_state(record))


@bp.route("/v1/records/search", methods=["POST"])
@token_required(TokenScope.STATION, TokenScope.CLIENT)
def record_search() -> Any:
    token: ApiToken = g.token
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, "expected a JSON object")
    nik, request_id = body.get("nik"), body.get("request_id")
    query = nik if isinstance(nik, str) and nik else request_id
    if not isinstance(query, str) or not query or len(query) > 64:
        return _error(400, "give 'nik' (16 digits) or 'request_id'")
    if nik is not None and (not isinstance(nik, str) or not (len(nik) == 16 and nik.isdigit())):
        return _error(400, "'nik' must be 16 digits")
    page = svc.search_records(db(), token.office, query=query, limit=100, with_counts=False,
                              by_request_id=not nik)
    records = [
        svc.get_visible_record(db(), token.office, row.id) for row in page.rows
    ]
    _audit(WebTag.API_RECORD_VIEW, token, None, {"shown": [r.request_id for r in records]})
    return jsonify({"records": [_record_state(r) for r in records]})


@bp.route("/v1/stats")
@token_required(TokenScope.STATION, TokenScope.CLIENT)
def stats() -> Any:
    token: ApiToken = g.token
    offices = visible_offices(db(), token.office)
    result = {o.code: svc.state_counts(db(), [o.id], max_age=0) for o in offices}
    _audit(WebTag.API_STATS_VIEW, token, None, {})
    return jsonify({"office": token.office.code, "records_by_state": result})


@bp.route("/v1/batches", methods=["POST"])
@token_required(TokenScope.CLIENT)
def import_batch() -> Any:
    """Import a signed batch sent as a zip body (``application/zip``)."""
    token: ApiToken = g.token
    data = request.get_data(cache=False)
    if not data:
        return _error(400, "empty body: send the batch as application/zip")
    result = svc.import_uploaded_batch(
        db(),
        current_app.config["PRINTSRV_SETTINGS"],
        data,
        accept_valid=request.args.get("accept_valid") == "true",
        actor=f"token:{token.name}",
        office_scope=token.office.code,
    )
    body = result.as_dict()
    body["source"] = "upload"
    body.pop("rejection_report", None)
    if result.outside_scope:
        return jsonify(body), 403
    return jsonify(body), (200 if result.accepted else 422)


_ERR = {"$ref": "#/components/schemas/Error"}
_STATE = {
    "type": "object",
    "required": ["request_id", "state", "card_type", "office"],
    "properties": {
        "request_id": {"type": "string"},
        "state": {
            "type": "string",
            "enum": ["queued", "held", "printing", "issued", "at_desk", "collected", "failed",
                     "cancelled"],
        },
        "hold_reason": {"type": ["string", "null"]},
        "card_type": {"type": "string"},
        "office": {"type": "string"},
        "updated_at": {"type": ["string", "null"]},
        "issued_at": {"type": ["string", "null"]},
    },
}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok}
    for code in codes:
        out[str(code)] = {
            "description": "error",
            "content": {"application/json": {"schema": _ERR}},
        }
    return out


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "ktp-printsrv API", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "RecordState": _STATE,
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/records/{request_id}": {
            "get": {
                "summary": "State of one record (by request id, not personal data)",
                "parameters": [
                    {
                        "name": "request_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 64},
                    }
                ],
                "responses": _responses(
                    {
                        "description": "the record's state",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/RecordState"}
                            }
                        },
                    },
                    401,
                    403,
                    404,
                ),
            }
        },
        "/api/v1/records/search": {
            "post": {
                "summary": "Find records by NIK or request id (personal data in the body only)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "nik": {"type": "string", "pattern": "^[0-9]{16}$"},
                                    "request_id": {"type": "string", "maxLength": 64},
                                },
                            }
                        }
                    },
                },
                "responses": _responses(
                    {
                        "description": "matching records",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["records"],
                                    "properties": {
                                        "records": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/RecordState"},
                                        }
                                    },
                                }
                            }
                        },
                    },
                    400,
                    401,
                    403,
                ),
            }
        },
        "/api/v1/stats": {
            "get": {
                "summary": "Record counts by office and state",
                "responses": _responses(
                    {
                        "description": "counts",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["office", "records_by_state"],
                                    "properties": {
                                        "office": {"type": "string"},
                                        "records_by_state": {
                                            "type": "object",
                                            "additionalProperties": {
                                                "type": "object",
                                                "additionalProperties": {"type": "integer"},
                                            },
                                        },
                                    },
                                }
                            }
                        },
                    },
                    401,
                    403,
                ),
            }
        },
        "/api/sms/report": {
            "get": {
                "summary": "A delivery report from the SMS gateway (the URL we gave it, signed)",
                "security": [],
                "parameters": [
                    {"name": name, "in": "query", "required": True, "schema": schema}
                    for name, schema in (
                        ("m", {"type": "string", "maxLength": 36}),
                        ("sig", {"type": "string", "maxLength": 64}),
                        ("s", {"type": "integer", "enum": [1, 2, 4, 8, 16]}),
                    )
                ],
                "responses": _responses(
                    {
                        "description": "the message's state after the report",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    400,
                    403,
                    404,
                ),
            }
        },
        "/api/v1/batches": {
            "post": {
                "summary": "Import a signed batch (zip); client tokens only",
                "parameters": [
                    {
                        "name": "accept_valid",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/zip": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                "responses": {
                    **_responses(
                        {
                            "description": "imported",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        400,
                        401,
                        403,
                        413,
                    ),
                    "422": {
                        "description": "batch rejected; nothing imported",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                },
            }
        },
    },
}


@bp.route("/sms/report")
def sms_report() -> Any:
    """A delivery report from the SMS gateway (Kannel calls the ``dlr-url`` we gave it with
    ``m`` = our message id, ``sig`` = its signature, ``s`` = the report type). No token: the
    signature proves the URL is one we made."""
    import hmac

    from printsrv.notify.gateways import report_key, report_signature
    from printsrv.notify.sender import apply_report

    settings = current_app.config["PRINTSRV_SETTINGS"]
    message_id = request.args.get("m", "")
    expected = report_signature(report_key(settings), message_id)
    given = request.args.get("sig", "").encode()
    if not message_id or not hmac.compare_digest(expected.encode(), given):
        return _error(403, "bad report signature")
    try:
        report = int(request.args.get("s", ""))
        state = apply_report(settings, message_id, report)
    except ValueError:
        return _error(400, "report type 's' must be one of 1, 2, 4, 8, 16")
    return jsonify({"message": message_id, "state": state.value})
