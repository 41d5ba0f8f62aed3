"""Office time: each office's zone (WIB, WITA or WIT), its local dates and months.

Times are stored in UTC. What people read (pages, reports, CLI lines, CSV) and what is printed
on a card (its issue date) is the office's local time, named by its zone: a card printed at
06:50 WIB on 5 December is issued on 05-12 although it is still 4 December in UTC.

The zone comes from the office code's province (``shared/docs/domain-ektp.md``), unless the
setting ``office_time_zones`` maps the office, its regency or its province to another zone:

.. code-block:: toml

    [office_time_zones]
    "62" = "WIB"          # a province
    "64.74" = "WITA"      # a regency/city
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from printsrv.errors import ConfigError, InvalidValue


@dataclass(frozen=True)
class OfficeZone:
    """An Indonesian time zone: its name as offices write it and its IANA zone."""

    name: str
    tz: ZoneInfo

    def local(self, moment: datetime) -> datetime:
        """``moment`` (aware, or naive UTC as SQLite returns it) in this zone."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.tz)

    def format(self, moment: datetime | None, *, seconds: bool = False) -> str:
        """``2026-12-05 06:50 WIB`` (empty for ``None``)."""
        if moment is None:
            return ""
        pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        return f"{self.local(moment).strftime(pattern)} {self.name}"


WIB = OfficeZone("WIB", ZoneInfo("Asia/Jakarta"))
WITA = OfficeZone("WITA", ZoneInfo("Asia/Makassar"))
WIT = OfficeZone("WIT", ZoneInfo("Asia/Jayapura"))
ZONES = {zone.name: zone for zone in (WIB, WITA, WIT)}

#: Province codes by zone (domain-ektp.md, "Time zones").
_WITA_PROVINCES = frozenset({51, 52, 53, 63, 64, 65, 71, 72, 73, 74, 75, 76})
_WIT_PROVINCES = frozenset({81, 82, 91, 92, 93, 94, 95, 96})


def province_zone(province: int) -> OfficeZone:
    """The zone of a province code (WIB for Sumatra, Java, West and Central Kalimantan)."""
    if province in _WITA_PROVINCES:
        return WITA
    if province in _WIT_PROVINCES:
        return WIT
    return WIB


_OVERRIDES: dict[str, str] = {}


def use_overrides(overrides: Mapping[str, str]) -> None:
    """Take the setting ``office_time_zones`` (called by ``load_settings``); a zone other than
    WIB, WITA or WIT is a :class:`ConfigError`."""
    bad = {code: name for code, name in overrides.items() if str(name).upper() not in ZONES}
    if bad:
        raise ConfigError(f"office_time_zones: {bad}: each must be WIB, WITA or WIT")
    _OVERRIDES.clear()
    _OVERRIDES.update({code: str(name).upper() for code, name in overrides.items()})


def office_zone(code: str, overrides: Mapping[str, str] | None = None) -> OfficeZone:
    """The zone of office ``code`` (``PP``, ``PP.KK`` or ``PP.KK.CC``): the longest matching
    entry of ``overrides`` (default: the setting ``office_time_zones``), else its province's."""
    table = _OVERRIDES if overrides is None else overrides
    for length in (8, 5, 2):
        name = table.get(code[:length]) if len(code) >= length else None
        if name is not None:
            try:
                return ZONES[name.upper()]
            except KeyError:
                raise ConfigError(
                    f"office_time_zones: {code[:length]!r} = {name!r}: not WIB, WITA or WIT"
                ) from None
    try:
        return province_zone(int(code[:2]))
    except ValueError:
        return WIB


def now_utc() -> datetime:
    """The current time (one place, so that tests can freeze the clock)."""
    return datetime.now(UTC)


def local_date(
    code: str, *, now: datetime | None = None, overrides: Mapping[str, str] | None = None
) -> date:
    """Today's date at office ``code`` (a card's issue date)."""
    return office_zone(code, overrides).local(now or now_utc()).date()


def month_bounds(month: str, zone: OfficeZone) -> tuple[datetime, datetime]:
    """The UTC start (inclusive) and end (exclusive) of ``YYYY-MM`` in the office's zone."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=zone.tz)
    except ValueError as exc:
        raise InvalidValue(f"month {month!r} is not YYYY-MM") from exc
    end = (start + timedelta(days=32)).replace(day=1)
    return start.astimezone(UTC), end.astimezone(UTC)
