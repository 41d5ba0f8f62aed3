"""The handover desk (*loket pengambilan*): find a ready card, receive it at the desk, hand it
over with the collector's details and signature, print the receipt, follow up the cards nobody
collects. Views validate input and call :mod:`printsrv.desk.service`."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from printsrv.desk import service as desk
from printsrv.errors import StateError
from printsrv.models import Office, Record, User
from printsrv.web import db, read_db
from printsrv.web import services as svc
from printsrv.web.guard import current_user, permission

bp = Blueprint("desk", __name__, url_prefix="/desk")


class FindForm(FlaskForm):
    q = StringField("q", validators=[DataRequired(), Length(min=3, max=64)])


class HandoverForm(FlaskForm):
    relation = StringField("relation", validators=[DataRequired(), Length(max=20)])
    collector_name = StringField("collector_name", validators=[DataRequired(), Length(max=120)])
    collector_nik = StringField("collector_nik", validators=[DataRequired(), Length(max=16)])
    authorization = StringField("authorization", validators=[Optional(), Length(max=80)])
    witness = StringField("witness", validators=[Optional(), Length(max=64)])
    note = TextAreaField("note", validators=[Optional(), Length(max=500)])
    signature = HiddenField("signature", validators=[Optional(), Length(max=300_000)])


class ReasonForm(FlaskForm):
    reason = TextAreaField("reason", validators=[DataRequired(), Length(max=500)])


def _user() -> User:
    user = current_user()
    assert user is not None
    return user


def _record(record_id: int, *, write: bool = False) -> Record:
    return svc.get_visible_record(db() if write else read_db(), _user().office, record_id)


@bp.route("/", methods=["GET", "POST"])
@permission("desk.handover")
def index() -> Any:
    """Search by NIK, name or the reference from the SMS (posted: no NIK in URLs)."""
    form = FindForm()
    found: list[Record] = []
    if form.validate_on_submit():
        offices = svc.visible_office_ids(read_db(), _user().office)
        found = desk.find_ready(read_db(), offices, form.q.data or "")
        if not found:
            flash(_("Tidak ada kartu siap ambil yang cocok."), "warn")
    return render_template("desk.html", form=form, found=found, reason_form=ReasonForm())


@bp.route("/<int:record_id>/arrive", methods=["POST"])
@permission("desk.handover")
def arrive(record_id: int) -> Any:
    if not FlaskForm().validate_on_submit():
        abort(400)
    rec = _record(record_id, write=True)
    desk.arrive(db(), rec, actor=_user().username)
    flash(_("Kartu %(rid)s diterima di loket.", rid=rec.request_id), "ok")
    return redirect(url_for("desk.handover", record_id=rec.id))


def _signature(data: str | None) -> bytes | None:
    if not data:
        return None
    prefix = "data:image/png;base64,"
    if not data.startswith(prefix):
        raise desk.InvalidCollection("signature", "a PNG image")
    try:
        return base64.b64decode(data[len(prefix):], validate=True)
    except binascii.Error as exc:
        raise desk.InvalidCollection("signature", "a PNG image") from exc


@bp.route("/<int:record_id>", methods=["GET", "POST"])
@permission("desk.handover")
def handover(record_id: int) -> Any:
    """The handover form; on success, the receipt."""
    user = _user()
    rec = _record(record_id, write=True)
    form = HandoverForm()
    error: str | None = None
    field: str | None = None
    if form.validate_on_submit():
        try:
            collector = desk.Collector(
                name=form.collector_name.data or "",
                relation=form.relation.data or "",
                nik=(form.collector_nik.data or "").strip(),
                authorization=form.authorization.data or "",
                signature_png=_signature(form.signature.data),
                note=form.note.data or "",
            )
            collection = desk.hand_over(db(), current_app.config["PRINTSRV_SETTINGS"], rec,
                                        collector, officer=user.username,
                                        witness=form.witness.data)  # fmt: skip
        except desk.InvalidCollection as exc:
            error, field = str(exc), exc.field
        except StateError as exc:
            error = str(exc)
        else:
            flash(_("Kartu %(rid)s diserahkan. Tanda terima %(no)s.", rid=rec.request_id,
                    no=collection.receipt_number), "ok")  # fmt: skip
            return redirect(url_for("desk.receipt", collection_id=collection.id))
    elif form.is_submitted():
        field = next(iter(form.errors), None)
        error = "; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items())
    from printsrv.notify.sender import pickup_day_of

    return render_template(
        "desk_handover.html", rec=rec, form=form, error=error, field=field,
        relations=desk.RELATIONS,
        pickup_day=pickup_day_of(read_db(), rec.request_id),
        collections=desk.collections_of(read_db(), rec),
    ), (422 if error else 200)  # fmt: skip


@bp.route("/receipts/<int:collection_id>")
@permission("desk.handover")
def receipt(collection_id: int) -> Any:
    """The handover's receipt page, with a link to its PDF."""
    collection = _collection(collection_id)
    return render_template("desk_receipt.html", c=collection, rec=_record(collection.record_id))


@bp.route("/receipts/<int:collection_id>.pdf")
@permission("desk.handover")
def receipt_pdf(collection_id: int) -> Any:
    from printsrv.web.documents import collection_receipt_pdf

    collection = _collection(collection_id)
    rec = _record(collection.record_id)
    office = read_db().get_one(Office, rec.office_id)
    pdf = collection_receipt_pdf(collection, rec, office)
    name = collection.receipt_number.replace("/", "-")
    return current_app.response_class(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}.pdf"'})  # fmt: skip


def _collection(collection_id: int) -> Any:
    from printsrv.desk.models import CardCollection

    collection = read_db().get(CardCollection, collection_id)
    if collection is None:
        abort(404)
    _record(collection.record_id)  # 404 outside the user's offices
    return collection


@bp.route("/follow-up")
@permission("desk.handover")
def follow_up() -> Any:
    """Cards not collected within the office's days: remind by SMS, or back to storage."""
    offices = svc.visible_office_ids(read_db(), _user().office)
    rows = desk.uncollected(read_db(), current_app.config["PRINTSRV_SETTINGS"], offices)
    return render_template("desk_follow_up.html", rows=rows, form=ReasonForm())


@bp.route("/<int:record_id>/remind", methods=["POST"])
@permission("desk.handover")
def remind(record_id: int) -> Any:
    if not FlaskForm().validate_on_submit():
        abort(400)
    rec = _record(record_id, write=True)
    note = desk.remind(db(), current_app.config["PRINTSRV_SETTINGS"], rec,
                       actor=_user().username)  # fmt: skip
    if note.phone:
        flash(_("Pengingat SMS untuk %(rid)s diantrekan.", rid=rec.request_id), "ok")
    else:
        flash(_("Tidak ada nomor ponsel yang dapat dipakai untuk %(rid)s.",
                rid=rec.request_id), "warn")  # fmt: skip
    return redirect(url_for("desk.follow_up"))


@bp.route("/<int:record_id>/return", methods=["POST"])
@permission("desk.handover")
def back_to_storage(record_id: int) -> Any:
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    rec = _record(record_id, write=True)
    try:
        desk.return_to_storage(db(), rec, actor=_user().username, reason=form.reason.data or "")
    except StateError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Kartu %(rid)s dikembalikan ke gudang.", rid=rec.request_id), "ok")
    return redirect(url_for("desk.follow_up"))


public = Blueprint("suket_verify", __name__)


class VerifyForm(FlaskForm):
    text = TextAreaField("text", validators=[DataRequired(), Length(max=4000)])


@public.route("/verify", methods=["GET", "POST"])
def verify_suket() -> Any:
    """Anyone may check a Suket: paste the text of its QR code (no sign-in)."""
    from printsrv.desk import suket

    form = VerifyForm()
    result = None
    if form.validate_on_submit():
        result = suket.check(current_app.config["PRINTSRV_SETTINGS"], form.text.data or "")
    return render_template("verify.html", form=form, result=result)


class IkdForm(FlaskForm):
    day = StringField("day", validators=[DataRequired(), Length(max=10)])
    office = StringField("office", validators=[DataRequired(), Length(max=16)])
    activations = StringField("activations", validators=[DataRequired(), Length(max=7)])


@bp.route("/ikd", methods=["GET", "POST"])
@permission("ledger.view")
def ikd_page() -> Any:
    """IKD activations of a month beside the blanks received and used; supervisors enter a
    day's figure or upload the office's CSV."""
    from datetime import date

    from flask import request

    from printsrv.desk import ikd
    from printsrv.errors import IntakeError
    from printsrv.localtime import local_date

    user = _user()
    settings = current_app.config["PRINTSRV_SETTINGS"]
    month = request.args.get("month") or local_date(user.office.code).strftime("%Y-%m")
    form = IkdForm()
    problems: list[str] = []
    if request.method == "POST":
        if not svc.can(user, "ikd.enter"):
            abort(403)
        offices = {o.code for o in svc.visible_offices(db(), user.office)}
        upload = request.files.get("csv")
        try:
            if upload is not None and upload.filename:
                text = upload.read(2_000_000).decode("utf-8-sig", errors="replace")
                lines = ikd.parse_csv(text, source=upload.filename)
                source = upload.filename
            elif form.validate_on_submit():
                csv_line = f"{form.day.data},{form.office.data},{form.activations.data}"
                lines = ikd.parse_csv(f"{','.join(ikd.HEADER)}\n{csv_line}\n", source="form")
                source = "form"
            else:
                abort(400)
            count = ikd.record_lines(db(), lines, source=source, actor=user.username,
                                     allowed_offices=offices)  # fmt: skip
            flash(_("%(n)d baris IKD dicatat.", n=count), "ok")
            return redirect(url_for("desk.ikd_page", month=month))
        except IntakeError as exc:
            problems = [str(p) for p in exc.problems] or [str(exc)]
    try:
        months = ikd.month_summary(read_db(), svc.visible_office_ids(read_db(), user.office),
                                   month, target_percent=settings.ikd_target_percent)  # fmt: skip
    except ValueError:
        abort(400)
    return render_template("ikd.html", months=months, month=month, form=form,
                           problems=problems, target=settings.ikd_target_percent,
                           today=date.today().isoformat()), (422 if problems else 200)  # fmt: skip


class SuketForm(FlaskForm):
    head_name = StringField("head_name", validators=[DataRequired(), Length(max=120)])
    head_nip = StringField("head_nip", validators=[DataRequired(), Length(max=32)])
    head_title = StringField("head_title", validators=[Optional(), Length(max=160)])


@bp.route("/records/<int:record_id>/suket", methods=["POST"])
@permission("suket.issue")
def issue_suket(record_id: int) -> Any:
    """A supervisor issues a Surat Keterangan for a queued record while the office has no
    blanks; the answer is its PDF (the photo is decrypted in the token for it, audited)."""
    from printsrv.desk import suket
    from printsrv.keys import KeyStore

    form = SuketForm()
    if not form.validate_on_submit():
        abort(400)
    user = _user()
    rec = _record(record_id, write=True)
    settings = current_app.config["PRINTSRV_SETTINGS"]
    try:
        with KeyStore.open(settings) as keys:
            row = suket.issue(db(), keys, rec, by=user.username,
                              head_name=form.head_name.data or "",
                              head_nip=form.head_nip.data or "",
                              head_title=form.head_title.data
                              or "Kepala Dinas Kependudukan dan Pencatatan Sipil")
            pdf = suket.suket_pdf(db(), keys, row, actor=user.username)
    except (suket.SuketError, StateError) as exc:
        flash(str(exc), "error")
        return redirect(url_for("views.record", record_id=rec.id))
    name = row.number.replace("/", "-")
    return current_app.response_class(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="suket-{name}.pdf"'})  # fmt: skip
