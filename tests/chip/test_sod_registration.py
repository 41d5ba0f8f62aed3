"""The LDS security object's content type is known by name whatever asn1crypto did first."""

from __future__ import annotations

import subprocess
import sys

from printsrv import PROJECT_ROOT

SNIPPET = """
from asn1crypto import cms
{before}
import chip.sod
assert cms.ContentType("ldsSecurityObject").dotted == "2.23.136.1.1.1"
"""


def test_known_when_names_were_used_before_import() -> None:
    code = SNIPPET.format(before='cms.ContentType("signed_data")')
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=60)


def test_known_when_imported_first() -> None:
    code = SNIPPET.format(before="")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=60)
