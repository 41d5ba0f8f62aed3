"""The offline banner of a kecamatan node's web app: when the node's last exchange with its
server failed, every page says since when it is offline (office local time), how many events
wait to go up and when the last exchange succeeded. Nothing on a server or an online node."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from printsrv.localtime import office_zone
from printsrv.sync.node import offline_status

_MONTHS = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def short_time(moment: datetime, office: str, lang: str) -> str:
    """``5 Des 2026 14:03 WIB``: ``moment`` in the office's zone, the month in ``lang``."""
    zone = office_zone(office)
    local = zone.local(moment)
    month = _MONTHS.get(lang, _MONTHS["id"])[local.month - 1]
    return f"{local.day} {month} {local.year} {local:%H:%M} {zone.name}"


@dataclass(frozen=True)
class OfflineBanner:
    headline: str
    details: str


def offline_banner() -> OfflineBanner | None:
    """The banner for this request (``None``: a server, or a node whose last exchange
    succeeded)."""
    from printsrv.web import read_db, select_locale

    try:
        st = offline_status(read_db())
    except SQLAlchemyError:  # an error page while the database is away: no banner, no loop
        return None
    if st is None or st.offline_since is None:
        return None
    lang = select_locale()
    since = short_time(st.offline_since, st.office_code, lang)
    last = (short_time(st.last_contact_at, st.office_code, lang) if st.last_contact_at
            else _("belum pernah"))
    return OfflineBanner(
        _("Luring sejak %(since)s — kartu tetap dicetak dan akan dikirim saat tersambung.",
          since=since),
        _("%(pending)s kejadian menunggu dikirim ke server kabupaten · sinkron terakhir "
          "berhasil: %(last)s", pending=st.events_pending_up, last=last),
    )
