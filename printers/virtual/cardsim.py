"""The ``ippeveprinter -c`` command of the virtual card printer.

ippeveprinter runs it once per document with the file as the last argument and the job's
attributes as ``IPP_*`` variables. It spends ribbon panels per card (state file), reports
``ATTR: marker-levels=`` and ``STATE:`` lines on stderr, and exits non-zero on a fault so that
ippeveprinter aborts the job.

Usage: ``python -m printers.virtual.cardsim --state DIR FILE``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from printers.virtual.simulator import LOW_REASON, MARKER_NAME, SIM_REASONS, CardSimulator


def main(argv: list[str] | None = None) -> int:
    """Handle one document; return the exit status ippeveprinter uses for the job."""
    parser = argparse.ArgumentParser(prog="cardsim")
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("document", type=Path)
    args = parser.parse_args(argv)
    sim = CardSimulator(args.state)
    duplex = os.environ.get("IPP_SIDES", "one-sided").startswith("two-sided")
    record = {
        "document": str(args.document),
        "env": {k: v for k, v in os.environ.items() if k.startswith("IPP_")},
    }
    result = sim.run_card(duplex=duplex, record=record)
    err = sys.stderr
    print(f"ATTR: marker-names='{MARKER_NAME}'", file=err)
    print(f"ATTR: marker-levels={result.level_after}", file=err)
    print("STATE: -" + ",".join((*SIM_REASONS, LOW_REASON)), file=err)
    if result.reasons:
        print("STATE: +" + ",".join(result.reasons), file=err)
    if result.ok:
        print(f"INFO: card printed, ribbon {result.level_after}%", file=err)
        return 0
    print(f"ERROR: card not printed: {result.reason}", file=err)
    return 1


if __name__ == "__main__":
    sys.exit(main())
