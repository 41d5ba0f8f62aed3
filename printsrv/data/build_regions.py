"""Rebuild ``regions.csv.gz`` from an unpacked ``idn-area-data`` npm package.

Usage (from a temporary directory)::

    npm pack idn-area-data@4.0.1 && tar xzf idn-area-data-4.0.1.tgz
    python printsrv/data/build_regions.py package/ printsrv/data/regions.csv.gz

Only provinces, regencies/cities and districts are kept (villages and islands are large and
not needed). The first line of the output is ``#source,<package>,<version>``; every other line
is ``code,name`` with the names exactly as published (mixed case).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from pathlib import Path


def build(package_dir: Path, out: Path) -> int:
    """Write the compact table; returns the number of regions written."""
    meta = json.loads((package_dir / "package.json").read_text())
    rows: list[tuple[str, str]] = []
    for name in ("provinces.csv", "regencies.csv", "districts.csv"):
        with open(package_dir / "data" / name, newline="", encoding="utf-8") as fh:
            rows.extend((row["code"], row["name"].strip()) for row in csv.DictReader(fh))
    rows.sort()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["#source", meta["name"], meta["version"]])
    writer.writerows(rows)
    # mtime=0 keeps the gzip bytes reproducible
    out.write_bytes(gzip.compress(buf.getvalue().encode("utf-8"), compresslevel=9, mtime=0))
    return len(rows)


if __name__ == "__main__":
    print(build(Path(sys.argv[1]), Path(sys.argv[2])), "regions written")
