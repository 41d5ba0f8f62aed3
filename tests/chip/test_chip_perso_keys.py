"""Personalization keys: retired by PUT KEY before the lock, so a locked card never opens a
personalization session again (in memory and through pcscd + vpcd)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from chip.api import CardChannel
from chip.diversification import scp03_static_keys
from chip.errors import SecureChannelError
from chip.lds import LDS_AID, HolderData
from chip.personalization import PersonalizationKeys, PersonalizationOptions, personalize
from chip.scp03 import (
    initialize_update,
    key_check_value,
    open_host_session,
    parse_put_key,
    put_key_command,
)
from chip.simulator.card import SimulatedChannel
from chip.softkeys import SoftKeyDiversifier
from tests.chip.conftest import CardFactory


def test_put_key_round_trip_and_kcv() -> None:
    assert key_check_value(bytes.fromhex("404142434445464748494A4B4C4D4E4F")).hex() == "504a77"
    dek = os.urandom(16)
    keys = tuple(os.urandom(16) for _ in range(3))
    cmd = put_key_command(dek, 0x30, 0x31, keys)
    assert (cmd.cla, cmd.ins, cmd.p1, cmd.p2) == (0x80, 0xD8, 0x30, 0x81)
    assert all(k not in cmd.data for k in keys)  # never in the clear
    assert parse_put_key(dek, cmd.data) == (0x31, list(keys))
    with pytest.raises(ValueError, match="key check value"):
        parse_put_key(os.urandom(16), cmd.data)  # another DEK


def _initialize_update(channel: CardChannel, kvn: int) -> tuple[int, bytes, bytes]:
    """SELECT the application, INITIALIZE UPDATE; (SW, data, host challenge)."""
    select = bytes((0x00, 0xA4, 0x04, 0x0C, len(LDS_AID))) + LDS_AID
    assert channel.transmit(select)[-2:] == b"\x90\x00"
    challenge = os.urandom(8)
    raw = channel.transmit(initialize_update(kvn, challenge).encode())
    return int.from_bytes(raw[-2:], "big"), raw[:-2], challenge


def _check_locked_card_refuses(channel: CardChannel, uid: bytes,
                               master: SoftKeyDiversifier) -> None:
    sw, _, _ = _initialize_update(channel, 0x30)
    assert sw == 0x6A88  # key set 30 is gone
    sw, data, challenge = _initialize_update(channel, 0x00)  # "any key set": the random one
    assert sw == 0x9000
    with pytest.raises(SecureChannelError):  # nobody holds those keys
        open_host_session(scp03_static_keys(master, uid), challenge, data)


def test_locked_card_refuses_the_personalization_keys(
        make_card: CardFactory, holder: HolderData, keys: PersonalizationKeys,
        scp03_master: SoftKeyDiversifier) -> None:
    card = make_card()
    personalize(SimulatedChannel(card), holder, keys)
    assert card.replaced_keys is not None and card.replaced_keys.kvn == 0x31
    _check_locked_card_refuses(SimulatedChannel(card), card.config.uid, scp03_master)


def test_without_retiring_the_keys_still_open_a_session(
        make_card: CardFactory, holder: HolderData, keys: PersonalizationKeys,
        scp03_master: SoftKeyDiversifier) -> None:
    """The check above is not vacuous: without PUT KEY the old keys still work."""
    card = make_card()
    personalize(SimulatedChannel(card), holder, keys,
                dataclasses.replace(PersonalizationOptions(), retire_keys=False))
    sw, data, challenge = _initialize_update(SimulatedChannel(card), 0x30)
    assert sw == 0x9000
    open_host_session(scp03_static_keys(scp03_master, card.config.uid), challenge, data)


@pytest.mark.realstack
def test_locked_card_refuses_the_personalization_keys_through_pcscd(
        pcsc_stack: Any, holder: HolderData, keys: PersonalizationKeys,
        scp03_master: SoftKeyDiversifier) -> None:
    from chip.pcsc import PcscChannel
    from chip.personalization import personalize_reader

    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    result = personalize_reader(reader, holder, keys)
    channel = PcscChannel(reader)
    try:
        _check_locked_card_refuses(channel, bytes.fromhex(result.chip_uid), scp03_master)
    finally:
        channel.close()
