"""The ``[sms]`` and ``[pickup]`` settings, typed: unknown keys and bad values are errors.

.. code-block:: toml

    [sms]
    backend = "kannel"                       # or "file" (the default: a file, for the demo)
    url = "http://127.0.0.1:13013/cgi-bin/sendsms"
    username = "printsrv"
    password = "…"
    sender = "DUKCAPIL"
    callback_url = "https://printsrv.example/api/sms/report"   # Kannel's delivery reports

    [pickup.default]                         # every office, unless it says otherwise
    days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
    hours = "08:00-15:00"
    per_day = 100
    bring = "bukti permohonan cetak"

    [pickup."35.26.01"]
    address = "Jl. Trunojoyo No. 1, Bangkalan"
    per_day = 40
    closed = ["2026-12-25"]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

from printsrv.config import Settings
from printsrv.errors import ConfigError

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Indonesian day names, Monday first (for the message).
HARI = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")


@dataclass(frozen=True)
class SmsSettings:
    """How messages leave: the gateway and its credentials, quiet hours, retries."""

    backend: str = "file"
    url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = "DUKCAPIL"
    callback_url: str = ""
    file: str = ""  # the file backend's file; default <instance>/sms/outgoing.txt
    quiet_from: time = time(21, 0)
    quiet_until: time = time(7, 0)
    max_attempts: int = 8
    first_retry_seconds: int = 30
    max_retry_seconds: int = 3600
    #: A message handed over without any report yet is sent again only after this long.
    unconfirmed_seconds: int = 300
    timeout_seconds: float = 10.0
    batch: int = 200

    def outgoing_file(self, settings: Settings) -> Path:
        return Path(self.file) if self.file else settings.instance_dir / "sms" / "outgoing.txt"


@dataclass(frozen=True)
class PickupRules:
    """When and where an office hands cards over, and how many a day."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    opens: time = time(8, 0)
    closes: time = time(15, 0)
    per_day: int = 100
    address: str = ""
    bring: str = "bukti permohonan cetak"
    closed: frozenset[date] = frozenset()
    #: The first pickup day is this many days after the card is printed (0: the same day).
    first_day_after: int = 1
    #: A card not collected this many days after printing is listed for follow-up.
    uncollected_days: int = 90
    #: The desk needs a second officer (a witness) for every handover.
    two_person_handover: bool = False

    @property
    def hours(self) -> str:
        return f"{self.opens:%H.%M}-{self.closes:%H.%M}"


def _time(name: str, value: Any) -> time:
    try:
        hour, minute = (int(v) for v in str(value).replace(".", ":").split(":"))
        return time(hour, minute)
    except ValueError as exc:
        raise ConfigError(f"setting {name}: {value!r} is not HH:MM") from exc


def sms_settings(settings: Settings) -> SmsSettings:
    """The ``[sms]`` table, typed."""
    raw = dict(settings.sms)
    known = {f.name: f for f in dataclasses.fields(SmsSettings)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"setting sms.{key}: unknown (known: {', '.join(sorted(known))})")
        default = getattr(SmsSettings(), key)
        if isinstance(default, time):
            values[key] = _time(f"sms.{key}", value)
        elif isinstance(default, bool | str):
            values[key] = str(value)
        elif isinstance(default, int | float):
            try:
                values[key] = type(default)(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"setting sms.{key}: {value!r} is not a number") from exc
    sms = SmsSettings(**values)
    from printsrv.notify.gateways import GATEWAYS

    if sms.backend not in GATEWAYS:
        raise ConfigError(f"setting sms.backend: {sms.backend!r} (known: {', '.join(GATEWAYS)})")
    return sms


_PICKUP_KEYS = {"days", "hours", "per_day", "address", "bring", "closed", "first_day_after",
                "uncollected_days", "two_person_handover"}


def _apply(rules: PickupRules, where: str, raw: dict[str, Any]) -> PickupRules:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"pickup.{where}.{key}"
        if key not in _PICKUP_KEYS:
            raise ConfigError(f"setting {name}: unknown (known: {', '.join(sorted(_PICKUP_KEYS))})")
        if key == "days":
            try:
                values["days"] = tuple(sorted({WEEKDAYS.index(str(d)[:3].title()) for d in value}))
            except ValueError as exc:
                raise ConfigError(f"setting {name}: days are {', '.join(WEEKDAYS)}") from exc
        elif key == "hours":
            opens, _, closes = str(value).partition("-")
            values["opens"], values["closes"] = _time(name, opens), _time(name, closes)
        elif key == "closed":
            try:
                values["closed"] = frozenset(date.fromisoformat(str(d)) for d in value)
            except ValueError as exc:
                raise ConfigError(f"setting {name}: dates are YYYY-MM-DD") from exc
        elif key == "two_person_handover":
            if not isinstance(value, bool):
                raise ConfigError(f"setting {name}: {value!r} is not true or false")
            values[key] = value
        elif key in {"per_day", "first_day_after", "uncollected_days"}:
            if not isinstance(value, int) or isinstance(value, bool) or value < (
                1 if key in {"per_day", "uncollected_days"} else 0
            ):
                raise ConfigError(f"setting {name}: {value!r} is not a whole number ≥ 1")
            values[key] = value
        else:
            values[key] = str(value)
    return dataclasses.replace(rules, **values)


def pickup_rules(settings: Settings, office_code: str) -> PickupRules:
    """The office's pickup rules: ``[pickup.default]`` overlaid by ``[pickup."CODE"]`` (the
    regency's code applies to its kecamatan unless they have their own)."""
    rules = _apply(PickupRules(), "default", dict(settings.pickup.get("default", {})))
    parts = office_code.split(".")
    for depth in range(1, len(parts) + 1):
        code = ".".join(parts[:depth])
        if code in settings.pickup:
            rules = _apply(rules, code, dict(settings.pickup[code]))
    if not rules.days:
        raise ConfigError(f"setting pickup for {office_code}: no opening day")
    return rules
