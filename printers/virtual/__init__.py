"""The virtual card printer: a supply/fault simulator shared by the directory printer and the
``ippeveprinter -c`` command (:mod:`printers.virtual.cardsim`)."""

from printers.virtual.simulator import FAULT_ALIASES, SIM_REASONS, CardSimulator, SimResult

__all__ = ["FAULT_ALIASES", "SIM_REASONS", "CardSimulator", "SimResult"]
