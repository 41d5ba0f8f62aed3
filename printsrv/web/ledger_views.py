"""Pages over the ledger and stations: the monthly stock report (and its exports), station
state with live card progress, usage and anomaly flags. Imported only when the ledger and
station packages are installed."""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import AnyOf, DataRequired, NumberRange

from printsrv.ledger.errors import LedgerError
from printsrv.offices import visible_offices
from printsrv.products import STOCK_TYPES
from printsrv.web import charts, db, read_db, select_locale
from printsrv.web import ledger_services as ls
from printsrv.web import services as svc
from printsrv.web.guard import current_user, permission
from printsrv.web.labels import card_result, label, pause_reason
from printsrv.web.tags import WebTag

bp = Blueprint("ledger", __name__)
_MONTH = re.compile(r"^\d{4}-\d{2}$")


def _this_month() -> str:
    """The current month at the signed-in user's office."""
    from printsrv.localtime import local_date
    from printsrv.web.guard import current_user

    user = current_user()
    return local_date(user.office.code if user is not None else "35").strftime("%Y-%m")


def _month() -> str:
    month = request.args.get("month") or _this_month()
    if not _MONTH.match(month):
        abort(400)
    return month


def _office_code() -> str:
    user = current_user()
    assert user is not None
    code = request.args.get("office") or user.office.code
    if code not in {o.code for o in visible_offices(read_db(), user.office)}:
        abort(404)
    return code


def _signatories(code: str) -> Any:
    """Who signs the report: the form's fields over the setting ``report_signatories``."""
    from flask import current_app

    from printsrv.ledger.reports import Signatories, signatories_from_settings

    settings = current_app.config["PRINTSRV_SETTINGS"]
    given = Signatories(**{
        f: request.args.get(f, "").strip()[:120] for f in Signatories.__dataclass_fields__
    })
    return given.merged(signatories_from_settings(settings.report_signatories, code))


@bp.route("/ledger")
@permission("ledger.view")
def index() -> Any:
    user = current_user()
    assert user is not None
    month, code = _month(), _office_code()
    try:
        report = ls.stock_report(read_db(), code, month)
    except LedgerError:
        abort(400)
    lang = select_locale()
    usage = ls.daily_usage(read_db(), user.office)
    return render_template(
        "ledger.html",
        usage_chart=charts.daily_cards(
            [(d["day"], d["issued"], d["spoiled"]) for d in usage],
            title=_("Kartu terbit dan rusak per hari (30 hari)"), issued_label=_("Terbit"),
            spoiled_label=_("Rusak")),
        report=report,
        sections=ls.report_sections(report, lang),
        title=ls.report_title(report, lang),
        office_text=ls.office_text(report, lang),
        period=ls.period_text(report, lang),
        signatories=_signatories(code),
        month=month,
        office=code,
        offices=visible_offices(read_db(), user.office),
        usage=usage,
        flags=ls.spoilage_flags(read_db(), user.office),
    )


@bp.route("/ledger/report.<any(pdf, csv, json):fmt>")
@permission("ledger.view")
def report(fmt: str) -> Any:
    """The monthly report as a download, in the page's language; every export is an audit
    event."""
    user = current_user()
    assert user is not None
    month, code = _month(), _office_code()
    try:
        data = ls.stock_report(read_db(), code, month)
    except LedgerError:
        abort(400)
    svc.audit_view(db(), user, WebTag.EXPORT, subject=f"stock-report:{code}:{month}",
                   office_code=code, details={"format": fmt})
    lang = select_locale()
    if fmt == "json":
        response = jsonify(data)
    elif fmt == "csv":
        response = Response(ls.render_csv(data, lang), mimetype="text/csv")
    else:
        response = Response(ls.render_pdf(data, lang, _signatories(code)),
                            mimetype="application/pdf")
    name = ls.report_filename(data, fmt)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.route("/stations")
@permission("station.view")
def stations() -> Any:
    user = current_user()
    assert user is not None
    found = ls.visible_stations(read_db(), user.office)
    views = [ls.station_view(read_db(), s, jobs=5) for s in found]
    return render_template("stations.html", stations=views)


@bp.route("/stations/<int:station_id>")
@permission("station.view")
def station(station_id: int) -> Any:
    user = current_user()
    assert user is not None
    view = ls.station_view(read_db(), ls.get_visible_station(read_db(), user.office, station_id))
    svc.audit_view(db(), user, WebTag.RECORD_VIEW, subject=view.name,
                   details={"station_jobs": [j["request_id"] for j in view.jobs]})
    return render_template("station.html", st=view, batch_form=BatchForm(),
                           stock_types=STOCK_TYPES, ribbon_chart=_ribbon_chart(station_id))


def _ribbon_chart(station_id: int) -> Any:
    """The loaded ribbon's panels left over time and when it runs out at the recent pace."""
    user = current_user()
    assert user is not None
    history = ls.ribbon_history(read_db(),
                                ls.get_visible_station(read_db(), user.office, station_id))
    if history is None:
        return None
    from datetime import timedelta

    xs = [x for x, _ in [*history["points"], *history["forecast"]]]
    span = max(xs) if xs else 1.0
    labels = [(span * k / 4, (history["start"] + timedelta(days=span * k / 4)).strftime("%d-%m"))
              for k in range(5)]
    chart = charts.level_forecast(
        history["points"], history["forecast"],
        title=_("Pita %(serial)s: sisa panel", serial=history["serial"]),
        x_labels=labels, y_max=history["capacity"], measured_label=_("tercatat"),
        forecast_label=_("prakiraan"))
    return {"svg": chart, "empty_on": history["empty_on"]}


@bp.route("/stations/<int:station_id>/resume", methods=["POST"])
@permission("station.operate")
def station_resume(station_id: int) -> Any:
    """The operator cleared the printer: ask the paused station to resume."""
    user = current_user()
    assert user is not None
    if not FlaskForm().validate_on_submit():
        abort(400)
    station = ls.get_visible_station(db(), user.office, station_id)
    ok = ls.request_station_resume(db(), station)
    svc.audit_view(db(), user, WebTag.STATION_RESUME, subject=station.name,
                   office_code=station.office.code, details={"requested": ok})
    if ok:
        flash(_("Permintaan lanjut dikirim ke stasiun %(name)s.", name=station.name), "ok")
    else:
        flash(_("Stasiun %(name)s belum pernah berjalan.", name=station.name), "error")
    return redirect(url_for("ledger.station", station_id=station.id), code=303)


class BatchForm(FlaskForm):
    count = IntegerField("count", validators=[DataRequired(), NumberRange(1, 1000)])


class LoadForm(FlaskForm):
    count = IntegerField("count", validators=[DataRequired(), NumberRange(1, 1000)])
    stock_type = StringField("stock_type", validators=[DataRequired(), AnyOf(STOCK_TYPES)])


@bp.route("/stations/<int:station_id>/load", methods=["POST"])
@permission("stock.load")
def station_load(station_id: int) -> Any:
    """Load blanks from the office's store into the station's hopper (a paused station that
    ran out can be fixed from here); each blank's move is an audit event."""
    from printsrv.web import stock_services as ss

    user = current_user()
    assert user is not None
    form = LoadForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        loaded = ss.load_hopper(db(), user, station_id=station_id, count=form.count.data or 0,
                                stock_type=form.stock_type.data or "")
    except LedgerError as exc:
        flash(str(exc), "error")
    else:
        flash(_("%(n)d blangko %(type)s dimasukkan ke hopper.", n=len(loaded),
                type=form.stock_type.data), "ok")
    return redirect(url_for("ledger.station", station_id=station_id), code=303)


@bp.route("/stations/<int:station_id>/batch", methods=["POST"])
@permission("station.operate")
def station_batch(station_id: int) -> Any:
    """Start a batch: ask the station (running on request) for N more cards."""
    user = current_user()
    assert user is not None
    form = BatchForm()
    if not form.validate_on_submit():
        abort(400)
    station = ls.get_visible_station(db(), user.office, station_id)
    total = ls.request_station_batch(db(), station, form.count.data, actor=user.username)
    svc.audit_view(db(), user, WebTag.STATION_BATCH, subject=station.name,
                   office_code=station.office.code,
                   details={"count": form.count.data, "requested": total})
    if total is None:
        flash(_("Stasiun %(name)s belum pernah berjalan.", name=station.name), "error")
    else:
        flash(_("%(n)s kartu diminta dari stasiun %(name)s.", n=total, name=station.name), "ok")
    return redirect(url_for("ledger.station", station_id=station.id), code=303)


@bp.route("/stations/<int:station_id>/status.json")
@permission("station.view")
def station_status(station_id: int) -> Any:
    """Polled by the station page every few seconds (no personal data: ids and states)."""
    user = current_user()
    assert user is not None
    view = ls.station_view(read_db(), ls.get_visible_station(read_db(), user.office, station_id))
    return jsonify(
        {
            "state": view.state,
            "state_label": label("station_state", view.state),
            "pause_reason": view.pause_reason,
            "pause_reason_label": pause_reason(view.pause_reason, select_locale()),
            "heartbeat_at": view.heartbeat_at,
            "stale": view.stale,
            "printer_reasons": view.printer_reasons,
            "printer_state": view.printer_state,
            "printer_state_label": label("printer_state", view.printer_state),
            "ribbon_level": view.ribbon_level,
            "queue_length": view.queue_length,
            "blanks_in_hopper": view.blanks_in_hopper,
            "ribbon_remaining": view.ribbon_remaining,
            "issued": view.issued,
            "spoiled": view.spoiled,
            "jobs": [
                {
                    **job,
                    "phase_label": label("card_phase", job["phase"]),
                    "result_label": card_result(job["outcome"], job["cause"]),
                }
                for job in view.jobs
            ],
        }
    )
