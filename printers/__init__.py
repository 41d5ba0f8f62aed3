"""Card printers: the port, the CUPS backend, the directory stand-in, profiles and errors.

Standalone: never imports :mod:`printsrv`. Import :class:`printers.cups.CupsPrinter` from its
module (it needs pycups); everything here is pure Python.
"""

from printers.api import (
    CardPrinter,
    Fault,
    JobState,
    Marker,
    PrinterState,
    PrinterStatus,
    PrintOutcome,
    normalise_reasons,
)
from printers.documents import check_card_document, count_pages
from printers.errors import (
    CoverOpenError,
    JobFailedError,
    JobRejectedError,
    MediaEmptyError,
    MediaError,
    MediaJamError,
    PrinterError,
    PrinterGoneError,
    PrinterUnavailableError,
    PrintServerUnavailableError,
    ProfileError,
    QueueRejectingError,
    RibbonOutError,
)
from printers.profiles import PrinterProfile, available_profiles, get_profile, load_profile

__all__ = [
    "CardPrinter",
    "CoverOpenError",
    "Fault",
    "JobFailedError",
    "JobRejectedError",
    "JobState",
    "Marker",
    "MediaEmptyError",
    "MediaError",
    "MediaJamError",
    "PrintOutcome",
    "PrintServerUnavailableError",
    "PrinterError",
    "PrinterGoneError",
    "PrinterProfile",
    "PrinterState",
    "PrinterStatus",
    "PrinterUnavailableError",
    "ProfileError",
    "QueueRejectingError",
    "RibbonOutError",
    "available_profiles",
    "check_card_document",
    "count_pages",
    "get_profile",
    "load_profile",
    "normalise_reasons",
]
