"""Sign-in (password, then TOTP; TOTP enrolment for admins and supervisors), sign-out,
language choice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy.orm import joinedload
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from printsrv import audit
from printsrv.models import User
from printsrv.web import LANGUAGES, db
from printsrv.web import auth_service as svc
from printsrv.web.guard import current_user
from printsrv.web.tags import WebTag

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField("username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=256)])


class TotpForm(FlaskForm):
    code = StringField("code", validators=[DataRequired(), Length(max=10)])


def _pending_user() -> User | None:
    uid = session.get("uid")
    if uid is None or session.get("stage") not in ("totp", "enrol"):
        return None
    return db().get(User, uid, options=[joinedload(User.office)])


def _finish(user: User) -> Any:
    token = svc.complete_login(db(), user)
    lang = session.get("lang")
    session.clear()  # a new session for the signed-in user (no fixation)
    if lang:
        session["lang"] = lang
    session.update({"stage": "full", "sid": token})
    session.permanent = True
    return redirect(url_for("views.home"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        g.commit_on_error = True  # failure counters and audit events must stick
        result = svc.check_password(db(), form.username.data or "", form.password.data or "")
        if result.outcome is svc.LoginOutcome.OK and result.user is not None:
            user = result.user
            lang = session.get("lang")
            session.clear()  # no session fixation
            if lang:
                session["lang"] = lang
            session["uid"] = user.id
            if user.totp_secret:
                session["stage"] = "totp"
                return redirect(url_for("auth.totp"))
            if svc.needs_totp_enrolment(user):
                session["stage"] = "enrol"
                return redirect(url_for("auth.enrol"))
            return _finish(user)
        if result.outcome is svc.LoginOutcome.LOCKED:
            error = _("Akun dikunci sementara karena terlalu banyak percobaan gagal.")
        else:
            error = _("Nama pengguna atau kata sandi salah.")
        return render_template("login.html", form=form, error=error), 401
    return render_template("login.html", form=form, error=error)


@bp.route("/login/totp", methods=["GET", "POST"])
def totp() -> Any:
    user = _pending_user()
    if user is None or session.get("stage") != "totp" or not user.totp_secret:
        return redirect(url_for("auth.login"))
    form = TotpForm()
    if form.validate_on_submit():
        g.commit_on_error = True  # failure counters, the used step and audit events stick
        if svc.is_locked(user):  # a saved cookie of the password step cannot guess on
            audit.record(db(), WebTag.LOGIN_FAIL, actor=user.username,
                         office_code=user.office.code, details={"reason": "locked"})
            session.clear()
            error = _("Akun dikunci sementara karena terlalu banyak percobaan gagal.")
            return render_template("totp.html", form=form, error=error), 401
        if svc.accept_totp(user, form.code.data or "", _vault()):
            return _finish(user)
        outcome = svc.record_failure(db(), user, "totp", datetime.now(UTC))
        if outcome is svc.LoginOutcome.LOCKED:
            session.clear()
            return redirect(url_for("auth.login"))
        return render_template("totp.html", form=form, error=_("Kode salah.")), 401
    return render_template("totp.html", form=form, error=None)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol() -> Any:
    user = _pending_user()
    if user is None or session.get("stage") != "enrol":
        return redirect(url_for("auth.login"))
    if user.totp_secret is not None:  # enrolled meanwhile: a stale page replaces nothing
        session.clear()
        return redirect(url_for("auth.login"))
    secret = session.get("enrol_secret") or svc.new_totp_secret()
    session["enrol_secret"] = secret
    form = TotpForm()
    error = None
    if form.validate_on_submit():
        if svc.enrol_totp(db(), user, secret, form.code.data or "", _vault()):
            return _finish(user)
        error = _("Kode salah.")
    uri = svc.provisioning_uri(user, secret)
    return render_template(
        "enrol.html", form=form, error=error, secret=secret, uri=uri, qr=_qr_svg(uri)
    )


def _vault() -> svc.TotpSecrets:
    return svc.TotpSecrets(current_app.config["PRINTSRV_SETTINGS"])


def _qr_svg(text: str) -> Markup:
    """``text`` as an inline SVG QR code (segno: no image files, no CDN)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False,
                                    svgns=True, title="TOTP")
    return Markup(out.getvalue().decode())


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    user = current_user()
    if user is not None:
        audit.record(db(), WebTag.LOGOUT, actor=user.username, office_code=user.office.code)
        svc.end_session(db(), session.get("sid", ""))
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.route("/lang", methods=["POST"])
def lang() -> Any:
    choice = request.form.get("lang", "id")
    session["lang"] = choice if choice in LANGUAGES else "id"
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("views.home")
    return redirect(target)
