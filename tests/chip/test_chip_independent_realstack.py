"""A lifetime card written through pyscard → pcscd → vpcd → simulator and read back the same
way, checked by parsers we did not write: PyPI ``mrz`` on DG1, JPEG markers of DG2 and PNG
chunks of DG7 (from sources full of metadata), ``ATR_analysis`` (pcsc-tools) on the ATR."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from typing import Any

import pytest
from mrz.checker.td1 import TD1CodeChecker

from chip.bac import BacKey
from chip.cardops import compact_tlv, historical_bytes
from chip.face import face_image
from chip.lds import HolderData, biometric_instances, parse_dg1, td1_mrz
from chip.personalization import PersonalizationKeys, personalize_reader
from chip.softkeys import DemoPki, SoftKeyDiversifier
from chip.tlv import find
from chip.verification import verify_reader
from tests.chip.test_chip_independent import (
    SECRET,
    dirty_jpeg,
    dirty_png,
    metadata_markers,
    png_chunks,
)

pytestmark = pytest.mark.realstack


def test_lifetime_card_through_pcscd(pcsc_stack: Any, keys: PersonalizationKeys,
                                     holder: HolderData, pki: DemoPki,
                                     bio_master: SoftKeyDiversifier) -> None:
    assert holder.expiry is None
    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    dirty = dataclasses.replace(holder, photo_jpeg=dirty_jpeg(), signature_image=dirty_png())
    personalize_reader(reader, dirty, keys)
    report = verify_reader(reader, pki.csca_certificate_der, bio_master,
                           access=BacKey.from_mrz(td1_mrz(holder)))
    assert report.ok, report.problems

    mrz = parse_dg1(report.raw_files["DG1"])
    checker = TD1CodeChecker("\n".join((mrz[:30], mrz[30:60], mrz[60:])))
    assert list(checker.report.errors) == ["false document number hash"]  # long-number rule
    assert checker.fields().expiry_date == "991231"

    face = face_image(biometric_instances(report.raw_files["DG2"], 0x75)[0][1][0x5F2E])
    assert metadata_markers(face) == []
    signature = find(find(report.raw_files["DG7"], 0x67) or b"", 0x5F43) or b""
    assert set(png_chunks(signature)) <= {b"IHDR", b"IDAT", b"IEND", b"pHYs"}
    assert SECRET not in b"".join(report.raw_files.values())

    atr = bytes.fromhex(report.atr)
    assert [tag for tag, _ in compact_tlv(historical_bytes(atr))] == [5, 7]
    proc = subprocess.run(["ATR_analysis", atr.hex()], capture_output=True, text=True,
                          check=False, timeout=30)
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    assert "Tag: 5, len: 3 (card issuer's data)" in text, text
    assert "Card issuer data: 4B 54 50" in text and "Extended Lc and Le fields" in text
    assert "(correct checksum)" in text
