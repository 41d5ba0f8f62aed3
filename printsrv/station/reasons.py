"""Why a station is paused: the texts the daemon writes, and how an operator reads them.

The daemon writes its pause reasons in English: the log, the audit event and the CLI show them
as written. The print room reads them on the station page in Bahasa Indonesia first
(:func:`in_indonesian`). A reason is one of the fixed texts below, or a known lead
(``"reader gone: "``) followed by a device's own words, which are kept as they are.
"""

from __future__ import annotations

from printers.api import Fault

#: What the printer's fault means for the operator (the pause reason of each fault).
PAUSE_TEXT: dict[Fault, str] = {
    Fault.JAM: "card jam: clear the card path",
    Fault.RIBBON_OUT: "ribbon out: load a new ribbon",
    Fault.COVER_OPEN: "cover open: close the printer cover",
    Fault.MEDIA_EMPTY: "hopper empty: load blanks into the printer",
    Fault.PRINTER_GONE: "printer gone: check power and cable",
    Fault.REJECTED: "printer queue paused or rejecting jobs",
    Fault.UNKNOWN: "printer reports an unknown problem",
}
#: The one fault → spoil-cause table: the daemon, recovery and ``station resolve`` use it.
#: A job the print system refused (``rejected``: queue paused, job refused) printed nothing
#: on a card whose chip may already be written: the card is lost to the printer, as when the
#: printer goes away, not to a print defect (nothing was printed) nor to an unknown crash
#: (the printer said what happened).
SPOIL_CAUSE: dict[Fault | None, str] = {
    Fault.JAM: "jam_misfeed",
    Fault.RIBBON_OUT: "ribbon_fault",
    Fault.COVER_OPEN: "jam_misfeed",
    Fault.MEDIA_EMPTY: "jam_misfeed",
    Fault.PRINTER_GONE: "printer_gone",
    Fault.REJECTED: "printer_gone",
    Fault.UNKNOWN: "unknown_crash",
    None: "print_defect",  # the job completed but the card came out bad
}


def spoil_cause(fault: Fault | str | None) -> str:
    """The ledger's spoil cause for a printer fault (its code, or the fault itself)."""
    try:
        key = Fault(fault) if fault is not None else None
    except ValueError:
        return "unknown_crash"
    return SPOIL_CAUSE.get(key, "unknown_crash")


NO_BLANKS = "no blanks in the hopper: load blanks"
QUEUE_NOT_ACCEPTING = "printer queue is not accepting jobs"
QUEUE_STOPPED = "printer stopped (queue disabled)"

#: Leads of reasons that carry a device's or library's own words after them.
PRINTER_GONE = "printer gone: "
READER_GONE = "reader gone: "
PCSC_GONE = "reader gone: PC/SC service unavailable: "
ENCODER_ERROR = "encoder software error: "
#: Queued records need blanks of these stock types (after the lead), which the hopper lacks.
NO_STOCK = "queued records need blanks not in the hopper: load stock type "
#: A print hold a supervisor must acknowledge (``hold acknowledge``), e.g. after a restore.
PRINT_HOLD = "held until a supervisor acknowledges: "
PRINTER_ERROR = "printer: "
DATABASE_GONE = "database unreachable: "
#: What to run once an encoder error is fixed (after the error's own words).
AFTER_FIXING = "after fixing it: "
#: An untouched blank the printer sent out of the encoder (the profile's ``eject``).
BLANK_EJECTED = "; the blank went out to the tray: put it back in the hopper"

_FIXED_ID: dict[str, str] = {
    PAUSE_TEXT[Fault.JAM]: "Kartu macet: bersihkan jalur kartu",
    PAUSE_TEXT[Fault.RIBBON_OUT]: "Pita habis: pasang pita baru",
    PAUSE_TEXT[Fault.COVER_OPEN]: "Penutup printer terbuka: tutup kembali",
    PAUSE_TEXT[Fault.MEDIA_EMPTY]: "Hopper printer kosong: isi blangko ke printer",
    PAUSE_TEXT[Fault.PRINTER_GONE]: "Printer tidak terhubung: periksa daya dan kabel",
    PAUSE_TEXT[Fault.REJECTED]: "Antrean printer dijeda atau menolak pekerjaan",
    PAUSE_TEXT[Fault.UNKNOWN]: "Printer melaporkan masalah yang tidak dikenal",
    NO_BLANKS: "Tidak ada blangko di hopper: muat blangko",
    QUEUE_NOT_ACCEPTING: "Antrean printer tidak menerima pekerjaan",
    QUEUE_STOPPED: "Printer berhenti (antrean dinonaktifkan)",
}
_LEADS_ID: tuple[tuple[str, str], ...] = (  # the longer of two leads with one start first
    (PCSC_GONE, "Pembaca kartu tidak terhubung: layanan PC/SC tidak tersedia: "),
    (PRINTER_GONE, "Printer tidak terhubung: "),
    (READER_GONE, "Pembaca kartu tidak terhubung: "),
    (ENCODER_ERROR, "Kesalahan perangkat lunak encoder: "),
    (NO_STOCK, "Rekaman antre memerlukan blangko yang tidak ada di hopper: muat jenis stok "),
    (PRINT_HOLD, "Ditahan sampai disetujui supervisor: "),
    (PRINTER_ERROR, "Printer: "),
    (DATABASE_GONE, "Basis data tidak terjangkau: "),
)


def in_indonesian(reason: str) -> str:
    """``reason`` as the print room reads it. A text this module does not know (an older
    daemon's, say) is returned as it is rather than guessed at."""
    fixed = _FIXED_ID.get(reason)
    if fixed is not None:
        return fixed
    for lead, lead_id in _LEADS_ID:
        if reason.startswith(lead):
            rest = reason[len(lead):].replace(AFTER_FIXING, "setelah diperbaiki, jalankan: ")
            rest = rest.replace(BLANK_EJECTED, "; blangko keluar ke baki: masukkan kembali ke "
                                "hopper")
            return lead_id + rest
    return reason
