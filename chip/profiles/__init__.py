"""Card profiles: one TOML file per chip OS, saying what it offers beyond ISO/IEC 7816-4 and
GlobalPlatform, so that nothing else ever goes on the wire.

Today a profile declares whether the card has the MAC-protected HASH FILES command (our
simulator does; real chip OSes generally do not). Without it the post-write check is the
standard one: every file read back under secure messaging. Unknown keys, missing keys and wrong
types are :class:`ProfileError`\\ s naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from chip.errors import ChipError
from chip.personalization import PersonalizationOptions, ReadBack

PROFILE_DIR: Final = Path(__file__).resolve().parent
#: The profile used when none is named: any GlobalPlatform card, standard commands only.
DEFAULT_PROFILE: Final = "generic-globalplatform"

_KEYS: Final[dict[str, type]] = {"id": str, "chip_os": str, "description": str,
                                 "hash_files": bool}


class ProfileError(ChipError):
    """A card profile file is missing or malformed."""


@dataclass(frozen=True)
class CardProfile:
    id: str
    chip_os: str
    description: str
    hash_files: bool  # the card answers HASH FILES (80 2A 90 80) under R-MAC

    @property
    def readback(self) -> ReadBack:
        """The post-write check this card allows: its hash when it has one, else read-back."""
        return ReadBack.HASH if self.hash_files else ReadBack.FULL

    def options(self, **overrides: Any) -> PersonalizationOptions:
        """Personalization options for this card; ``readback="hash"`` on a card without
        HASH FILES is a :class:`ProfileError`."""
        readback = ReadBack(overrides.pop("readback", None) or self.readback)
        if readback is ReadBack.HASH and not self.hash_files:
            raise ProfileError(f"card profile {self.id!r}: the chip OS has no HASH FILES, "
                               "use the standard read-back")
        return PersonalizationOptions(readback=readback, **overrides)


def load_profile(path: Path) -> CardProfile:
    """Load and check one profile file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path.name}: {exc}") from exc
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ProfileError(f"{path.name}: unknown key(s) {', '.join(unknown)}")
    for key, kind in _KEYS.items():
        if key not in data:
            raise ProfileError(f"{path.name}: missing key {key!r}")
        if not isinstance(data[key], kind):
            raise ProfileError(f"{path.name}: {key!r} must be {kind.__name__}")
    if data["id"] != path.stem:
        raise ProfileError(f"{path.name}: id {data['id']!r} differs from the file name")
    return CardProfile(**data)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def get_profile(name: str = DEFAULT_PROFILE) -> CardProfile:
    """The profile ``name`` from this folder."""
    path = PROFILE_DIR / f"{name}.toml"
    if not path.is_file():
        raise ProfileError(f"no card profile {name!r} (known: {', '.join(profile_names())})")
    return load_profile(path)
