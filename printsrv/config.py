"""Typed, frozen settings: defaults → TOML file → ``PRINTSRV_*`` environment → overrides.

Unknown keys are errors. Secrets (the token PIN) come only from the environment or a file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from printsrv import PROJECT_ROOT
from printsrv.errors import ConfigError, InvalidValue

DEFAULT_RELIGIONS = (
    "ISLAM",
    "KRISTEN",
    "KATOLIK",
    "KATHOLIK",
    "HINDU",
    "BUDDHA",
    "BUDHA",
    "KONGHUCU",
    "KHONGHUCU",
    "KEPERCAYAAN TERHADAP TUHAN YME",
)


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one server installation."""

    instance_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""
    registry_ca: tuple[Path, ...] = ()
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    token_label: str = "printsrv"
    token_pin: str = field(default="", repr=False)
    softhsm_conf: Path | None = None
    religions: tuple[str, ...] = DEFAULT_RELIGIONS
    max_image_pixels: int = 4_000_000
    max_batch_bytes: int = 2_000_000_000
    max_media_bytes: int = 2_000_000
    min_photo_size: tuple[int, int] = (300, 400)
    stations: dict[str, Any] = field(default_factory=dict)
    secret_key: str = field(default="", repr=False)
    #: Days an issued card's biometrics stay (encrypted) for a reprint; 0 shreds them at issue.
    reprint_window_days: int = 0
    #: Office (or regency, or province) code → WIB/WITA/WIT, where the province's zone is wrong.
    office_time_zones: dict[str, str] = field(default_factory=dict)
    #: The SMS gateway and sending rules (:mod:`printsrv.notify.rules`).
    sms: dict[str, Any] = field(default_factory=dict)
    #: Pickup days, hours and daily capacity per office (:mod:`printsrv.notify.rules`).
    pickup: dict[str, Any] = field(default_factory=dict)
    #: IKD (digital KTP) activations an office should reach, as a share of the blanks it
    #: received (the 2023 national target: at least 50 %).
    ikd_target_percent: int = 50
    #: Who signs the monthly stock report: ``prepared_name``, ``prepared_nip``, ``head_name``,
    #: ``head_nip``, ``head_title``, and sub-tables by office/regency/province code.
    report_signatories: dict[str, Any] = field(default_factory=dict)
    #: On a kecamatan node: seconds between the exchanges ``run.py serve`` runs with its server
    #: (``run.py node sync`` beside the web app; 0: serve does not sync).
    node_sync_interval: float = 60.0

    #: The settings file these came from (``None``: defaults and environment only); not a
    #: setting itself, kept so that errors can name the file and line.
    config_file: Path | None = field(default=None, compare=False)

    @property
    def keys_dir(self) -> Path:
        """Folder with the demo registry CA, the document-signer certificate and the token PIN."""
        return self.instance_dir / "keys"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, SQLite under the instance folder by default."""
        return self.database_url or f"sqlite:///{self.instance_dir / 'printsrv.db'}"

    @property
    def is_postgres(self) -> bool:
        return self.sqlalchemy_url.startswith("postgresql")

    @property
    def registry_ca_paths(self) -> tuple[Path, ...]:
        """Trusted registry CA files; the demo CA from ``init`` when none is configured."""
        return self.registry_ca or (self.keys_dir / "registry-ca.pem",)

    @property
    def softhsm_conf_path(self) -> Path:
        return self.softhsm_conf or self.instance_dir / "softhsm" / "softhsm2.conf"

    def resolved_token_pin(self) -> str:
        """The token PIN: setting/env first, else the development PIN file written by ``init``."""
        if self.token_pin:
            return self.token_pin
        pin_file = self.keys_dir / "token.pin"
        if pin_file.exists():
            return pin_file.read_text().strip()
        raise ConfigError(
            f"no token PIN: set PRINTSRV_TOKEN_PIN or run 'python run.py init' ({pin_file})"
        )


_ENV_PREFIX = "PRINTSRV_"


def _coerce(name: str, value: Any, target: Any) -> Any:
    """Convert a TOML or environment value to the type of the default ``target``."""
    try:
        if isinstance(target, Path) or name in {"instance_dir", "softhsm_conf"}:
            return Path(value).expanduser() if value not in (None, "") else None
        if name == "registry_ca":
            if isinstance(value, str):
                value = [v for v in value.split(os.pathsep) if v]
            return tuple(Path(v).expanduser() for v in value)
        if name == "min_photo_size":
            if isinstance(value, str):
                value = value.lower().split("x")
            w, h = (int(v) for v in value)
            return (w, h)
        if isinstance(target, tuple):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            return tuple(str(v) for v in value)
        if isinstance(target, bool):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}
        if name == "reprint_window_days":
            if isinstance(value, bool | float):
                raise InvalidValue("expected a whole number of days")
            days = int(value)
            if days < 0:
                raise InvalidValue("must be 0 (shred at issue) or more days")
            return days
        if isinstance(target, float):
            return float(value)
        if isinstance(target, int):
            return int(value)
        if isinstance(target, dict):
            if not isinstance(value, dict):
                raise InvalidValue("expected a table")
            return value
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: invalid value {value!r}: {exc}") from exc


def load_settings(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the settings; ``path`` defaults to ``$PRINTSRV_CONFIG`` or ``var/printsrv.toml``."""
    defaults = Settings()
    known = {f.name: f for f in dataclasses.fields(Settings) if f.name != "config_file"}
    values: dict[str, Any] = {}

    env_instance = os.environ.get(_ENV_PREFIX + "INSTANCE_DIR")
    if overrides and "instance_dir" in overrides:
        env_instance = str(overrides["instance_dir"])
    instance_dir = Path(env_instance) if env_instance else defaults.instance_dir

    config_path = Path(path) if path else None
    if config_path is None and os.environ.get(_ENV_PREFIX + "CONFIG"):
        config_path = Path(os.environ[_ENV_PREFIX + "CONFIG"])
    if config_path is None and (instance_dir / "printsrv.toml").exists():
        config_path = instance_dir / "printsrv.toml"
    if config_path is not None:
        try:
            with open(config_path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"settings file {config_path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {config_path}: {exc}") from exc
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"settings file {config_path}: unknown key {key!r}")
            values[key] = _coerce(key, value, getattr(defaults, key))

    for env_key, value in os.environ.items():
        if not env_key.startswith(_ENV_PREFIX) or env_key == _ENV_PREFIX + "CONFIG":
            continue
        key = env_key[len(_ENV_PREFIX) :].lower()
        if key not in known or key == "stations":
            continue  # other PRINTSRV_* variables belong to tools (tests, benchmarks)
        values[key] = _coerce(key, value, getattr(defaults, key))

    for key, value in (overrides or {}).items():
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _coerce(key, value, getattr(defaults, key))

    settings = dataclasses.replace(defaults, **values, config_file=config_path)
    from printsrv import localtime

    localtime.use_overrides(settings.office_time_zones)
    return settings
