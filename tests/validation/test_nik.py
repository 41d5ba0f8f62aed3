"""The NIK parser and its hold reasons."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printsrv.nik import (
    NikError,
    birth_hold_reasons,
    is_nik,
    make_nik,
    nik_hold_reasons,
    parse_nik,
    region_hold_reasons,
    structure_hold_reasons,
)
from printsrv.regions import region_table


def test_parse_example_from_the_format() -> None:
    nik = parse_nik("3526014508990001")
    assert nik.region_code == "35.26.01"
    assert (nik.province, nik.regency, nik.district) == ("35", "26", "01")
    assert nik.is_female and nik.jenis_kelamin == "PEREMPUAN"
    assert nik.birth_day == 5 and nik.month == 8 and nik.year2 == 99
    assert nik.sequence == 1
    assert nik.birth_date(date(2026, 1, 1)) == date(1999, 8, 5)
    assert not nik.is_city
    assert nik_hold_reasons(nik, tanggal_lahir=date(1999, 8, 5), jenis_kelamin="PEREMPUAN") == []


@pytest.mark.parametrize(
    "value",
    [
        "",
        "352601450899000",
        "35260145089900012",
        "35260145089900a1",
        " 3526014508990001",
        "3526-0145-0899-0001",
        "３５２６０１４５０８９９０００１",
        "٣526014508990001",
        None,
        3526014508990001,
        b"3526014508990001",
    ],
)
def test_not_sixteen_ascii_digits_is_an_error(value: object) -> None:
    assert not is_nik(value)
    with pytest.raises(NikError):
        parse_nik(value)


def test_century_ambiguity() -> None:
    nik = parse_nik("3578011203100002")  # 12-03-?10
    assert nik.birth_date_candidates() == (date(1910, 3, 12), date(2010, 3, 12))
    assert nik.birth_date(date(2026, 1, 1)) == date(2010, 3, 12)
    assert nik.birth_date(date(2005, 1, 1)) == date(1910, 3, 12)
    assert nik.matches_birth_date(date(1910, 3, 12)) and nik.matches_birth_date(date(2010, 3, 12))
    assert nik.is_city


def test_29_february_only_in_leap_centuries() -> None:
    # 1900 was not a leap year, 2000 was: only one candidate
    assert parse_nik("3171012902001234").birth_date_candidates() == (date(2000, 2, 29),)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("3526013208990001", "day field 32"),
        ("3526017208990001", "day field 72"),
        ("3526010008990001", "day field 00"),
        ("3526014000990001", "day field 40"),
        ("3526013113990001", "not a real date"),
        ("3526013102990001", "not a real date"),
        ("3526010508990000", "sequence 0000"),
        ("3500010508990001", "region part"),
        ("3570010508990001", "region part"),
        ("3526000508990001", "region part"),
    ],
)
def test_structure_hold_reasons(value: str, fragment: str) -> None:
    reasons = structure_hold_reasons(parse_nik(value))
    assert any(fragment in r for r in reasons), reasons


def test_birth_and_sex_disagreement_are_holds() -> None:
    nik = parse_nik("3526014508990001")
    assert birth_hold_reasons(nik, date(1999, 8, 5), "PEREMPUAN") == []
    (reason,) = birth_hold_reasons(nik, date(1999, 8, 6), "PEREMPUAN")
    assert "does not match tanggal_lahir 1999-08-06" in reason
    (reason,) = birth_hold_reasons(nik, date(1999, 8, 5), "LAKI-LAKI")
    assert "PEREMPUAN" in reason and "LAKI-LAKI" in reason
    # a different century is not a disagreement: YY is ambiguous
    assert birth_hold_reasons(nik, date(1899, 8, 5), "PEREMPUAN") == []


def test_unknown_region_prefix_is_a_hold() -> None:
    assert region_hold_reasons(parse_nik("3526014508990001")) == []
    (reason,) = region_hold_reasons(parse_nik("3526994508990001"))
    assert "35.26.99" in reason and "idn-area-data" in reason


def test_make_nik_rejects_bad_parts() -> None:
    with pytest.raises(ValueError):
        make_nik("35.26.01", date(1999, 8, 5), female=True, sequence=0)
    with pytest.raises(ValueError):
        make_nik("35.26", date(1999, 8, 5), female=True, sequence=1)


@given(
    district=st.sampled_from(region_table().districts),
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    female=st.booleans(),
    sequence=st.integers(1, 9999),
)
def test_round_trip(district: str, born: date, female: bool, sequence: int) -> None:
    value = make_nik(district, born, female=female, sequence=sequence)
    nik = parse_nik(value)
    assert nik.value == value and len(value) == 16
    assert nik.region_code == district
    assert nik.is_female is female
    assert nik.sequence == sequence
    assert born in nik.birth_date_candidates()
    assert nik.birth_date(born) == born
    sex = "PEREMPUAN" if female else "LAKI-LAKI"
    assert nik_hold_reasons(nik, tanggal_lahir=born, jenis_kelamin=sex) == []


@given(st.text(max_size=20) | st.from_regex(r"[0-9]{16}", fullmatch=True))
def test_random_strings_never_raise_anything_but_nik_error(value: str) -> None:
    try:
        nik = parse_nik(value)
    except NikError:
        assert not is_nik(value)
        return
    assert is_nik(value)
    # every check on a parsed NIK returns reasons, never raises
    nik_hold_reasons(nik, tanggal_lahir=date(2000, 1, 1), jenis_kelamin="LAKI-LAKI")
    nik.birth_date(date(2026, 1, 1))
