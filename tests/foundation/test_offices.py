"""Offices in one home (:mod:`printsrv.offices`): lookup by code, and which offices a member of
an office sees — a regency itself and its kecamatan offices, a kecamatan itself — the same
answer for the web, the API, a station's claim and a client's batch."""

from __future__ import annotations

import pytest

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.errors import NotFound
from printsrv.offices import (
    code_within,
    ensure_office,
    find_office,
    office_by_code,
    scope_office_ids,
    visible_office,
    visible_office_ids,
    visible_offices,
)


def test_a_regency_sees_its_kecamatan_and_a_kecamatan_only_itself(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        kec_a = ensure_office(s, "35.26.01", actor="t")
        kec_b = ensure_office(s, "35.26.02", actor="t")
        other = ensure_office(s, "35.27.01", actor="t")
        regency = office_by_code(s, "35.26")
        assert sorted(visible_office_ids(s, regency)) == sorted([regency.id, kec_a.id, kec_b.id])
        assert visible_office_ids(s, kec_a) == [kec_a.id]
        assert [o.code for o in visible_offices(s, regency)] == ["35.26", "35.26.01", "35.26.02"]
        assert scope_office_ids(s, "35.26") == visible_office_ids(s, regency)
        assert scope_office_ids(s, "99.99") == []
        assert visible_office(s, regency, "35.26.02") is kec_b
        with pytest.raises(NotFound):
            visible_office(s, kec_a, "35.26.02")  # a sibling kecamatan
        with pytest.raises(NotFound):
            visible_office(s, regency, other.code)


def test_lookup_by_code(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        assert find_office(s, "35.26.01") is None
        with pytest.raises(NotFound, match=r"no office '35\.26\.01'"):
            office_by_code(s, "35.26.01")
        made = ensure_office(s, "35.26.01", actor="t")
        assert office_by_code(s, "35.26.01") is made
        assert find_office(s, "35.26") is not None  # its regency was made with it


@pytest.mark.parametrize(("code", "scope", "within"), [
    ("35.26", "35.26", True),
    ("35.26.01", "35.26", True),
    ("35.261", "35.26", False),
    ("35.27.01", "35.26", False),
    ("35.26", "35.26.01", False),
])
def test_a_code_within_a_scope(code: str, scope: str, within: bool) -> None:
    assert code_within(code, scope) is within
