"""Pages for operators, supervisors and auditors. Views validate input and call services."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from printsrv import audit
from printsrv.errors import NotFound, StateError
from printsrv.models import RecordState, User
from printsrv.web import db, read_db
from printsrv.web import services as svc
from printsrv.web.guard import current_user, login_required, permission
from printsrv.web.labels import record_state
from printsrv.web.ledger_services import card_history
from printsrv.web.tags import WebTag

bp = Blueprint("views", __name__)

STATES = [s.value for s in RecordState]


class SearchForm(FlaskForm):
    q = StringField("q", validators=[Optional(), Length(max=64)])
    state = StringField("state", validators=[Optional(), Length(max=20)])


class AuditFilterForm(FlaskForm):
    """The audit page's filter, posted so that names and subjects stay out of URLs."""

    first = StringField("from", validators=[Optional(), Length(max=10)], name="from")
    last = StringField("to", validators=[Optional(), Length(max=10)], name="to")
    actor = StringField("actor", validators=[Optional(), Length(max=64)])
    tag = StringField("tag", validators=[Optional(), Length(max=80)])
    subject = StringField("subject", validators=[Optional(), Length(max=120)])


class NoteForm(FlaskForm):
    note = TextAreaField("note", validators=[Optional(), Length(max=500)])


class ReasonForm(FlaskForm):
    reason = TextAreaField("reason", validators=[DataRequired(), Length(max=500)])


def _user() -> User:
    user = current_user()
    assert user is not None
    return user


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


@bp.route("/")
@login_required
def home() -> Any:
    user = _user()
    if svc.can(user, "queue.view"):
        return redirect(url_for("views.queue"))
    return redirect(url_for("views.audit_log"))


@bp.route("/queue", methods=["GET", "POST"])
@permission("queue.view")
def queue() -> Any:
    """The queue: GET pages by id and state (no personal data in the URL); POST searches by
    NIK, name or request id."""
    user = _user()
    form = SearchForm()
    state_value = request.args.get("state", "")
    query = ""
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        query, state_value = form.q.data or "", form.state.data or ""
    else:
        form.state.data = state_value
    try:
        state = RecordState(state_value) if state_value else None
    except ValueError:
        abort(400)
    page = svc.search_records(
        read_db(), user.office, query=query, state=state, after=_int_arg("after")
    )
    svc.audit_view(
        db(),
        user,
        WebTag.QUEUE_VIEW,
        details={
            "search": bool(query),
            "state": state_value or None,
            "shown": [r.request_id for r in page.rows],
        },
    )
    return render_template(
        "queue.html", form=form, page=page, state=state_value, query=query, states=STATES
    )


@bp.route("/held")
@permission("queue.view")
def held() -> Any:
    user = _user()
    page = svc.search_records(
        read_db(), user.office, state=RecordState.HELD, after=_int_arg("after"), with_counts=False
    )
    shown = [r.request_id for r in page.rows]
    svc.audit_view(db(), user, WebTag.HELD_VIEW, details={"shown": shown})
    return render_template("held.html", page=page, form=NoteForm())


@bp.route("/records/<int:record_id>")
@permission("record.view")
def record(record_id: int) -> Any:
    """One record with its card history (every audit event about it)."""
    user = _user()
    rec = svc.get_visible_record(read_db(), user.office, record_id)
    history = svc.record_history(read_db(), rec)
    jobs = card_history(read_db(), rec)
    from printsrv.notify.sender import for_record

    messages = for_record(read_db(), rec.request_id)
    from printsrv.desk.models import Suket
    from printsrv.ledger.reports import signatories_from_settings

    sukets = read_db().scalars(select(Suket).where(Suket.record_id == rec.id)
                               .order_by(Suket.id)).all()
    signatories = signatories_from_settings(
        current_app.config["PRINTSRV_SETTINGS"].report_signatories, rec.office.code)
    svc.audit_view(db(), user, WebTag.RECORD_VIEW, subject=rec.request_id,
                   office_code=rec.office.code)
    return render_template(
        "record.html",
        rec=rec,
        history=history,
        jobs=jobs,
        messages=messages,
        sukets=sukets,
        signatories=signatories,
        note_form=NoteForm(),
        reason_form=ReasonForm(),
        allowed=lambda p: svc.can(user, p),
        reprint_blocked=svc.reprint_blocked(read_db(), rec),
    )


@bp.route("/records/<int:record_id>/release", methods=["POST"])
@permission("record.release")
def release(record_id: int) -> Any:
    user = _user()
    form = NoteForm()
    if not form.validate_on_submit():
        abort(400)
    rec = svc.get_visible_record(db(), user.office, record_id)
    svc.release_record(db(), user, rec, form.note.data or "")
    flash(_("Rekaman %(rid)s dilepas ke antrean.", rid=rec.request_id), "ok")
    return redirect(url_for("views.held"))


@bp.route("/records/<int:record_id>/reject", methods=["POST"])
@permission("record.release")
def reject(record_id: int) -> Any:
    user = _user()
    form = NoteForm()
    if not form.validate_on_submit():
        abort(400)
    rec = svc.get_visible_record(db(), user.office, record_id)
    svc.reject_record(db(), user, rec, form.note.data or "")
    flash(_("Rekaman %(rid)s ditolak.", rid=rec.request_id), "ok")
    return redirect(url_for("views.held"))


@bp.route("/records/<int:record_id>/reprint", methods=["POST"])
@permission("reprint.request")
def reprint(record_id: int) -> Any:
    user = _user()
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    rec = svc.get_visible_record(db(), user.office, record_id)
    try:
        svc.request_reprint(db(), user, rec, form.reason.data or "")
    except svc.ReprintNeedsNewRequest:
        flash(_reprint_needs_new_request(rec.request_id), "error")
        return redirect(url_for("views.record", record_id=rec.id), code=303)
    flash(_("Permintaan cetak ulang menunggu persetujuan supervisor."), "ok")
    return redirect(url_for("views.record", record_id=rec.id))


def _reprint_needs_new_request(request_id: str) -> str:
    return _(
        "Cetak ulang %(rid)s tidak dapat dilakukan: data biometrik sudah dihapus setelah masa "
        "cetak ulang berakhir. Diperlukan permohonan cetak baru dari registri (Dukcapil).",
        rid=request_id,
    )


@bp.route("/approvals")
@permission("reprint.approve")
def approvals() -> Any:
    user = _user()
    pending = svc.pending_requests(read_db(), user.office)
    svc.audit_view(db(), user, WebTag.RECORD_VIEW, details={"approvals": [r.id for r in pending]})
    return render_template("approvals.html", pending=pending, form=NoteForm())


@bp.route("/approvals/<int:request_id>/<any(approve, reject):decision>", methods=["POST"])
@permission("reprint.approve")
def decide(request_id: int, decision: str) -> Any:
    user = _user()
    form = NoteForm()
    if not form.validate_on_submit():
        abort(400)
    req = svc.get_visible_request(db(), user.office, request_id)
    try:
        svc.decide_reprint(
            db(), user, req, approve=decision == "approve", note=form.note.data or ""
        )
    except svc.ReprintNeedsNewRequest as exc:
        flash(_reprint_needs_new_request(exc.request_id), "error")
        return redirect(url_for("views.approvals"), code=303)
    flash(_("Keputusan dicatat."), "ok")
    return redirect(url_for("views.approvals"))


@bp.route("/audit", methods=["GET", "POST"])
@permission("audit.view")
def audit_log() -> Any:
    """The audit log of the user's offices and the status of the whole hash chain. GET pages
    by local dates (``from``, ``to``) and event type; POST filters by actor and subject too."""
    user = _user()
    form = AuditFilterForm(meta={"csrf": True})
    if request.method == "POST" and not form.validate_on_submit():
        abort(400)
    fields = ({"from": form.first.data, "to": form.last.data, "actor": form.actor.data,
               "tag": form.tag.data, "subject": form.subject.data}
              if request.method == "POST" else request.args)
    where = _audit_filter(user, fields)
    events = svc.audit_events(read_db(), user.office, before=_int_arg("before"), where=where,
                              limit=200)
    report = audit.verify(read_db())
    svc.audit_view(db(), user, WebTag.AUDIT_VIEW, details={"events": len(events)})
    span = where.last - where.first + timedelta(days=1)

    def dates(first: date, last: date, **more: Any) -> str:
        params: dict[str, Any] = {**more, "from": first.isoformat(), "to": last.isoformat()}
        return url_for("views.audit_log", tag=where.tag or None, **params)

    return render_template(
        "audit.html", events=events, report=report, where=where, form=form,
        tags=svc.audit_tags(read_db(), user.office),
        earlier=dates(where.first - span, where.last - span),
        later=dates(where.first + span, where.last + span),
        more=dates(where.first, where.last, before=events[-1].seq)
        if len(events) == 200 and not (where.actor or where.subject) else None,
    )


def _audit_filter(user: Any, fields: Any) -> svc.AuditFilter:
    """The audit page's filter: ``from``/``to`` local dates (default today at the reader's
    office), ``actor``, ``tag``, ``subject``; a bad date is a 400."""
    from printsrv.localtime import local_date

    today = local_date(user.office.code)
    try:
        first = date.fromisoformat(fields.get("from") or today.isoformat())
        last = date.fromisoformat(fields.get("to") or first.isoformat())
    except ValueError:
        abort(400)
    if last < first:
        first, last = last, first
    return svc.AuditFilter(
        first=first, last=last,
        actor=(fields.get("actor") or "").strip()[:64],
        tag=(fields.get("tag") or "").strip()[:80],
        subject=(fields.get("subject") or "").strip()[:120],
    )


def queue_rows_html(rows: list[svc.QueueRow], record_url: str) -> Markup:
    """The queue table's rows as escaped HTML. Built here rather than in a Jinja loop: the
    queue is the busiest page and fifty rows of template nodes were a third of its cost."""
    out = []
    for r in rows:
        out.append(
            f'<tr><td><a href="{record_url}{r.id}">{escape(r.request_id)}</a></td>'
            f'<td class="mono">{escape(r.nik)}</td><td>{escape(r.nama)}</td>'
            f"<td>{escape(r.card_type)}</td><td>{escape(r.office_code)}</td>"
            f'<td><span class="pill {escape(r.state)}">{escape(record_state(r.state))}</span></td>'
            f"<td>{escape(r.hold_reason or '')}</td></tr>"
        )
    return Markup("\n".join(out))


def register_error_handlers(app: Flask) -> None:
    def _page(code: int, message: str) -> Any:
        if request.path.startswith("/api/"):
            return {"error": message}, code
        return render_template("error.html", code=code, message=message), code

    @app.errorhandler(NotFound)
    def _not_found(_exc: NotFound) -> Any:
        return _page(404, _("Tidak ditemukan."))

    @app.errorhandler(svc.Forbidden)
    def _forbidden(_exc: svc.Forbidden) -> Any:
        return _page(403, _("Tidak diizinkan."))

    @app.errorhandler(StateError)
    def _state(exc: StateError) -> Any:
        return _page(409, str(exc))

    for code, message in (
        (400, _l("Permintaan tidak valid.")),
        (401, _l("Silakan masuk.")),
        (403, _l("Tidak diizinkan.")),
        (404, _l("Tidak ditemukan.")),
        (405, _l("Metode tidak diizinkan.")),
        (413, _l("Berkas terlalu besar.")),
    ):
        app.register_error_handler(code, lambda _e, c=code, m=message: _page(c, str(m)))
