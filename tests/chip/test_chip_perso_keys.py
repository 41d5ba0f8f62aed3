"""Personalization keys: retired by PUT KEY before the lock, so a locked card never opens a
personalization session again (in memory and through pcscd + vpcd)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from chip.api import CardChannel
from chip.bac import BacKey
from chip.cardops import cplc_identity
from chip.diversification import scp03_static_keys
from chip.errors import CardState, SecureChannelError, WrongCardError
from chip.lds import LDS_AID, HolderData, td1_mrz
from chip.personalization import PersonalizationKeys, PersonalizationOptions, personalize
from chip.scp03 import (
    initialize_update,
    key_check_value,
    open_host_session,
    parse_put_key,
    put_key_command,
)
from chip.simulator.card import SimulatedChannel
from chip.softkeys import DemoPki, SoftKeyDiversifier
from chip.verification import verify_card
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


def _card_identity(channel: CardChannel) -> bytes:
    raw = channel.transmit(bytes.fromhex("80CA9F7F00"))
    assert raw[-2:] == b"\x90\x00" and raw[:3] == b"\x9f\x7f\x2a"
    return cplc_identity(raw[3:-2])


def _check_locked_card_refuses(channel: CardChannel, master: SoftKeyDiversifier) -> None:
    identity = _card_identity(channel)
    sw, _, _ = _initialize_update(channel, 0x30)
    assert sw == 0x6A88  # key set 30 is gone
    sw, data, challenge = _initialize_update(channel, 0x00)  # "any key set": the random one
    assert sw == 0x9000
    with pytest.raises(SecureChannelError):  # nobody holds those keys
        open_host_session(scp03_static_keys(master, identity), challenge, data)


def test_locked_card_refuses_the_personalization_keys(
        make_card: CardFactory, holder: HolderData, keys: PersonalizationKeys,
        scp03_master: SoftKeyDiversifier) -> None:
    card = make_card()
    personalize(SimulatedChannel(card), holder, keys)
    assert card.replaced_keys is not None and card.replaced_keys.kvn == 0x31
    _check_locked_card_refuses(SimulatedChannel(card), scp03_master)


def test_without_retiring_the_keys_still_open_a_session(
        make_card: CardFactory, holder: HolderData, keys: PersonalizationKeys,
        scp03_master: SoftKeyDiversifier) -> None:
    """The check above is not vacuous: without PUT KEY the old keys still work."""
    card = make_card()
    personalize(SimulatedChannel(card), holder, keys,
                dataclasses.replace(PersonalizationOptions(), retire_keys=False))
    sw, data, challenge = _initialize_update(SimulatedChannel(card), 0x30)
    assert sw == 0x9000
    open_host_session(scp03_static_keys(scp03_master, card.card_identity), challenge, data)


@pytest.mark.realstack
def test_locked_card_refuses_the_personalization_keys_through_pcscd(
        pcsc_stack: Any, holder: HolderData, keys: PersonalizationKeys,
        scp03_master: SoftKeyDiversifier) -> None:
    from chip.pcsc import PcscChannel
    from chip.personalization import personalize_reader

    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    personalize_reader(reader, holder, keys)
    channel = PcscChannel(reader)
    try:
        _check_locked_card_refuses(channel, scp03_master)
    finally:
        channel.close()


# -- diversification from the CPLC, random UIDs ------------------------------------------------
def test_keys_come_from_the_cplc_not_the_uid(
        make_card: CardFactory, holder: HolderData, keys: PersonalizationKeys,
        pki: DemoPki, bio_master: SoftKeyDiversifier) -> None:
    card = make_card(random_uid=True)
    first_uid = card.config.uid
    assert first_uid[0] == 0x08 and len(first_uid) == 4
    result = personalize(SimulatedChannel(card), holder, keys)
    card.reset()  # the card leaves the field and comes back: a new UID
    assert card.config.uid != first_uid
    report = verify_card(SimulatedChannel(card), pki.csca_certificate_der, bio_master,
                         access=BacKey.from_mrz(td1_mrz(holder)))
    assert report.ok, report.problems
    assert report.fingers_decrypted == 2 and report.chip_uid != result.chip_uid


def test_a_card_without_cplc_is_not_personalized(
        make_card: CardFactory, holder: HolderData, keys: PersonalizationKeys) -> None:
    card = make_card(cplc=b"")
    with pytest.raises(WrongCardError, match="CPLC") as info:
        personalize(SimulatedChannel(card), holder, keys)
    assert info.value.card_state is CardState.FOREIGN and not card.files


@pytest.mark.realstack
def test_random_uid_card_through_pcscd(pcsc_stack: Any, holder: HolderData,
                                       keys: PersonalizationKeys, pki: DemoPki,
                                       bio_master: SoftKeyDiversifier, tmp_path: Path) -> None:
    from chip.personalization import personalize_reader
    from chip.verification import verify_reader

    args = ["--random-uid", "--state", str(tmp_path / "card.json")]
    pcsc_stack.restart_simulator(0, args)
    reader = pcsc_stack.reader_name(0)
    result = personalize_reader(reader, holder, keys)
    assert bytes.fromhex(result.chip_uid)[0] == 0x08
    pcsc_stack.restart_simulator(0, args)  # the same card presented again
    report = verify_reader(reader, pki.csca_certificate_der, bio_master,
                           access=BacKey.from_mrz(td1_mrz(holder)))
    assert report.ok, report.problems
    assert report.fingers_decrypted == 2 and report.chip_uid != result.chip_uid
