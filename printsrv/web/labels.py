"""The words for the codes the pages show: station states, card phases and fates, spoil causes
and station pause reasons, in the reader's language (Bahasa Indonesia first, English from the
catalogue, as every msgid in the web layer)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from printsrv.station import reasons


def N_(text: str) -> str:
    """Mark ``text`` for the catalogue without translating it here (``pybabel extract -k N_``)."""
    return text


#: Spoil causes in Indonesian, as the ledger's documents (Berita Acara) are filed.
CAUSE_ID: dict[str, str] = {
    "factory_defect": N_("Cacat pabrik"),
    "print_defect": N_("Cacat cetak (mengelupas, luntur)"),
    "ribbon_fault": N_("Gangguan pita/film"),
    "chip_failure": N_("Gagal tulis chip"),
    "data_error": N_("Kesalahan data"),
    "jam_misfeed": N_("Macet/salah tarik"),
    "qc_reject": N_("Ditolak QC"),
    "test_print": N_("Cetak uji"),
    "handling_damage": N_("Rusak saat penanganan"),
    "unknown_crash": N_("Tidak diketahui (pemulihan)"),
    "printer_gone": N_("Printer hilang"),
    "missing": N_("Hilang"),
    "unknown": N_("Tidak diketahui"),
}

_WORDS: dict[str, dict[str, Any]] = {
    "station_state": {
        "idle": _l("siaga"),
        "running": _l("berjalan"),
        "paused": _l("jeda"),
        "offline": _l("tidak aktif"),
    },
    "station_mode": {
        "starting": _l("sedang mulai"),
        "running": _l("berjalan"),
        "paused": _l("jeda"),
        "stopped": _l("berhenti"),
    },
    "card_phase": {
        "intent": _l("niat dicatat"),
        "chip_started": _l("chip sedang ditulis"),
        "chip_done": _l("chip selesai"),
        "print_submitted": _l("sedang dicetak"),
        "finished": _l("selesai"),
    },
    "card_outcome": {
        "issued": _l("terbit"),
        "spoiled": _l("rusak"),
        "released": _l("blangko kembali ke hopper"),
    },
    "cause": {code: _l(text) for code, text in CAUSE_ID.items()},
}


def label(kind: str, code: str | None) -> str:
    """The word for ``code`` of ``kind`` (``station_state``, ``station_mode``, ``card_phase``,
    ``card_outcome``, ``cause``) in the page's language; an unknown code as it is."""
    if not code:
        return ""
    word = _WORDS[kind].get(code)
    return str(word) if word is not None else code


def card_result(outcome: str | None, cause: str | None) -> str:
    """A card's fate and its cause, as one cell reads (``rusak Gagal tulis chip``)."""
    return f"{label('card_outcome', outcome)} {label('cause', cause)}".strip()


def pause_reason(reason: str | None, locale: str) -> str:
    """A station's pause reason as the reader reads it: written in English by the daemon,
    shown in Indonesian unless the page is in English."""
    if not reason:
        return ""
    return reason if locale == "en" else reasons.in_indonesian(reason)
