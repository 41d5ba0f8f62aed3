"""The admin page of kecamatan nodes (``/nodes``): each node's state, last contact, what waits
for it and the records it holds; approve with the pairing code, revoke, recall a record.
Thin over :mod:`printsrv.sync.server`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from printsrv.errors import NotFound, StateError
from printsrv.sync import server as sync
from printsrv.web import db, read_db
from printsrv.web.guard import current_user, permission

bp = Blueprint("nodes", __name__, url_prefix="/nodes")


class ApproveForm(FlaskForm):
    code = StringField("code", validators=[DataRequired(), Length(min=4, max=16)])


class RecallForm(FlaskForm):
    request_id = StringField("request_id", validators=[DataRequired(), Length(max=64)])


def _actor() -> str:
    user = current_user()
    assert user is not None
    return user.username


@bp.route("")
@permission("node.manage")
def index() -> Any:
    return render_template("nodes.html", nodes=sync.status(read_db()))


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
