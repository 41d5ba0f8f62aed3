"""What the chip carries, checked by parsers we did not write: the TD1 MRZ of DG1 (PyPI
``mrz``), the JPEG/PNG markers of photos and signatures, the ATR's compact-TLV historical bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from mrz.checker.td1 import TD1CodeChecker

from chip.lds import HolderData, dg1, parse_dg1, td1_mrz


def _lines(mrz: str) -> str:
    return "\n".join((mrz[:30], mrz[30:60], mrz[60:]))


def _errors(mrz: str) -> list[str]:
    checker = TD1CodeChecker(_lines(mrz))
    return list(checker.report.errors)


def test_lifetime_dg1_accepted_by_independent_mrz_parser(holder: HolderData) -> None:
    assert holder.expiry is None  # SEUMUR HIDUP
    mrz = parse_dg1(dg1(holder))
    # `mrz` does not know ICAO's long-document-number rule (check digit '<', overflow in the
    # optional data), so it flags the number's check digit, and nothing else.
    assert _errors(mrz) == ["false document number hash"]
    fields = TD1CodeChecker(_lines(mrz)).fields()
    assert fields.expiry_date == "991231" and fields.birth_date == "990805"
    # With a short document number (no long-number rule), the parser accepts all of it.
    short = dataclasses.replace(holder, document_number="A1234567")
    checker = TD1CodeChecker(_lines(td1_mrz(short)))
    assert bool(checker), checker.report.errors


def test_dated_dg1_accepted_too(holder: HolderData) -> None:
    wna = dataclasses.replace(holder, document_number="A1234567", expiry=dt.date(2031, 8, 5),
                              nationality="MYS")
    checker = TD1CodeChecker(_lines(td1_mrz(wna)))
    assert bool(checker), checker.report.errors


@pytest.mark.parametrize("broken", ["expiry", "composite"])
def test_independent_parser_catches_a_broken_mrz(holder: HolderData, broken: str) -> None:
    """The parser is not a rubber stamp: a wrong check digit is reported."""
    mrz = td1_mrz(dataclasses.replace(holder, document_number="A1234567"))
    pos = 44 if broken == "expiry" else 59
    wrong = mrz[:pos] + str((int(mrz[pos]) + 1) % 10) + mrz[pos + 1:]
    assert not TD1CodeChecker(_lines(wrong))
