"""The record validator: one rule at a time, then properties over random mutations."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from printsrv.validation import (
    ALL_FIELDS,
    COMMON_FIELDS,
    OPTIONAL_FIELDS,
    FieldProblem,
    RecordCheck,
    validate_record,
)
from tests.validation.validation_data import TODAY, first


def check(rec: object, **kw: Any) -> RecordCheck:
    return validate_record(rec, today=kw.pop("today", TODAY), **kw)


def fields(result: RecordCheck) -> set[str]:
    return {p.field for p in result.problems}


def reasons(result: RecordCheck, name: str) -> list[str]:
    return [p.reason for p in result.problems if p.field == name]


def test_valid_records_pass(ktp: dict, wna: dict, kia: dict, kia_small: dict) -> None:
    for rec in (ktp, wna, kia, kia_small):
        result = check(rec)
        assert result.ok, result.problems
        assert not result.held, result.hold_reasons


@pytest.mark.parametrize("obj", [None, [], "x", 1, 1.5, True, ["a"]])
def test_non_object_is_a_problem(obj: object) -> None:
    result = check(obj)
    assert not result.ok and fields(result) == {"record"}
    assert result.request_id == "?" and result.nik == "?"


def test_every_problem_is_reported(ktp: dict) -> None:
    ktp.update(nama="budi", rt="1", agama="JEDI", penunggalan="GANDA", extra=1)
    del ktp["alamat"]
    result = check(ktp)
    assert {"nama", "rt", "agama", "penunggalan", "extra", "alamat"} <= fields(result)
    assert str(result.problems[0]).startswith(result.problems[0].field + ": ")


def test_card_type_defaults_to_ktp_el(ktp: dict) -> None:
    del ktp["card_type"]
    result = check(ktp)
    assert result.ok and result.record["card_type"] == "KTP-EL"
    ktp["card_type"] = "SIM"
    assert "card_type" in fields(check(ktp))


def test_normalized_record_trims_free_text(ktp: dict) -> None:
    ktp["alamat"] = "  JL.  MERDEKA   NO. 1 "
    result = check(ktp)
    assert result.ok and result.record["alamat"] == "JL. MERDEKA NO. 1"
    assert list(result.record)[:3] == ["card_type", "request_id", "nik"]


@pytest.mark.parametrize("value", ["", "has space", "a" * 65, "x\ny", "ÄB"])
def test_request_id(ktp: dict, value: str) -> None:
    ktp["request_id"] = value
    assert "request_id" in fields(check(ktp))


def test_nik_not_16_digits_is_a_problem_other_disagreements_hold(ktp: dict) -> None:
    nik = ktp["nik"]
    ktp["nik"] = nik[:15]
    assert "nik" in fields(check(ktp))
    # flip the sex in the NIK: a hold, not a problem
    day = int(nik[6:8])
    ktp["nik"] = f"{nik[:6]}{(day + 40) % 80 if day != 40 else 80:02d}{nik[8:]}"
    result = check(ktp)
    assert result.ok and result.held
    assert any("means" in r for r in result.hold_reasons)


def test_nik_birth_date_disagreement_holds(ktp: dict) -> None:
    born = date.fromisoformat(ktp["tanggal_lahir"])
    ktp["tanggal_lahir"] = (
        born.replace(year=born.year - 1).isoformat()
        if born.month != 2
        else (born.replace(day=1, year=born.year - 1).isoformat())
    )
    result = check(ktp)
    assert result.ok and any("tanggal_lahir" in r for r in result.hold_reasons)


def test_unknown_nik_region_holds(ktp: dict) -> None:
    ktp["nik"] = "9999" + ktp["nik"][4:]
    result = check(ktp)
    assert result.ok and any("region prefix 99.99" in r for r in result.hold_reasons)


@pytest.mark.parametrize("value", ["12345", "35260104089900012", "352601040899000X"])
def test_no_kk(ktp: dict, value: str) -> None:
    ktp["no_kk"] = value
    assert "no_kk" in fields(check(ktp))
    del ktp["no_kk"]
    assert check(ktp).ok


@pytest.mark.parametrize(
    "name", ["BUDI", "A", "MA'RUF", "H. AHMAD, S.PD.", "ANNA-LENA O'BRIEN", "X" * 60]
)
def test_nama_valid(ktp: dict, name: str) -> None:
    ktp["nama"] = name
    assert check(ktp).ok


@pytest.mark.parametrize(
    "name", ["budi", "BUDI2", "BUDI_S", "X" * 61, "-BUDI", "ÉLISE", "BUDI (ALM)", "   "]
)
def test_nama_invalid(ktp: dict, name: str) -> None:
    ktp["nama"] = name
    assert "nama" in fields(check(ktp))


@pytest.mark.parametrize("value", ["2026-02-30", "05-08-1999", "1999-8-5", "2026-11-24", "x"])
def test_tanggal_lahir(ktp: dict, value: str) -> None:
    ktp["tanggal_lahir"] = value
    assert "tanggal_lahir" in fields(check(ktp))


def test_age_rule_for_ktp_el(ktp: dict) -> None:
    ktp["tanggal_lahir"] = "2010-11-24"  # 15 on 2026-11-23
    ktp["status_perkawinan"] = "BELUM KAWIN"
    assert any("17" in r for r in reasons(check(ktp), "tanggal_lahir"))
    ktp["status_perkawinan"] = "KAWIN"
    assert "tanggal_lahir" not in fields(check(ktp))
    ktp["tanggal_lahir"] = "2009-11-23"  # 17 today
    ktp["status_perkawinan"] = "BELUM KAWIN"
    assert "tanggal_lahir" not in fields(check(ktp))


def test_age_rule_for_wna_uses_english(wna: dict) -> None:
    wna["tanggal_lahir"] = "2012-01-01"
    wna["status_perkawinan"] = "SINGLE"
    assert "tanggal_lahir" in fields(check(wna))


@pytest.mark.parametrize("value", ["PRIA", "L", "laki-laki", "WANITA"])
def test_jenis_kelamin(ktp: dict, value: str) -> None:
    ktp["jenis_kelamin"] = value
    assert "jenis_kelamin" in fields(check(ktp))


@pytest.mark.parametrize("value", ["A", "AB+", "O-", "-", "B"])
def test_golongan_darah_valid(ktp: dict, value: str) -> None:
    ktp["golongan_darah"] = value
    assert check(ktp).ok


@pytest.mark.parametrize("value", ["C", "AB++", "a", "0", "O +", "+"])
def test_golongan_darah_invalid(ktp: dict, value: str) -> None:
    ktp["golongan_darah"] = value
    assert "golongan_darah" in fields(check(ktp))


def test_alamat_length(ktp: dict) -> None:
    ktp["alamat"] = "A" * 100
    assert check(ktp).ok
    ktp["alamat"] = "A" * 101
    assert "alamat" in fields(check(ktp))
    ktp["alamat"] = "jl. merdeka"
    assert "alamat" in fields(check(ktp))


@pytest.mark.parametrize("field", ["rt", "rw"])
@pytest.mark.parametrize("value", ["1", "01", "0001", "abc", "00 1"])
def test_rt_rw(ktp: dict, field: str, value: str) -> None:
    ktp[field] = value
    assert field in fields(check(ktp))


@pytest.mark.parametrize("field", ["kel_desa", "kecamatan", "kabupaten_kota", "provinsi"])
def test_region_names_upper_case(ktp: dict, field: str) -> None:
    ktp[field] = ktp[field].title()
    assert field in fields(check(ktp))


@pytest.mark.parametrize("field", ["tempat_lahir", "pekerjaan", "tempat_terbit"])
def test_other_upper_case_fields(ktp: dict, field: str) -> None:
    ktp[field] = "Bangkalan"
    assert field in fields(check(ktp))


def test_agama_from_configuration(ktp: dict) -> None:
    for value in ("KATHOLIK", "BUDHA", "KHONGHUCU", "KEPERCAYAAN TERHADAP TUHAN YME"):
        ktp["agama"] = value
        assert check(ktp).ok
    ktp["agama"] = "ISLAM"
    assert "agama" in fields(check(ktp, religions=("KRISTEN",)))
    ktp["agama"] = "islam"
    assert "agama" in fields(check(ktp))


def test_status_perkawinan_sets(ktp: dict, wna: dict) -> None:
    for value in ("KAWIN TERCATAT", "KAWIN BELUM TERCATAT", "CERAI HIDUP", "CERAI MATI"):
        ktp["status_perkawinan"] = value
        assert check(ktp).ok
    ktp["status_perkawinan"] = "MARRIED"
    assert "status_perkawinan" in fields(check(ktp))
    for value in ("SINGLE", "MARRIED", "DIVORCED", "WIDOWED"):
        wna["status_perkawinan"] = value
        assert check(wna).ok
    wna["status_perkawinan"] = "KAWIN"
    assert "status_perkawinan" in fields(check(wna))


def test_kewarganegaraan_and_negara(ktp: dict, wna: dict) -> None:
    ktp["kewarganegaraan"] = "INDONESIA"
    assert "kewarganegaraan" in fields(check(ktp))
    for value in ("XXX", "jpn", "JP", "IDN"):
        wna["negara"] = value
        assert "negara" in fields(check(wna)), value
    del wna["negara"]
    assert "negara" in fields(check(wna))


def test_negara_on_wni(ktp: dict) -> None:
    ktp["negara"] = "IDN"
    assert check(ktp).ok
    ktp["negara"] = "MYS"
    assert "negara" in fields(check(ktp))


def test_berlaku_hingga(ktp: dict, wna: dict, kia: dict) -> None:
    ktp["berlaku_hingga"] = "2030-01-01"
    assert "berlaku_hingga" in fields(check(ktp))
    wna["berlaku_hingga"] = "SEUMUR HIDUP"
    assert "berlaku_hingga" in fields(check(wna))
    wna["berlaku_hingga"] = "2026-11-22"
    assert "berlaku_hingga" in fields(check(wna))
    wna["berlaku_hingga"] = "2026-13-01"
    assert "berlaku_hingga" in fields(check(wna))
    kia["berlaku_hingga"] = "SEUMUR HIDUP"
    assert check(kia).ok


@pytest.mark.parametrize("value", ["GANDA", "tunggal", "DUPLICATE_RECORD", ""])
def test_penunggalan_must_be_tunggal(ktp: dict, value: str) -> None:
    ktp["penunggalan"] = value
    assert "penunggalan" in fields(check(ktp))


@pytest.mark.parametrize("value", ["35.26", "3526.01", "35.26.1", "35.26.99", "99.99.99", "x"])
def test_office_code(ktp: dict, value: str) -> None:
    ktp["office_code"] = value
    assert "office_code" in fields(check(ktp))


@pytest.mark.parametrize(
    "value", ["081234567890", "+6281234567890x", "+1234567890", "+62", "+62 812"]
)
def test_phone_invalid(ktp: dict, value: str) -> None:
    ktp["phone"] = value
    assert "phone" in fields(check(ktp))


def test_phone_optional(ktp: dict) -> None:
    ktp["phone"] = "+6281234567890"
    assert check(ktp).ok
    ktp.pop("phone")
    assert check(ktp).ok
    ktp["phone"] = None
    assert check(ktp).ok


def test_unknown_keys(ktp: dict) -> None:
    ktp["hobby"] = "X"
    ktp["nama_kepala_keluarga"] = "BUDI"  # KIA only
    result = check(ktp)
    assert {"hobby", "nama_kepala_keluarga"} <= fields(result)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("photo", "../x.jpg"),
        ("photo", "/abs/photo.jpg"),
        ("photo", "media/x/photo.png"),
        ("signature", "media/x/signature.jpg"),
        ("finger_left_index", "media//finger.fmr"),
        ("finger_left_index", "media\\x\\finger.fmr"),
        ("photo", None),
        ("photo", 5),
    ],
)
def test_media_paths(ktp: dict, key: str, value: object) -> None:
    ktp["media"][key] = value
    assert f"media.{key}" in fields(check(ktp))


def test_media_object_shape(ktp: dict) -> None:
    ktp["media"]["iris"] = "media/x/iris.png"
    del ktp["media"]["signature"]
    assert {"media.iris", "media.signature"} <= fields(check(ktp))
    ktp["media"] = ["photo.jpg"]
    assert "media" in fields(check(ktp))


def test_kia_rules(kia: dict, kia_small: dict) -> None:
    assert check(kia).ok and check(kia_small).ok
    bad = copy.deepcopy(kia)
    bad["media"]["finger_right_index"] = "media/x/finger-right-index.fmr"
    assert "media.finger_right_index" in fields(check(bad))
    bad = copy.deepcopy(kia)
    bad["media"]["photo"] = None
    assert "media.photo" in fields(check(bad))
    bad = copy.deepcopy(kia_small)
    bad["media"]["photo"] = "media/x/photo.jpg"
    assert "media.photo" in fields(check(bad))
    for key in ("no_kk", "nama_kepala_keluarga", "no_akta_lahir"):
        bad = copy.deepcopy(kia)
        del bad[key]
        assert key in fields(check(bad))
    bad = copy.deepcopy(kia)
    bad["tanggal_lahir"] = "2000-01-01"
    assert "tanggal_lahir" in fields(check(bad))
    ok = copy.deepcopy(kia)
    ok["media"]["signature"] = "media/x/signature.png"  # accepted, not required
    assert check(ok).ok


def test_required_fields(ktp: dict) -> None:
    for name in COMMON_FIELDS:
        if name in OPTIONAL_FIELDS or name not in ktp:
            continue
        rec = copy.deepcopy(ktp)
        del rec[name]
        assert name in fields(check(rec)), name


# -- properties ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
field_names = st.sampled_from((*ALL_FIELDS, "media.photo", "media.finger_left_index", "x"))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["ktp", "wna", "kia", "kia_small"]),
    edits=st.lists(st.tuples(field_names, json_values | st.just(...)), max_size=6),
    today=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)),
)
def test_random_mutations_never_raise(kind: str, edits: list, today: date) -> None:
    rec = {
        "ktp": lambda: first("KTP-EL"),
        "wna": lambda: first("KTP-EL", "WNA"),
        "kia": lambda: first("KIA", photo=True),
        "kia_small": lambda: first("KIA", photo=False),
    }[kind]()
    for name, value in edits:
        target, key = (rec.get("media"), name[6:]) if name.startswith("media.") else (rec, name)
        if not isinstance(target, dict):
            continue
        if value is ...:
            target.pop(key, None)
        else:
            target[key] = value
    result = validate_record(rec, today=today)
    assert isinstance(result, RecordCheck)
    assert all(isinstance(p, FieldProblem) and p.field and p.reason for p in result.problems)
    assert all(isinstance(r, str) and r for r in result.hold_reasons)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8) | json_values)
def test_arbitrary_json_never_raises(obj: object) -> None:
    result = validate_record(obj, today=TODAY)
    assert not result.ok


# One corruption per field: a wrong type, and (for strings) an empty value and a bad value.
BAD_VALUES: dict[str, list[object]] = {
    "card_type": ["KTP"],
    "request_id": ["a b"],
    "nik": ["123"],
    "no_kk": ["123"],
    "nama": ["budi1"],
    "tempat_lahir": ["bangkalan"],
    "tanggal_lahir": ["2999-01-01", "1999-02-30"],
    "jenis_kelamin": ["X"],
    "golongan_darah": ["Z"],
    "alamat": ["a" * 101],
    "rt": ["1"],
    "rw": ["1234"],
    "kel_desa": ["desa"],
    "kecamatan": ["kec"],
    "kabupaten_kota": ["kab"],
    "provinsi": ["prov"],
    "agama": ["JEDI"],
    "status_perkawinan": ["JOMBLO"],
    "pekerjaan": ["guru"],
    "kewarganegaraan": ["WNX"],
    "negara": ["XYZ"],
    "berlaku_hingga": ["BESOK"],
    "tempat_terbit": ["x"],
    "penunggalan": ["GANDA"],
    "office_code": ["00.00.00"],
    "phone": ["12"],
    "media": ["photo.jpg"],
    "nama_kepala_keluarga": ["1"],
    "no_akta_lahir": ["akta?"],
}


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["ktp", "wna", "kia"]),
    data=st.data(),
)
def test_each_single_field_corruption_names_that_field(kind: str, data: st.DataObject) -> None:
    rec = {
        "ktp": lambda: first("KTP-EL"),
        "wna": lambda: first("KTP-EL", "WNA"),
        "kia": lambda: first("KIA", photo=True),
    }[kind]()
    name = data.draw(st.sampled_from(sorted(n for n in BAD_VALUES if n in rec)))
    value = data.draw(st.sampled_from([*BAD_VALUES[name], "", 17, 1.5, True, [], {}]))
    rec[name] = value
    result = validate_record(rec, today=TODAY)
    named = {f.split(".")[0] for f in fields(result)}  # media.photo names media
    assert name in named, (name, value, result.problems)
