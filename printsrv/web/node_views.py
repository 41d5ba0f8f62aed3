"""The admin page of kecamatan nodes (``/nodes``): each node's state, last contact, what waits
for it and the records it holds; approve with the pairing code, revoke, recall a record.
Thin over :mod:`printsrv.sync.server`.

``/nodes/fates``: the unknown fates of lost nodes (a node whose disk died), per node, within
the user's office scope; a supervisor settles each one (as ``run.py nodes settle``), admins and
auditors only read. Thin over :mod:`printsrv.sync.recovery`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from printsrv.errors import InvalidValue, NotFound, StateError
from printsrv.sync import recovery
from printsrv.sync import server as sync
from printsrv.sync.models import FateDecision
from printsrv.web import db, read_db
from printsrv.web.guard import current_user, permission
from printsrv.web.labels import label
from printsrv.web.services import can

bp = Blueprint("nodes", __name__, url_prefix="/nodes")


class ApproveForm(FlaskForm):
    code = StringField("code", validators=[DataRequired(), Length(min=4, max=16)])


class SettleForm(FlaskForm):
    decision = SelectField("decision", choices=[d.value for d in FateDecision],
                           validators=[DataRequired()])
    reason = TextAreaField("reason", validators=[DataRequired(), Length(max=500)])


class RecallForm(FlaskForm):
    request_id = StringField("request_id", validators=[DataRequired(), Length(max=64)])


def _actor() -> str:
    user = current_user()
    assert user is not None
    return user.username


@bp.route("")
@permission("node.manage")
def index() -> Any:
    # the listing moves each node chain's verification mark: a write
    return render_template("nodes.html", nodes=sync.status(db()))


@bp.route("/fates")
@permission("node.fates.view")
def fates() -> Any:
    """Unknown fates of lost nodes in the user's scope, grouped by node (open ones; ``all=1``
    the settled ones too)."""
    user = current_user()
    assert user is not None
    show_all = request.args.get("all") == "1"
    listed = recovery.unknown_fates(read_db(), node_id=request.args.get("node") or None,
                                    open_only=not show_all, within=user.office.code)
    by_node: dict[str, list[Any]] = {}
    for fate in listed:
        by_node.setdefault(fate.node_id, []).append(fate)
    return render_template("fates.html", by_node=by_node, show_all=show_all,
                           may_settle=can(user, "node.fates.settle"),
                           decisions=[d.value for d in FateDecision])


@bp.route("/fates/<int:fate_id>/settle", methods=["POST"])
@permission("node.fates.settle")
def settle(fate_id: int) -> Any:
    user = current_user()
    assert user is not None
    form = SettleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        fate = recovery.settle(db(), fate_id, str(form.decision.data), actor=user.username,
                               reason=str(form.reason.data), within=user.office.code)
    except NotFound:
        abort(404)
    except InvalidValue:
        flash(_("Keputusan atas nasib yang tidak diketahui wajib disertai alasan."), "error")
    except StateError:
        flash(_("Tidak dapat ditetapkan: sudah ditetapkan sebelumnya, atau rekamannya tidak "
                "lagi dipegang node itu."), "error")
    else:
        flash(_("%(subject)s ditetapkan: %(decision)s.", subject=fate.subject,
                decision=label("fate_decision", fate.decision.value if fate.decision else "")),
              "ok")
    return redirect(url_for("nodes.fates"), code=303)



@bp.route("/<node_id>/approve", methods=["POST"])
@permission("node.manage")
def approve(node_id: str) -> Any:
    form = ApproveForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        sync.approve(db(), node_id, str(form.code.data), actor=_actor())
    except (NotFound, StateError):
        flash(_("Kode pemasangan tidak cocok atau node tidak menunggu persetujuan."), "error")
    else:
        flash(_("Node %(node)s disetujui.", node=node_id), "ok")
    return redirect(url_for("nodes.index"), code=303)


@bp.route("/<node_id>/revoke", methods=["POST"])
@permission("node.manage")
def revoke(node_id: str) -> Any:
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        sync.revoke(db(), node_id, actor=_actor())
    except NotFound:
        abort(404)
    flash(_("Akses node %(node)s dicabut.", node=node_id), "ok")
    return redirect(url_for("nodes.index"), code=303)


@bp.route("/recall", methods=["POST"])
@permission("node.manage")
def recall() -> Any:
    form = RecallForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        asked = sync.recall(db(), str(form.request_id.data), actor=_actor())
    except (NotFound, StateError):
        flash(_("Rekaman itu tidak dipegang node mana pun."), "error")
    else:
        flash(_("Penarikan diminta dari node %(node)s; jawabannya datang pada sinkronisasi "
                "berikutnya.", node=asked.node_id), "ok")
    return redirect(url_for("nodes.index"), code=303)
