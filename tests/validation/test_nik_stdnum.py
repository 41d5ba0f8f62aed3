"""Comparison with python-stdnum's ``stdnum.id.nik`` (test-only; skipped when not installed)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printsrv.nik import is_nik, make_nik, parse_nik, structure_hold_reasons
from printsrv.regions import region_table

stdnum_nik = pytest.importorskip("stdnum.id.nik", reason="python-stdnum not installed")


@given(
    district=st.sampled_from(region_table().districts),
    born=st.dates(min_value=date(1920, 1, 1), max_value=date(2025, 12, 31)),
    female=st.booleans(),
    sequence=st.integers(1, 9999),
)
def test_stdnum_agrees_on_valid_niks(
    district: str, born: date, female: bool, sequence: int
) -> None:
    value = make_nik(district, born, female=female, sequence=sequence)
    assert stdnum_nik.is_valid(value) or not stdnum_knows_region(value)
    # stdnum prefers the 1900s: same day and month, same two-digit year
    theirs = stdnum_nik.get_birth_date(value)
    assert (theirs.day, theirs.month, theirs.year % 100) == (born.day, born.month, born.year % 100)


def stdnum_knows_region(value: str) -> bool:
    from stdnum import numdb

    return bool(numdb.get("id/loc").info(value[:4])[0][1])


def test_known_differences_from_stdnum() -> None:
    """Documented differences: stdnum takes the day modulo 40 and allows sequence 0000."""
    day_81 = "3171018108450001"  # day 81: stdnum reads 1, we hold it
    assert stdnum_nik.is_valid(day_81)
    assert structure_hold_reasons(parse_nik(day_81))
    seq_0 = "3171011708450000"
    assert stdnum_nik.is_valid(seq_0)
    assert structure_hold_reasons(parse_nik(seq_0))
    # stdnum strips separators; we require exactly 16 digits
    assert stdnum_nik.is_valid("3171 0117 0845 0001")
    assert not is_nik("3171 0117 0845 0001")
