"""APDU and TLV round trips (hypothesis), the status-word table, the ATR parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chip import errors
from chip.apdu import STATUS_WORDS, CommandApdu, ResponseApdu, Sw, is_success, status_error
from chip.cardops import atr_extended_length
from chip.simulator.card import make_atr
from chip.tlv import encode_length, iter_tlv, parse, read_header, tlv, unwrap

byte = st.integers(0, 255)


@st.composite
def commands(draw: st.DrawFn) -> CommandApdu:
    data = draw(st.binary(max_size=600))
    le = draw(st.none() | st.integers(1, 65536))
    return CommandApdu(draw(byte), draw(byte), draw(byte), draw(byte), data, le,
                       extended=draw(st.booleans()))


@given(commands())
def test_command_apdu_round_trip(cmd: CommandApdu) -> None:
    raw = cmd.encode()
    back = CommandApdu.decode(raw)
    assert back.encode() == raw
    assert back.data == cmd.data
    assert back.le == cmd.le


def test_short_and_extended_forms() -> None:
    assert CommandApdu(0, 0xB0, 0, 0, le=256).encode().hex() == "00b0000000"
    assert CommandApdu(0, 0xB0, 0, 0, le=1000).encode().hex() == "00b0000000" "03e8"
    assert CommandApdu(0, 0xD6, 0, 0, b"\x01" * 300).encode()[4:7] == b"\x00\x01\x2c"
    with pytest.raises(ValueError):
        CommandApdu.decode(b"\x00\xa4")


tags = (st.integers(0x01, 0xFE).filter(lambda t: t & 0x1F != 0x1F)
        | st.integers(0x1F, 0x7F).map(lambda b: 0x5F00 | b)
        | st.integers(0x1F, 0x7F).map(lambda b: 0x7F00 | b))


@given(st.lists(st.tuples(tags, st.binary(max_size=300)), max_size=8))
def test_tlv_round_trip(items: list[tuple[int, bytes]]) -> None:
    encoded = b"".join(tlv(t, v) for t, v in items)
    assert parse(encoded) == items


@given(st.integers(0, 2**24))
def test_length_round_trip(n: int) -> None:
    raw = b"\x04" + encode_length(n)
    assert read_header(raw)[2] == n


@given(st.binary(max_size=64))
def test_tlv_parser_never_crashes(raw: bytes) -> None:
    try:
        for _tag, value in iter_tlv(raw):
            assert len(value) <= len(raw)
    except ValueError:
        pass


def test_unwrap_requires_single_object() -> None:
    assert unwrap(tlv(0x77, b"ab"), 0x77) == b"ab"
    with pytest.raises(ValueError):
        unwrap(tlv(0x77, b"ab") + b"\x00", 0x77)


@pytest.mark.parametrize(("sw", "cls"), [
    (0x6982, errors.SecurityStatusError),
    (0x6985, errors.ConditionsNotSatisfiedError),
    (0x6A82, errors.FileMissingError),
    (0x6A84, errors.NotEnoughMemoryError),
    (0x6700, errors.WrongLengthError),
    (0x6C10, errors.WrongLengthError),
    (0x6A80, errors.WrongDataError),
    (0x6B00, errors.WrongDataError),
    (0x6D00, errors.UnsupportedCommandError),
    (0x6E00, errors.UnsupportedCommandError),
    (0x6581, errors.MemoryFailureError),
    (0x6F00, errors.MemoryFailureError),
    (0x6F42, errors.MemoryFailureError),
    (0x6999, errors.StatusWordError),
])
def test_status_word_table(sw: int, cls: type[errors.StatusWordError]) -> None:
    exc = status_error(sw, "UPDATE DG2")
    assert type(exc) is cls and exc.sw == sw
    assert f"{sw:04X}" in str(exc) and "UPDATE DG2" in str(exc)
    assert isinstance(exc, errors.ChipError)


def test_every_table_entry_is_an_error_word() -> None:
    for sw, (cls, meaning) in STATUS_WORDS.items():
        assert not is_success(sw) and issubclass(cls, errors.StatusWordError) and meaning
    assert is_success(Sw.OK) and is_success(Sw.END_OF_FILE) and is_success(0x6310)


def test_response_decode() -> None:
    assert ResponseApdu.decode(b"\x01\x90\x00") == ResponseApdu(b"\x01", 0x9000)
    with pytest.raises(errors.TransmitError):
        ResponseApdu.decode(b"\x90")


def test_atr_announces_extended_length() -> None:
    assert atr_extended_length(make_atr(True))
    assert not atr_extended_length(make_atr(False))
    assert not atr_extended_length(bytes.fromhex("3B8F8001804F0CA000000306030001000000006A"))


def test_error_carries_card_state() -> None:
    exc = errors.CapacityError("too big", card_state=errors.CardState.BLANK)
    assert exc.retryable and "[card blank]" in str(exc)
    assert not errors.ChipError("x").retryable


@given(st.dictionaries(st.integers(1, 16), st.binary(min_size=32, max_size=32),
                       min_size=2, max_size=16))
def test_lds_security_object_round_trip(hashes: dict[int, bytes]) -> None:
    from chip.sod import LDSSecurityObject, lds_security_object

    der = lds_security_object(hashes)
    parsed = LDSSecurityObject.load(der)
    assert parsed.dump(force=True) == der
    got = {i["data_group_number"].native: i["data_group_hash_value"].native
           for i in parsed["data_group_hash_values"]}
    assert got == hashes
    assert [i["data_group_number"].native for i in parsed["data_group_hash_values"]] == sorted(
        hashes)
