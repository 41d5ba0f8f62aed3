"""The virtual card printer: a supply/fault simulator shared by the directory printer and the
``ippeveprinter -c`` command (:mod:`printers.virtual.cardsim`)."""

from printers.virtual.simulator import (
    ATTRIBUTE_FILE,
    FAULT_ALIASES,
    SIM_REASONS,
    CardSimulator,
    SimResult,
)

__all__ = ["ATTRIBUTE_FILE", "FAULT_ALIASES", "SIM_REASONS", "CardSimulator", "SimResult"]
