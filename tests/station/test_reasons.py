"""Pause reasons: every text the daemon writes reads in Indonesian on the station page."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from printers.api import Fault
from printsrv.station import reasons
from printsrv.station.reasons import in_indonesian

FIXED = [*reasons.PAUSE_TEXT.values(), reasons.NO_BLANKS, reasons.QUEUE_NOT_ACCEPTING,
         reasons.QUEUE_STOPPED]
LEADS = [reasons.PRINTER_GONE, reasons.READER_GONE, reasons.PCSC_GONE, reasons.ENCODER_ERROR,
         reasons.PRINTER_ERROR]


def test_every_fault_and_fixed_reason_has_its_own_indonesian_text() -> None:
    assert set(reasons.PAUSE_TEXT) == set(Fault)
    words = [in_indonesian(r) for r in FIXED]
    assert all(w != r for w, r in zip(words, FIXED, strict=True))
    assert len(set(words)) == len(FIXED)  # no two reasons read alike
    assert in_indonesian(reasons.PAUSE_TEXT[Fault.RIBBON_OUT]) == "Pita habis: pasang pita baru"


@given(lead=st.sampled_from(LEADS), detail=st.text(max_size=80))
def test_a_devices_own_words_are_kept_after_an_indonesian_lead(lead: str, detail: str) -> None:
    assume(lead + detail not in FIXED)  # "printer gone: check power and cable" is fixed
    assume(reasons.AFTER_FIXING not in detail)
    text = in_indonesian(lead + detail)
    assert text.endswith(detail) and not text.startswith(lead)


def test_an_unknown_reason_is_shown_as_written() -> None:
    assert in_indonesian("operator stopped the station") == "operator stopped the station"


def test_the_encoder_error_says_what_to_run_in_indonesian() -> None:
    written = (f"{reasons.ENCODER_ERROR}ValueError: boom; {reasons.AFTER_FIXING}"
               "python run.py station resume st1")
    assert in_indonesian(written) == ("Kesalahan perangkat lunak encoder: ValueError: boom; "
                                      "setelah diperbaiki, jalankan: python run.py station "
                                      "resume st1")
