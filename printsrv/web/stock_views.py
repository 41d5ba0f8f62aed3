"""Stock forms for supervisors and operators, the ledger's documents (PDF), and the auditors'
anomaly flags. Views validate input and call :mod:`printsrv.web.stock_services`; a refused
ledger operation is rolled back and shown as a message on the page it came from."""

from __future__ import annotations

import os
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Optional

from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    AdjustmentKind,
    BlankState,
    ConsumableKind,
    SpoilCause,
)
from printsrv.localtime import local_date
from printsrv.models import Office, User
from printsrv.offices import visible_offices
from printsrv.products import DEFAULT_STOCK_TYPE, STOCK_TYPES
from printsrv.web import anomalies, db, labels, read_db
from printsrv.web import ledger_services as ls
from printsrv.web import services as svc
from printsrv.web import stock_services as ss
from printsrv.web.documents import destruction_pdf, handover_pdf
from printsrv.web.guard import current_user, permission
from printsrv.web.tags import WebTag

bp = Blueprint("stock", __name__)

_SERIAL = [DataRequired(), Length(max=32)]
_NUMBER = [DataRequired(), Length(max=80)]


class SignatoriesMixin:
    """Who hands over (*Yang menyerahkan*) and who receives (*Yang menerima*): name and NIP."""

    giver_name = StringField("giver_name", validators=[Optional(), Length(max=80)])
    giver_nip = StringField("giver_nip", validators=[Optional(), Length(max=30)])
    receiver_name = StringField("receiver_name", validators=[Optional(), Length(max=80)])
    receiver_nip = StringField("receiver_nip", validators=[Optional(), Length(max=30)])

    def people(self) -> dict[str, ss.Person]:
        return {
            "giver": ss.Person(self.giver_name.data or "", self.giver_nip.data or ""),
            "receiver": ss.Person(self.receiver_name.data or "", self.receiver_nip.data or ""),
        }


class ReceiveForm(SignatoriesMixin, FlaskForm):
    office = StringField("office", validators=[DataRequired(), Length(max=8)])
    first = StringField("first", validators=_SERIAL)
    last = StringField("last", validators=_SERIAL)
    handover_number = StringField("handover_number", validators=_NUMBER)
    from_party = StringField("from_party", validators=[DataRequired(), Length(max=200)])
    carton = StringField("carton", validators=[Optional(), Length(max=64)])
    document_date = DateField("document_date", validators=[Optional()])
    note = TextAreaField("note", validators=[Optional(), Length(max=500)])
    stock_type = StringField("stock_type", validators=[Optional(), AnyOf(STOCK_TYPES)])
    #: The blank stock types offered (the form's select; the first is the default).
    stock_types = STOCK_TYPES


class TransferForm(SignatoriesMixin, FlaskForm):
    from_office = StringField("from_office", validators=[DataRequired(), Length(max=8)])
    to_office = StringField("to_office", validators=[DataRequired(), Length(max=8)])
    serials = TextAreaField("serials", validators=[DataRequired(), Length(max=20000)])
    handover_number = StringField("handover_number", validators=_NUMBER)
    document_date = DateField("document_date", validators=[Optional()])
    note = TextAreaField("note", validators=[Optional(), Length(max=500)])


class SpoilForm(FlaskForm):
    serial = StringField("serial", validators=_SERIAL)
    cause = StringField("cause", validators=[AnyOf([c.value for c in ss.MANUAL_CAUSES])])
    note = TextAreaField("note", validators=[DataRequired(), Length(max=500)])


class RibbonReceiveForm(FlaskForm):
    office = StringField("office", validators=[DataRequired(), Length(max=8)])
    kind = StringField("kind", validators=[AnyOf([k.value for k in ConsumableKind])])
    serial = StringField("serial", validators=[DataRequired(), Length(max=64)])
    type = StringField("type", validators=[DataRequired(), Length(max=32)])
    capacity = IntegerField("capacity", validators=[DataRequired(), NumberRange(1, 100000)])
    reference = StringField("reference", validators=[Optional(), Length(max=120)])


class RibbonLoadForm(FlaskForm):
    station = IntegerField("station", validators=[DataRequired()])
    kind = StringField("kind", validators=[AnyOf([k.value for k in ConsumableKind])])
    serial = StringField("serial", validators=[DataRequired(), Length(max=64)])


class RibbonTransferForm(FlaskForm):
    kind = StringField("kind", validators=[AnyOf([k.value for k in ConsumableKind])])
    serial = StringField("serial", validators=[DataRequired(), Length(max=64)])
    to_office = StringField("to_office", validators=[DataRequired(), Length(max=8)])
    handover_number = StringField("handover_number", validators=_NUMBER)


class AdjustmentForm(FlaskForm):
    office = StringField("office", validators=[DataRequired(), Length(max=8)])
    kind = StringField("kind", validators=[AnyOf([k.value for k in AdjustmentKind])])
    serials = TextAreaField("serials", validators=[DataRequired(), Length(max=20000)])
    target_state = StringField(
        "target_state", validators=[Optional(), AnyOf(["in_stock", "in_hopper"])]
    )
    station = IntegerField("station", validators=[Optional()])
    reason = TextAreaField("reason", validators=[DataRequired(), Length(max=500)])


class DecisionForm(FlaskForm):
    note = TextAreaField("note", validators=[Optional(), Length(max=500)])


class DestructionForm(FlaskForm):
    office = StringField("office", validators=[DataRequired(), Length(max=8)])
    number = StringField("number", validators=_NUMBER)
    officer_1 = StringField("officer_1", validators=[DataRequired(), Length(max=80)])
    officer_1_nip = StringField("officer_1_nip", validators=[DataRequired(), Length(max=30)])
    officer_2 = StringField("officer_2", validators=[DataRequired(), Length(max=80)])
    officer_2_nip = StringField("officer_2_nip", validators=[DataRequired(), Length(max=30)])
    witness = StringField("witness", validators=[DataRequired(), Length(max=80)])
    witness_nip = StringField("witness_nip", validators=[DataRequired(), Length(max=30)])
    witness_role = StringField("witness_role", validators=[Optional(), Length(max=120)])
    place = StringField("place", validators=[Optional(), Length(max=200)])
    document_date = DateField("document_date", validators=[Optional()])
    serials = TextAreaField("serials", validators=[Optional(), Length(max=20000)])


def _user() -> User:
    user = current_user()
    assert user is not None
    return user


def _refused(exc: Exception, endpoint: str) -> Any:
    """Undo whatever the refused operation wrote, show why, go back to the form's page."""
    db().rollback()
    flash(_("Ditolak: %(reason)s", reason=str(exc)), "error")
    return redirect(url_for(endpoint), code=303)


def _invalid(form: FlaskForm, endpoint: str) -> Any:
    fields = ", ".join(sorted(form.errors))
    flash(_("Isian tidak lengkap atau tidak valid: %(fields)s", fields=fields), "error")
    return redirect(url_for(endpoint), code=303)


def _stations(user: User) -> list[Any]:
    return ls.visible_stations(read_db(), user.office)


# ---------------------------------------------------------------------------- pages


@bp.route("/stock")
@permission("stock.spoil")
def index() -> Any:
    """The stock page: the forms the user's role may use, spoiled blanks awaiting
    destruction, and the latest documents."""
    user = _user()
    handovers, destructions = ss.visible_documents(read_db(), user)
    svc.audit_view(db(), user, WebTag.STOCK_VIEW, details={"page": "stock"})
    return render_template(
        "stock.html",
        offices=visible_offices(read_db(), user.office),
        targets=ss.transfer_targets(read_db(), user),
        stations=_stations(user),
        spoiled=ss.spoiled_on_hand(read_db(), user),
        on_hand=ss.stock_on_hand(read_db(), user),
        handovers=handovers[:10],
        destructions=destructions[:10],
        receive=ReceiveForm(),
        transfer=TransferForm(),
        spoil=SpoilForm(),
        ribbon_receive=RibbonReceiveForm(),
        ribbon_load=RibbonLoadForm(),
        causes={c: labels.label("cause", c) for c in labels.CAUSE_ID},
        manual_causes=[c.value for c in ss.MANUAL_CAUSES],
    )


@bp.route("/stock/receive", methods=["POST"])
@permission("stock.receive")
def receive() -> Any:
    user, form = _user(), ReceiveForm()
    if not form.validate_on_submit():
        return _invalid(form, "stock.index")
    try:
        record = ss.receive_blanks(
            db(), user, office_code=form.office.data or "", first=form.first.data or "",
            last=form.last.data or "", handover_number=form.handover_number.data or "",
            from_party=form.from_party.data or "", carton=form.carton.data,
            document_date=form.document_date.data, note=form.note.data,
            stock_type=form.stock_type.data or DEFAULT_STOCK_TYPE, **form.people(),
        )
    except LedgerError as exc:
        return _refused(exc, "stock.index")
    flash(_("Diterima %(n)d blangko dengan BAST %(no)s.", n=record.count, no=record.number), "ok")
    return redirect(url_for("stock.index"), code=303)


@bp.route("/stock/transfer", methods=["POST"])
@permission("stock.transfer")
def transfer() -> Any:
    user, form = _user(), TransferForm()
    if not form.validate_on_submit():
        return _invalid(form, "stock.index")
    try:
        record = ss.transfer_blanks(
            db(), user, from_office_code=form.from_office.data or "",
            to_office_code=form.to_office.data or "",
            serials=ss.parse_serials(form.serials.data or ""),
            handover_number=form.handover_number.data or "",
            document_date=form.document_date.data, note=form.note.data, **form.people(),
        )
    except LedgerError as exc:
        return _refused(exc, "stock.index")
    flash(_("Dipindahkan %(n)d blangko dengan BAST %(no)s.", n=record.count, no=record.number),
          "ok")
    return redirect(url_for("stock.index"), code=303)


@bp.route("/stock/spoil", methods=["POST"])
@permission("stock.spoil")
def spoil() -> Any:
    user, form = _user(), SpoilForm()
    if not form.validate_on_submit():
        return _invalid(form, "stock.index")
    try:
        blank = ss.spoil_card(
            db(), user, serial=form.serial.data or "", cause=SpoilCause(form.cause.data),
            note=form.note.data or "",
        )
    except LedgerError as exc:
        return _refused(exc, "stock.index")
    flash(_("Blangko %(serial)s dicatat rusak.", serial=blank.serial), "ok")
    return redirect(url_for("stock.index"), code=303)


@bp.route("/stock/ribbons/receive", methods=["POST"])
@permission("stock.receive")
def ribbon_receive() -> Any:
    user, form = _user(), RibbonReceiveForm()
    if not form.validate_on_submit():
        return _invalid(form, "stock.index")
    try:
        item = ss.receive_ribbon(
            db(), user, office_code=form.office.data or "", kind=ConsumableKind(form.kind.data),
            serial=form.serial.data or "", type_=form.type.data or "",
            capacity=form.capacity.data or 0, reference=form.reference.data,
        )
    except LedgerError as exc:
        return _refused(exc, "stock.index")
    flash(_("Gulungan %(serial)s diterima.", serial=item.serial), "ok")
    return redirect(url_for("stock.index"), code=303)


@bp.route("/stock/ribbons/load", methods=["POST"])
@permission("stock.receive")
def ribbon_load() -> Any:
    user, form = _user(), RibbonLoadForm()
    if not form.validate_on_submit():
        return _invalid(form, "stock.index")
    try:
        item = ss.load_ribbon(
            db(), user, station_id=form.station.data or 0, kind=ConsumableKind(form.kind.data),
            serial=form.serial.data or "",
        )
    except LedgerError as exc:
        return _refused(exc, "stock.index")
    flash(_("Gulungan %(serial)s dipasang.", serial=item.serial), "ok")
    return redirect(url_for("stock.index"), code=303)


@bp.route("/stock/ribbons/transfer", methods=["POST"])
@permission("stock.transfer")
def ribbon_transfer() -> Any:
    user, form = _user(), RibbonTransferForm()
    if not form.validate_on_submit():
        return _invalid(form, "stock.index")
    try:
        item = ss.transfer_ribbon(
            db(), user, kind=ConsumableKind(form.kind.data), serial=form.serial.data or "",
            to_office_code=form.to_office.data or "",
            handover_number=form.handover_number.data or "",
        )
    except LedgerError as exc:
        return _refused(exc, "stock.index")
    flash(_("Gulungan %(serial)s dipindahkan.", serial=item.serial), "ok")
    return redirect(url_for("stock.index"), code=303)


@bp.route("/stock/adjustments")
@permission("adjustment.request")
def adjustments() -> Any:
    user = _user()
    pending = ss.pending_adjustments(read_db(), user)
    svc.audit_view(db(), user, WebTag.STOCK_VIEW,
                   details={"page": "adjustments", "pending": [a.id for a in pending]})
    offices = {o.id: o.code for o in visible_offices(read_db(), user.office)}
    return render_template(
        "adjustments.html", pending=pending, offices=offices, form=AdjustmentForm(),
        decision=DecisionForm(), stations=_stations(user),
        office_list=visible_offices(read_db(), user.office),
    )


@bp.route("/stock/adjustments", methods=["POST"])
@permission("adjustment.request")
def adjustment_request() -> Any:
    user, form = _user(), AdjustmentForm()
    if not form.validate_on_submit():
        return _invalid(form, "stock.adjustments")
    try:
        target = BlankState(form.target_state.data) if form.target_state.data else None
        item = ss.request_adjustment(
            db(), user, office_code=form.office.data or "", kind=AdjustmentKind(form.kind.data),
            serials=ss.parse_serials(form.serials.data or ""), reason=form.reason.data or "",
            target_state=target, station_id=form.station.data,
        )
    except LedgerError as exc:
        return _refused(exc, "stock.adjustments")
    flash(_("Penyesuaian ADJ-%(id)d menunggu persetujuan orang lain.", id=item.id), "ok")
    return redirect(url_for("stock.adjustments"), code=303)


@bp.route("/stock/adjustments/<int:adjustment_id>/<any(approve, reject):decision>",
          methods=["POST"])
@permission("adjustment.approve")
def adjustment_decide(adjustment_id: int, decision: str) -> Any:
    user, form = _user(), DecisionForm()
    if not form.validate_on_submit():
        return _invalid(form, "stock.adjustments")
    try:
        ss.decide_adjustment(db(), user, adjustment_id, approve=decision == "approve",
                             note=form.note.data or "")
    except LedgerError as exc:
        return _refused(exc, "stock.adjustments")
    flash(_("Keputusan dicatat."), "ok")
    return redirect(url_for("stock.adjustments"), code=303)


@bp.route("/stock/destruction", methods=["GET", "POST"])
@permission("destruction.record")
def destruction() -> Any:
    user, form = _user(), DestructionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _invalid(form, "stock.destruction")
        try:
            record = ss.destroy_spoiled(
                db(), user, office_code=form.office.data or "", number=form.number.data or "",
                officer_1=ss.Person(form.officer_1.data or "", form.officer_1_nip.data or ""),
                officer_2=ss.Person(form.officer_2.data or "", form.officer_2_nip.data or ""),
                witness=ss.Person(form.witness.data or "", form.witness_nip.data or ""),
                witness_role=form.witness_role.data or "", place=form.place.data or "",
                serials=ss.parse_serials(form.serials.data or "") or None,
                document_date=form.document_date.data,
            )
        except LedgerError as exc:
            return _refused(exc, "stock.destruction")
        flash(_("Berita Acara Pemusnahan %(no)s dicatat: %(n)d blangko.", no=record.number,
                n=record.count), "ok")
        return redirect(url_for("stock.documents"), code=303)
    return render_template(
        "destruction.html", form=form, offices=visible_offices(read_db(), user.office),
        spoiled=ss.spoiled_on_hand(read_db(), user), today=local_date(user.office.code).isoformat(),
    )


@bp.route("/ledger/documents")
@permission("ledger.view")
def documents() -> Any:
    user = _user()
    handovers, destructions = ss.visible_documents(read_db(), user)
    codes = {o.id: o.code for o in read_db().query(Office)}
    return render_template("documents.html", handovers=handovers, destructions=destructions,
                           codes=codes)


def _pdf(data: bytes, name: str) -> Response:
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.route("/ledger/documents/destruction/<int:record_id>.pdf")
@permission("ledger.view")
def destruction_document(record_id: int) -> Any:
    """The Berita Acara Pemusnahan as PDF (an export: audited)."""
    user = _user()
    record = ss.get_visible_destruction(read_db(), user, record_id)
    office = read_db().get_one(Office, record.office_id)
    data = destruction_pdf(record, office, ss.destruction_contents(read_db(), record))
    svc.audit_view(db(), user, WebTag.DOCUMENT_DOWNLOAD, subject=record.number,
                   office_code=office.code, details={"document": "berita_acara_pemusnahan"})
    return _pdf(data, f"ba-pemusnahan-{record.id}.pdf")


@bp.route("/ledger/documents/handover/<int:record_id>.pdf")
@permission("ledger.view")
def handover_document(record_id: int) -> Any:
    """The Berita Acara Serah Terima as PDF (an export: audited)."""
    user = _user()
    record = ss.get_visible_handover(read_db(), user, record_id)
    to_office = read_db().get_one(Office, record.to_office_id)
    from_office = read_db().get(Office, record.from_office_id) if record.from_office_id else None
    data = handover_pdf(record, to_office, from_office, ss.handover_contents(read_db(), record))
    svc.audit_view(db(), user, WebTag.DOCUMENT_DOWNLOAD, subject=record.number,
                   office_code=to_office.code, details={"document": "berita_acara_serah_terima"})
    return _pdf(data, f"ba-serah-terima-{record.id}.pdf")


def idle_days() -> int:
    """Days after which hopper blanks count as idle: ``?idle_days=``, else the app's
    ``ANOMALY_IDLE_DAYS`` (environment ``PRINTSRV_WEB_IDLE_DAYS``), else 14."""
    arg = request.args.get("idle_days", "")
    if arg.isdigit() and 0 < int(arg) <= 3650:
        return int(arg)
    configured = current_app.config.get("ANOMALY_IDLE_DAYS") or os.environ.get(
        "PRINTSRV_WEB_IDLE_DAYS", "14"
    )
    return int(configured)


@bp.route("/anomalies")
@permission("anomaly.view")
def anomaly_dashboard() -> Any:
    """The auditors' anomaly flags over the user's offices."""
    user = _user()
    days = idle_days()
    report = anomalies.all_flags(
        read_db(), user.office, idle_days=days,
        ikd_target=current_app.config["PRINTSRV_SETTINGS"].ikd_target_percent,
    )
    svc.audit_view(db(), user, WebTag.ANOMALY_VIEW,
                   details={k: len(v) for k, v in report.items()})
    return render_template("anomalies.html", report=report, idle_days=days,
                           rate_charts=_rate_charts(user))


def _rate_charts(user: Any) -> list[Any]:
    """Spoilage rate per station and per operator, each blank stock type apart, with the
    threshold above which the flags above name a subject."""
    from printsrv.web import charts

    out = []
    for title, totals in (
        (_("Tingkat rusak per stasiun"), anomalies.station_totals(read_db(), user.office)),
        (_("Tingkat rusak per operator"), anomalies.operator_totals(read_db(), user.office)),
    ):
        for chart in ls.rate_charts(totals):
            out.append(charts.spoilage_rates(
                [charts.RateBar(*bar) for bar in chart.bars],
                title=f"{title} ({chart.stock_type})", threshold=chart.threshold,
                threshold_label=_("ambang"), median=chart.median, median_label=_("median")))
    return out
