"""The shipped Kemendagri region table."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

from printsrv import regions
from printsrv.regions import (
    REGIONS_FILE,
    RegionLevel,
    is_known_nik_prefix,
    is_known_office_code,
    load_region_table,
    lookup,
    names_for,
    region_table,
)


def test_loads_fast_and_completely() -> None:
    timings = []
    for _ in range(5):  # best of five: the intrinsic cost, not the machine's load
        start = time.perf_counter()
        table = load_region_table()
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.05, f"{min(timings) * 1000:.1f} ms"
    assert len(table) > 7800
    assert len(table.districts) > 7000
    assert table.source == "idn-area-data" and re.fullmatch(r"\d+\.\d+\.\d+", table.version)
    assert region_table() is region_table()  # cached


def test_licence_file_names_the_shipped_version() -> None:
    text = (REGIONS_FILE.parent / "REGIONS-LICENSE.md").read_text()
    table = region_table()
    assert f"**{table.version}**" in text and "ODbL" in text and "idn-area-data" in text


def test_file_is_compact() -> None:
    assert REGIONS_FILE.stat().st_size < 200_000
    first = gzip.decompress(REGIONS_FILE.read_bytes()).split(b"\n", 1)[0]
    assert first.startswith(b"#source,idn-area-data,")


def test_lookup_levels_and_names() -> None:
    jatim, bangkalan, kec = lookup("35"), lookup("35.26"), lookup("35.26.01")
    assert jatim and bangkalan and kec
    assert jatim.level is RegionLevel.PROVINCE and jatim.upper_name == "JAWA TIMUR"
    assert bangkalan.level is RegionLevel.REGENCY and not bangkalan.is_city
    assert bangkalan.upper_name == "KABUPATEN BANGKALAN" and bangkalan.short_name == "BANGKALAN"
    assert kec.level is RegionLevel.DISTRICT and kec.parent_code == "35.26"
    surabaya = lookup("35.78")
    assert surabaya and surabaya.is_city and surabaya.short_name == "SURABAYA"
    assert lookup("35.26.99") is None and lookup("") is None and lookup("3526") is None


def test_names_for_a_district() -> None:
    n = names_for("31.74.01")
    assert n.provinsi == "DAERAH KHUSUS IBUKOTA JAKARTA"
    assert n.kabupaten_kota == "KOTA ADMINISTRASI JAKARTA SELATAN"
    assert n.tempat_terbit == "JAKARTA SELATAN"
    assert n.kecamatan == "TEBET"


def test_every_regency_code_follows_the_kabupaten_kota_ranges() -> None:
    table = region_table()
    for code in {d[:5] for d in table.districts}:
        region = table.lookup(code)
        assert region is not None
        kk = int(code[3:])
        assert (1 <= kk <= 69) or (71 <= kk <= 99), code
        assert region.name.startswith("Kota" if kk >= 71 else "Kabupaten"), region


def test_prefix_and_office_checks() -> None:
    assert is_known_nik_prefix("3526014508990001")
    assert not is_known_nik_prefix("3526994508990001")
    assert not is_known_nik_prefix("35")
    assert is_known_office_code("35.26.01")
    assert not is_known_office_code("35.26") and not is_known_office_code("352601")
    assert not is_known_office_code("35.26.99")


def test_countries() -> None:
    c = regions.countries()
    assert c["JPN"] == "JAPAN" and "IDN" in c and len(c) == 249


def test_build_script_reproduces_the_file(tmp_path: Path) -> None:
    """The builder writes the same structure from a tiny fake package."""
    from printsrv.data.build_regions import build

    pkg = tmp_path / "package"
    (pkg / "data").mkdir(parents=True)
    (pkg / "package.json").write_text('{"name": "idn-area-data", "version": "9.9.9"}')
    (pkg / "data" / "provinces.csv").write_text("code,name\n35,Jawa Timur\n")
    (pkg / "data" / "regencies.csv").write_text("code,province_code,name\n35.26,35,Kabupaten X\n")
    (pkg / "data" / "districts.csv").write_text('code,regency_code,name\n35.26.01,35.26,"Ra""as"\n')
    out = tmp_path / "r.csv.gz"
    assert build(pkg, out) == 3
    table = load_region_table(out)
    assert table.version == "9.9.9"
    assert names_for("35.26.01").provinsi == "JAWA TIMUR"
    assert table.names("35.26.01").kecamatan == 'RA"AS'
