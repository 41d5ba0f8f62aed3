"""Shared test data for tests/validation: a fixed intake date and synthetic valid records.

A module of its own (not conftest) so test modules can import it by a unique name.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from printsrv.synthetic import SyntheticResident, synthetic_residents

TODAY = date(2026, 11, 23)


def _residents() -> list[SyntheticResident]:
    return list(synthetic_residents(600, seed=20261123, today=TODAY))


_CACHE: list[SyntheticResident] = []


def residents() -> list[SyntheticResident]:
    """600 synthetic residents, made once per test session."""
    if not _CACHE:
        _CACHE.extend(_residents())
    return _CACHE


def first(card_type: str, citizenship: str = "WNI", *, photo: bool | None = None) -> dict[str, Any]:
    """A deep copy of the first synthetic record of this kind."""
    for r in residents():
        rec = r.record
        if rec["card_type"] != card_type or rec["kewarganegaraan"] != citizenship:
            continue
        if photo is not None and (rec["media"]["photo"] is not None) != photo:
            continue
        return copy.deepcopy(rec)
    raise LookupError(card_type)
