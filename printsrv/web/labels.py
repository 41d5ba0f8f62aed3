"""The words for the codes the pages show: station states, card phases and fates, spoil causes
and station pause reasons, in the reader's language (Bahasa Indonesia first, English from the
catalogue, as every msgid in the web layer)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l


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
        "offline": _l("tidak aktif"),
        "starting": _l("sedang mulai"),
        "running": _l("berjalan"),
        "paused": _l("jeda"),
        "stopped": _l("berhenti"),
    },
    "printer_state": {
        "idle": _l("siap"),
        "processing": _l("mencetak"),
        "stopped": _l("berhenti"),
        "gone": _l("tidak terhubung"),
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
    "sms_report": {
        "delivered": _l("diterima ponsel"),
        "undeliverable": _l("tidak sampai ke ponsel"),
        "buffered": _l("tertahan di operator"),
        "smsc-accepted": _l("diterima operator seluler"),
        "smsc-rejected": _l("ditolak operator seluler"),
    },
    "notification_state": {
        "pending": _l("menunggu dikirim"),
        "sending": _l("sedang dikirim"),
        "sent": _l("terkirim ke operator"),
        "delivered": _l("diterima ponsel"),
        "failed": _l("gagal"),
        "invalid": _l("nomor tidak dapat dipakai"),
    },
    "handover_kind": {
        "receipt": _l("penerimaan"),
        "transfer": _l("pemindahan"),
    },
    "adjustment_kind": {
        "write_off": _l("hapus buku"),
        "correct_state": _l("koreksi status"),
    },
    "adjustment_status": {
        "pending": _l("menunggu persetujuan"),
        "approved": _l("disetujui"),
        "rejected": _l("ditolak"),
    },
    "blank_state": {
        "in_stock": _l("di gudang"),
        "in_hopper": _l("di hopper"),
        "reserved": _l("sedang dicetak"),
        "issued": _l("terbit"),
        "spoiled": _l("rusak"),
        "destroyed": _l("dimusnahkan"),
    },
    "request_kind": {
        "reprint": _l("cetak ulang"),
        "adjustment": _l("penyesuaian stok"),
    },
    "destruction_method": {
        "burned": _l("dibakar"),
        "shredded": _l("dicacah"),
    },
    "fate_kind": {
        "record": _l("rekaman"),
        "blank": _l("blangko"),
    },
    "fate_decision": {
        "recovered": _l("ditemukan (kartu terbit / blangko utuh)"),
        "spoiled": _l("ditemukan rusak"),
        "lost": _l("tidak ditemukan"),
    },
}

#: Destruction methods as the Berita Acara Pemusnahan (always Indonesian) names them.
METHOD_ID: dict[str, str] = {"burned": "dibakar", "shredded": "dicacah"}


def label(kind: str, code: str | None) -> str:
    """The word for ``code`` of ``kind`` (``station_state``, ``card_phase``,
    ``card_outcome``, ``cause``, ``notification_state``, ``handover_kind``,
    ``adjustment_kind``, ``blank_state``, ``request_kind``, ``destruction_method`` …) in the
    page's language; an unknown code as it is."""
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
    if locale == "en":
        return reason
    # Imported here: the reasons know the printer's faults (printers/), which the web app
    # does not load at import time.
    from printsrv.station import reasons

    return reasons.in_indonesian(reason)


# --- audit events as sentences ------------------------------------------------------------
# An event tag is ``source:subject:action``: the sentence is "ACTOR VERB NOUN SUBJECT", with
# the verb from the action and the noun from the subject, both in the reader's language
# (Indonesian and English share the subject-verb-object order).

_VERBS: dict[str, str] = {
    "arrive": N_("menerima di loket"),
    "handover": N_("menyerahkan kepada pemiliknya"),
    "remind": N_("mengirim SMS pengingat untuk"),
    "return": N_("mengembalikan ke gudang"),
    "accept": N_("menerima serah terima"),
    "acknowledge": N_("menyetujui"),
    "adjust": N_("menyesuaikan"),
    "approve": N_("menyetujui"),
    "assign": N_("menugaskan ke node kecamatan"),
    "enrol": N_("mendaftarkan"),
    "recall": N_("menarik kembali"),
    "batch": N_("meminta batch di"),
    "batch_request": N_("meminta batch di"),
    "create": N_("membuat"),
    "decrypt": N_("membuka enkripsi"),
    "destroy": N_("memusnahkan"),
    "download": N_("mengunduh"),
    "finish": N_("menghabiskan"),
    "hold": N_("menahan"),
    "import": N_("mengimpor"),
    "issue": N_("menerbitkan"),
    "load": N_("memuat"),
    "locked": N_("mengunci"),
    "login": N_("masuk ke"),
    "login_failed": N_("gagal masuk ke"),
    "logout": N_("keluar dari"),
    "pause": N_("menjeda"),
    "purge": N_("memusnahkan"),
    "receive": N_("menerima"),
    "recover": N_("memulihkan"),
    "reject": N_("menolak"),
    "lost": N_("menyatakan hilang"),
    "settle": N_("menetapkan"),
    "release": N_("melepaskan"),
    "request": N_("meminta"),
    "reserve": N_("menyiapkan"),
    "restore": N_("memulihkan"),
    "resume": N_("melanjutkan"),
    "revoke": N_("mencabut"),
    "role_change": N_("mengubah peran"),
    "sessions_end": N_("mengakhiri sesi"),
    "set_aside": N_("menyisihkan"),
    "spoil": N_("mencatat rusak"),
    "start": N_("memulai"),
    "state_change": N_("mengubah status"),
    "stop": N_("menghentikan"),
    "totp_enrol": N_("mendaftarkan TOTP untuk"),
    "totp_reset": N_("mengatur ulang TOTP"),
    "transfer": N_("memindahkan"),
    "unload": N_("mengeluarkan"),
    "update": N_("mengubah"),
    "upgrade": N_("memutakhirkan"),
    "usage": N_("mencatat pemakaian"),
    "view": N_("melihat"),
}
_NOUNS: dict[str, str] = {
    "ikd": N_("data aktivasi IKD"),
    "suket": N_("Surat Keterangan pengganti KTP-el"),
    "adjustment": N_("penyesuaian stok"),
    "anomaly": N_("anomali"),
    "audit": N_("log audit"),
    "backup": N_("cadangan"),
    "batch": N_("batch"),
    "blank": N_("blangko"),
    "card": N_("kartu"),
    "checkpoints": N_("berkas titik periksa"),
    "database": N_("basis data"),
    "destruction": N_("berita acara pemusnahan"),
    "document": N_("dokumen"),
    "export": N_("ekspor"),
    "handover": N_("berita acara serah terima"),
    "held": N_("rekaman ditahan"),
    "hold": N_("penahanan cetak"),
    "keys": N_("kunci"),
    "media": N_("biometrik"),
    "node": N_("node kecamatan"),
    "office": N_("kantor"),
    "queue": N_("antrean"),
    "record": N_("rekaman"),
    "reprint": N_("cetak ulang"),
    "ribbon": N_("pita"),
    "session": N_("aplikasi"),
    "station": N_("stasiun"),
    "stats": N_("statistik"),
    "stock": N_("stok"),
    "fate": N_("nasib yang tak diketahui"),
    "token": N_("token API"),
    "user": N_("pengguna"),
}
_RECORD_STATE: dict[str, str] = {
    "queued": N_("antre"),
    "held": N_("ditahan"),
    "printing": N_("sedang dicetak"),
    "issued": N_("terbit"),
    "at_desk": N_("di loket pengambilan"),
    "collected": N_("sudah diserahkan"),
    "failed": N_("gagal"),
    "cancelled": N_("dibatalkan"),
    "rejected": N_("ditolak"),
}


def record_state(code: str | None) -> str:
    """A record's state in the reader's language (``queued`` → *antre*)."""
    if not code:
        return ""
    text = _RECORD_STATE.get(code)
    return str(gettext(text)) if text else code


def event_kind(tag: str) -> str:
    """An event tag as the audit filter lists it: ``ledger:blank:transfer`` → *memindahkan
    blangko* (an unknown tag as it is)."""
    parts = tag.split(":")
    if len(parts) != 3 or parts[2] not in _VERBS:
        return tag
    noun = gettext(_NOUNS[parts[1]]) if parts[1] in _NOUNS else parts[1]
    return f"{gettext(_VERBS[parts[2]])} {noun}"


def event_sentence(tag: str, actor: str, subject: str | None, details: dict[str, Any]) -> str:
    """``tag`` as a sentence: who did what to which subject, with the detail that matters
    (a state change, a spoil cause, a count). An unknown tag keeps its code as the verb."""
    parts = tag.split(":")
    noun_code, action = (parts[1], parts[2]) if len(parts) == 3 else ("", tag)
    verb = gettext(_VERBS[action]) if action in _VERBS else tag
    noun = gettext(_NOUNS[noun_code]) if noun_code in _NOUNS else noun_code
    words = [actor, verb, noun, subject or ""]
    if action == "state_change" and "to" in details:
        words.append(f"({record_state(details.get('from'))} → {record_state(details['to'])})")
    cause = details.get("cause")
    if isinstance(cause, str) and cause:
        words.append(f"({label('cause', cause)})")
    count = details.get("count")
    if isinstance(count, int) and action != "state_change":
        words.append(gettext("(%(n)d blangko)") % {"n": count})
    serial = details.get("blank_serial")
    if isinstance(serial, str) and serial and serial != subject:
        words.append(gettext("pada blangko %(serial)s") % {"serial": serial})
    return " ".join(w for w in words if w)
