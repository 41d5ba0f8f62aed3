"""The station's devices: the encoder port, stand-ins, and building a station from settings.

``Settings.stations[NAME]`` is parsed into the typed :class:`StationConfig` (every key, its
type and its use are there; an unknown key is an error naming the settings file and line).
Backends are chosen by name: ``printer`` from :data:`PRINTER_BACKENDS`, ``encoder`` from
:data:`ENCODER_BACKENDS`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chip.errors import CardState, ChipError, ReaderError
from printers.api import CardPrinter
from printsrv.cardinput import CardInput
from printsrv.config import Settings
from printsrv.errors import ConfigError


@dataclass(frozen=True)
class ChipResult:
    """A personalized, locked and verified chip."""

    uid: str
    details: dict[str, Any] = field(default_factory=dict)


class CardEncoder(Protocol):
    """Moves a blank into the contactless station and writes its chip."""

    def ready(self) -> str | None:
        """``None`` when a card can be encoded, else a reason for an operator."""
        ...

    def present_blank(self, serial: str) -> None:
        """Bring blank ``serial`` to the encoder (printer command, or a fresh simulated card)."""
        ...

    def personalize(self, card: CardInput, *, blank_serial: str) -> ChipResult:
        """Write, lock and verify the chip; raise :class:`chip.errors.ChipError`."""
        ...

    def probe(self) -> CardState:
        """The state of the card now in the encoder (recovery)."""
        ...


RECOVERY_MODES = ("automatic", "operator")


@dataclass(frozen=True)
class StationConfig:
    """One configured station (``[stations.NAME]``); every key is typed and used."""

    name: str
    office: str
    profile: str = "virtual-ipp-card"
    cups_queue: str | None = None
    reader: str | None = None
    max_failures: int = 3
    chip_retries: int = 1
    poll_interval: float = 1.0
    lease_seconds: int = 600
    #: The person operating the station (``station NAME --operator``, or ``operator`` in its
    #: settings); a batch asked for from the web page or ``station batch`` names its own.
    operator: str | None = None
    printer: str = "cups"
    #: The directory printer's folder (default ``<instance>/cards/NAME``).
    directory: str | None = None
    #: Seconds the directory printer takes per card (a demo that looks like a printer).
    print_seconds: float = 0.0
    cups_server: str | None = None
    cups_port: int | None = None
    print_timeout: float = 120.0
    encoder: str = "pcsc"
    #: Seconds the fake encoder takes per chip.
    fake_chip_seconds: float = 0.0
    #: The vpcd port of the virtual station's simulated cards.
    vpcd_port: int = 35963
    #: How recovery settles a card whose fate the devices cannot tell: by its rules
    #: ("automatic") or always by an operator ("operator").
    recovery: str = "automatic"

    @property
    def actor(self) -> str:
        return f"station:{self.name}"[:64]

    @classmethod
    def from_settings(cls, settings: Settings, name: str) -> StationConfig:
        """The station ``name`` of ``settings.stations``; :class:`ConfigError` if it is not
        there, or a key is unknown, missing or of the wrong type (with the settings file and
        line when the station comes from one)."""
        raw = settings.stations.get(name)
        if not isinstance(raw, dict):
            known = ", ".join(sorted(settings.stations)) or "none"
            raise ConfigError(f"no station {name!r} in settings (configured: {known})")
        return parse_station(name, raw, settings.config_file)


def _key_line(path: Path | None, station: str, key: str) -> str:
    """``FILE:LINE: `` of ``key`` in the ``[stations.STATION]`` table of ``path`` (or of the
    table's header; empty when unknown)."""
    if path is None or not path.exists():
        return ""
    header = re.compile(r'^\s*\[\s*stations\s*\.\s*"?' + re.escape(station) + r'"?\s*\]')
    inside, header_line = False, 0
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if header.match(line):
            inside, header_line = True, number
            continue
        if inside and line.lstrip().startswith("["):
            break
        if inside and re.match(r"^\s*" + re.escape(key) + r"\s*=", line):
            return f"{path}:{number}: "
    return f"{path}:{header_line}: " if header_line else f"{path}: "


def parse_station(name: str, raw: dict[str, Any], source: Path | None = None) -> StationConfig:
    """``raw`` (one ``[stations.NAME]`` table) as a :class:`StationConfig`."""
    fields = {f.name: f for f in dataclasses.fields(StationConfig) if f.name != "name"}
    defaults = StationConfig(name=name, office="")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = _key_line(source, name, key)
        if key not in fields:
            raise ConfigError(f"{where}station {name!r}: unknown key {key!r} "
                              f"(known: {', '.join(sorted(fields))})")  # fmt: skip
        default = getattr(defaults, key)
        try:
            if key in {"cups_port"}:
                values[key] = None if value in (None, "") else int(value)
            elif isinstance(default, bool):
                raise TypeError
            elif isinstance(default, int):
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise TypeError
                values[key] = int(value)
            elif isinstance(default, float):
                if isinstance(value, bool):
                    raise TypeError
                values[key] = float(value)
            else:
                if not isinstance(value, str | int):
                    raise TypeError
                values[key] = str(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}station {name!r}: {key} = {value!r} is not "
                              f"{type(default).__name__ if default is not None else 'a value'}"
                              ) from exc  # fmt: skip
    if not values.get("office"):
        raise ConfigError(f"{_key_line(source, name, 'office')}station {name!r}: "
                          "'office' is required")  # fmt: skip
    choices: tuple[tuple[str, Any], ...] = (
        ("printer", PRINTER_BACKENDS), ("encoder", ENCODER_BACKENDS), ("recovery", RECOVERY_MODES),
    )
    for key, allowed in choices:
        if key in values and values[key] not in allowed:
            raise ConfigError(f"{_key_line(source, name, key)}station {name!r}: {key} = "
                              f"{values[key]!r} (one of {', '.join(allowed)})")  # fmt: skip
    if values.get("operator"):
        values["operator"] = values["operator"][:64]
    return StationConfig(name=name, **values)


class FakeEncoder:
    """An in-memory encoder stand-in; ``script`` pops one action per personalize call:
    ``None`` (succeed) or a :class:`ChipError` to raise. ``reader_gone`` pauses the station."""

    def __init__(
        self, script: list[ChipError | None] | None = None, *, seconds: float = 0.0
    ) -> None:
        self.script = list(script or [])
        self.seconds = seconds
        self.reader_gone: str | None = None
        self.current: str | None = None
        self.written: dict[str, str] = {}  # blank serial -> request id
        self.state = CardState.BLANK
        self.hook: Callable[[str], None] | None = None

    def ready(self) -> str | None:
        return self.reader_gone

    def present_blank(self, serial: str) -> None:
        if self.reader_gone:
            raise ReaderError(self.reader_gone, card_state=CardState.BLANK)
        self.current = serial
        self.state = CardState.BLANK

    def personalize(self, card: CardInput, *, blank_serial: str) -> ChipResult:
        if self.hook:
            self.hook(blank_serial)
        if self.seconds:
            import time

            time.sleep(self.seconds)
        if self.reader_gone:
            raise ReaderError(self.reader_gone, card_state=CardState.BLANK)
        action = self.script.pop(0) if self.script else None
        if action is not None:
            self.state = action.card_state
            raise action
        self.written[blank_serial] = card.request_id
        self.state = CardState.LOCKED
        uid = hashlib.sha256(blank_serial.encode()).hexdigest()[:14].upper()
        return ChipResult(uid=uid)

    def probe(self) -> CardState:
        return self.state


def _directory_printer(settings: Settings, config: StationConfig) -> CardPrinter:
    """A folder of PDFs with a simulated printer's journal (tests, demos without CUPS)."""
    from printers.directory import DirectoryPrinter
    from printers.profiles import get_profile

    folder = Path(config.directory or settings.instance_dir / "cards" / config.name)
    folder.mkdir(parents=True, exist_ok=True)
    printer = DirectoryPrinter(folder, get_profile(config.profile), name=config.name)
    delay = config.print_seconds
    if delay:
        original = printer.print_card

        def slow_print(*args: Any, **kw: Any) -> Any:  # a printer takes time per card
            import time

            time.sleep(delay / 2)
            try:
                return original(*args, **kw)
            finally:
                time.sleep(delay / 2)

        printer.print_card = slow_print  # type: ignore[method-assign]
    return printer


def _cups_printer(settings: Settings, config: StationConfig) -> CardPrinter:
    """A CUPS queue through pycups (``printers/cups.py``)."""
    if not config.cups_queue:
        raise ConfigError(f"station {config.name!r}: 'cups_queue' is required")
    from printers.cups import CupsPrinter
    from printers.profiles import get_profile

    return CupsPrinter(config.cups_queue, get_profile(config.profile), server=config.cups_server,
                       port=config.cups_port, timeout=config.print_timeout)  # fmt: skip


def _fake_encoder(settings: Settings, config: StationConfig) -> CardEncoder:
    return FakeEncoder(seconds=config.fake_chip_seconds)


def encoder_reader(config: StationConfig) -> str:
    """The station's PC/SC reader: its ``reader`` setting, else the one reader whose name holds
    the printer profile's ``encoder.reader_pattern`` (the encoder inside that printer)."""
    if config.reader:
        return config.reader
    from chip.errors import ChipError
    from chip.pcsc import list_readers
    from printers.profiles import get_profile

    pattern = get_profile(config.profile).encoder.reader_pattern
    try:
        readers = list_readers()
    except ChipError as exc:
        raise ConfigError(f"station {config.name!r}: no 'reader' set and PC/SC cannot list "
                          f"readers ({exc})") from exc  # fmt: skip
    matches = [r for r in readers if pattern and pattern in r]
    if len(matches) != 1:
        raise ConfigError(
            f"station {config.name!r}: no 'reader' set, and {len(matches)} readers match the "
            f"profile's reader_pattern {pattern!r} (readers: {', '.join(readers) or 'none'})"
        )
    return matches[0]


def _pcsc_encoder(settings: Settings, config: StationConfig) -> CardEncoder:
    """The chip library over PC/SC, keys from the token."""
    from printsrv.station.chipenc import PcscEncoder

    return PcscEncoder(settings, dataclasses.replace(config, reader=encoder_reader(config)))


def _virtual_encoder(settings: Settings, config: StationConfig) -> CardEncoder:
    """The virtual station: each blank is a fresh simulated card on a vpcd port."""
    if not config.reader:
        raise ConfigError(f"station {config.name!r}: 'reader' is required")
    from printsrv.station.chipenc import PcscEncoder

    feeder = VirtualCardFeeder(config.vpcd_port, settings.keys_dir / "scp03-demo-master.hex",
                               log_dir=settings.instance_dir / "log")  # fmt: skip
    return PcscEncoder(settings, config, on_present=feeder.present, on_close=feeder.stop)


#: The printer backends by the name a station's ``printer`` setting gives.
PRINTER_BACKENDS: dict[str, Callable[[Settings, StationConfig], CardPrinter]] = {
    "cups": _cups_printer,
    "directory": _directory_printer,
}
#: The encoder backends by the name of the ``encoder`` setting: the chip library over PC/SC,
#: the virtual station's simulated cards on vpcd, or the in-memory stand-in.
ENCODER_BACKENDS: dict[str, Callable[[Settings, StationConfig], CardEncoder]] = {
    "pcsc": _pcsc_encoder,
    "virtual": _virtual_encoder,
    "fake": _fake_encoder,
}


def build_printer(settings: Settings, config: StationConfig) -> CardPrinter:
    """The station's printer, from :data:`PRINTER_BACKENDS` by its ``printer`` setting."""
    return PRINTER_BACKENDS[config.printer](settings, config)


def build_encoder(settings: Settings, config: StationConfig) -> CardEncoder:
    """The station's encoder, from :data:`ENCODER_BACKENDS` by its ``encoder`` setting."""
    return ENCODER_BACKENDS[config.encoder](settings, config)


class VirtualCardFeeder:
    """The virtual station's "card transport": each blank is a fresh simulated card process
    (``python -m chip.simulator``) on a vpcd port, with a chip UID derived from its serial."""

    def __init__(self, port: int, scp03_master_file: Path, *, log_dir: Path,
                 reader: str = "") -> None:
        self.port = port
        self.reader = reader or f"Virtual PCD 00 {port - 35963:02d}"
        self.master = scp03_master_file
        self.log_dir = log_dir
        self.proc: Any = None

    def present(self, serial: str) -> None:
        import subprocess
        import sys
        import time

        from chip.pcsc import card_present
        from chip.simulator.card import default_uid

        had_card = self.proc is not None
        self.stop()
        gone = time.monotonic() + 3.0  # pcscd must see the previous card leave the field
        while had_card and time.monotonic() < gone:
            try:
                if not card_present(self.reader):
                    break
            except ChipError:
                break
            time.sleep(0.02)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "chip.simulator", "--port", str(self.port),
                "--uid", default_uid(f"blank-{serial}").hex()]
        if self.master.exists():
            args += ["--scp03-master-file", str(self.master)]
        with open(self.log_dir / f"card-sim-{self.port}.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         cwd=Path(__file__).resolve().parents[2])

    def stop(self) -> None:
        """Take the card away: stop its process (by PID) and reap it."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None


@dataclass(frozen=True)
class JobLookup:
    """What the print system remembers of a card's job after a crash."""

    found: bool
    printed: bool | None = None  # True: a good card came out
    consumed: bool | None = None
    fault: str | None = None
    job_id: int | None = None
    message: str = ""


def find_print_job(printer: CardPrinter, title: str) -> JobLookup:
    """Look up the newest job named ``title`` through the printer's own port
    (:meth:`printers.api.CardPrinter.find_job`); an unfinished one is cancelled there (its
    card's fate then stays unknown). Never raises: an unreachable print system is "not
    found"."""
    from printers.errors import PrinterError

    try:
        outcome = printer.find_job(title)
    except PrinterError as exc:
        return JobLookup(False, message=f"print system not reachable: {exc}")
    if outcome is None:
        return JobLookup(False, message="no job with this title at the printer")
    fault = outcome.fault.value if outcome.fault else None
    return JobLookup(True, outcome.card_printed, outcome.card_consumed, fault, outcome.job_id,
                     outcome.message)  # fmt: skip
