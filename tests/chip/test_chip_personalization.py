"""The personalization sequence against the in-memory reference card: success, every fault,
a tear at every single APDU, and the card state each failure reports."""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import Callable

import pytest
from PIL import Image

from chip.bac import BacKey
from chip.errors import (
    CapacityError,
    CardLockedError,
    CardRemovedError,
    CardState,
    ChipError,
    HostError,
    MemoryFailureError,
    NotBlankError,
    NotEnoughMemoryError,
    SecureChannelError,
    WrongCardError,
)
from chip.lds import HolderData, td1_mrz
from chip.pace import CanKey, card_access
from chip.personalization import (
    PersonalizationKeys,
    PersonalizationOptions,
    ReadBack,
    personalize,
    probe_card_state,
)
from chip.simulator.card import Faults, LifeCycle, SimulatedCard, SimulatedChannel
from chip.softkeys import DemoPki, SoftKeyDiversifier
from chip.verification import verify_card

CardFactory = Callable[..., SimulatedCard]


def _good(card: SimulatedCard, pki: DemoPki, bio: SoftKeyDiversifier,
          holder: HolderData) -> None:
    fingers = [holder.finger_right_index_fmr or b"", holder.finger_left_index_fmr or b""]
    report = verify_card(SimulatedChannel(card), pki.csca_certificate_der, bio, fingers,
                         access=BacKey.from_mrz(td1_mrz(holder)))
    assert report.ok, report.problems
    assert report.document_number == holder.document_number
    assert report.access_control == "BAC" and report.active_authentication is True


@pytest.mark.parametrize("readback", list(ReadBack))
def test_personalize_and_verify(make_card: CardFactory, keys: PersonalizationKeys,
                                holder: HolderData, pki: DemoPki, bio_master: SoftKeyDiversifier,
                                readback: ReadBack) -> None:
    card = make_card()
    result = personalize(SimulatedChannel(card), holder, keys, PersonalizationOptions(readback))
    assert result.card_state is CardState.LOCKED
    assert result.chip_uid == card.config.uid.hex().upper()
    assert result.atr == card.atr.hex().upper()
    assert result.apdus == card.apdu_count
    assert result.bytes_sent > result.payload_bytes > 10_000
    assert set(result.files) == {"EF.COM", "DG1", "DG2", "DG3", "DG7", "DG11", "DG12", "DG14",
                                 "DG15", "EF.SOD"}
    assert card.life_cycle is LifeCycle.OPERATIONAL
    assert probe_card_state(SimulatedChannel(card)) is CardState.LOCKED
    _good(card, pki, bio_master, holder)
    if readback is ReadBack.HASH:  # the wire-overhead goal of the benchmark
        assert (result.bytes_sent + result.bytes_received) / result.payload_bytes < 1.15


def test_largest_chunks_and_short_only_card(make_card: CardFactory, keys: PersonalizationKeys,
                                            holder: HolderData, pki: DemoPki,
                                            bio_master: SoftKeyDiversifier) -> None:
    big = make_card(max_command_data=8192)
    short = make_card(max_command_data=255, max_response_data=256, extended_length=False)
    r_big = personalize(SimulatedChannel(big), holder, keys)
    r_short = personalize(SimulatedChannel(short), holder, keys)
    assert r_big.apdus < r_short.apdus
    assert r_short.apdus > r_short.payload_bytes // 239
    _good(short, pki, bio_master, holder)


def test_offsets_beyond_32k_use_odd_ins(make_card: CardFactory, keys: PersonalizationKeys,
                                        holder: HolderData, pki: DemoPki,
                                        bio_master: SoftKeyDiversifier) -> None:
    rnd = random.Random(3)
    noise = Image.frombytes("RGB", (480, 640), rnd.randbytes(480 * 640 * 3))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=95)
    noisy = dataclasses.replace(holder, photo_jpeg=out.getvalue())
    card = make_card(capacity=120_000)
    result = personalize(SimulatedChannel(card), noisy, keys,
                         PersonalizationOptions(max_face_bytes=60_000, readback=ReadBack.FULL))
    assert result.files["DG2"] > 40_000
    _good(card, pki, bio_master, noisy)


def test_full_card_is_refused_before_writing(make_card: CardFactory,
                                             keys: PersonalizationKeys,
                                             holder: HolderData) -> None:
    card = make_card(capacity=4096)
    with pytest.raises(CapacityError) as info:
        personalize(SimulatedChannel(card), holder, keys)
    assert info.value.card_state is CardState.BLANK and info.value.retryable
    assert not card.files


def test_face_shrinks_to_the_free_memory(make_card: CardFactory, keys: PersonalizationKeys,
                                         holder: HolderData) -> None:
    card = make_card(capacity=9000)
    result = personalize(SimulatedChannel(card), holder, keys)
    assert result.face_bytes < 6000 and card.used_bytes <= 9000


def test_running_out_of_memory_mid_write(make_card: CardFactory, keys: PersonalizationKeys,
                                         holder: HolderData) -> None:
    card = make_card(capacity=9000, faults=Faults(overstate_free=20_000))
    with pytest.raises(NotEnoughMemoryError) as info:
        personalize(SimulatedChannel(card), holder, keys)
    assert info.value.card_state is CardState.PARTIAL
    assert probe_card_state(SimulatedChannel(card)) is CardState.PARTIAL


def test_refused_writes(make_card: CardFactory, keys: PersonalizationKeys,
                        holder: HolderData) -> None:
    card = make_card(faults=Faults(refuse_writes=True))
    with pytest.raises(MemoryFailureError) as info:
        personalize(SimulatedChannel(card), holder, keys)
    assert info.value.card_state is CardState.PARTIAL and not info.value.retryable


def test_locked_card(make_card: CardFactory, keys: PersonalizationKeys,
                     holder: HolderData) -> None:
    card = make_card()
    personalize(SimulatedChannel(card), holder, keys)
    before = {fid: bytes(f.data) for fid, f in card.files.items()}
    with pytest.raises(CardLockedError) as info:
        personalize(SimulatedChannel(card), holder, keys)
    assert info.value.card_state is CardState.LOCKED
    assert {fid: bytes(f.data) for fid, f in card.files.items()} == before


def test_partly_written_card_is_not_reused(make_card: CardFactory, keys: PersonalizationKeys,
                                           holder: HolderData) -> None:
    card = make_card(faults=Faults(tear_after=12))
    with pytest.raises(ChipError):
        personalize(SimulatedChannel(card), holder, keys)
    with pytest.raises(NotBlankError) as info:
        personalize(SimulatedChannel(card), holder, keys)
    assert info.value.card_state is CardState.PARTIAL


def test_wrong_card(make_card: CardFactory, keys: PersonalizationKeys,
                    holder: HolderData) -> None:
    card = make_card(profile="foreign")
    with pytest.raises(WrongCardError) as info:
        personalize(SimulatedChannel(card), holder, keys)
    assert info.value.card_state is CardState.FOREIGN
    assert probe_card_state(SimulatedChannel(card)) is CardState.FOREIGN


def test_wrong_scp03_keys(make_card: CardFactory, keys: PersonalizationKeys,
                          holder: HolderData) -> None:
    card = make_card()
    wrong = dataclasses.replace(keys, scp03_master=SoftKeyDiversifier(b"\x07" * 16))
    with pytest.raises(SecureChannelError) as info:
        personalize(SimulatedChannel(card), holder, wrong)
    assert info.value.card_state is CardState.BLANK and not card.files


def test_writes_outside_scp03_are_refused(make_card: CardFactory) -> None:
    card = make_card()
    ch = SimulatedChannel(card)
    assert ch.transmit(bytes.fromhex("00A4040C07A0000002471001"))[-2:] == b"\x90\x00"
    create = bytes.fromhex("80E000000C620A80020010820101830201 01".replace(" ", ""))
    assert ch.transmit(create)[-2:] == b"\x69\x82"
    assert ch.transmit(bytes.fromhex("80D6000002AABB"))[-2:] == b"\x69\x82"
    assert not card.files


def _count_apdus(make_card: CardFactory, keys: PersonalizationKeys, holder: HolderData,
                 options: PersonalizationOptions) -> int:
    return personalize(SimulatedChannel(make_card()), holder, keys, options).apdus


@pytest.mark.parametrize("readback", list(ReadBack))
def test_tear_at_every_step(make_card: CardFactory, keys: PersonalizationKeys,
                            holder: HolderData, readback: ReadBack) -> None:
    """Tear the link after each APDU in turn: never a success, and the reported state is
    consistent with what is really on the card."""
    options = PersonalizationOptions(readback)
    total = _count_apdus(make_card, keys, holder, options)
    seen = set()
    for n in range(1, total + 1):
        card = make_card(faults=Faults(tear_after=n))
        with pytest.raises(CardRemovedError) as info:
            personalize(SimulatedChannel(card), holder, keys, options)
        reported = info.value.card_state
        actual = probe_card_state(SimulatedChannel(card))
        seen.add(reported)
        if reported is CardState.BLANK:
            assert actual is CardState.BLANK, n
        elif reported is CardState.PARTIAL:
            assert actual is CardState.PARTIAL, n
        elif reported is CardState.LOCKED:  # torn while confirming the lock: complete+locked
            assert actual is CardState.LOCKED, n
        else:
            assert reported is CardState.UNKNOWN, n
            assert actual in (CardState.BLANK, CardState.PARTIAL, CardState.LOCKED), n
    assert {CardState.BLANK, CardState.PARTIAL, CardState.UNKNOWN} <= seen


class _BrokenSigner:
    def __init__(self, certificate_der: bytes) -> None:
        self.certificate_der = certificate_der

    def sign(self, data: bytes) -> bytes:
        raise RuntimeError("token removed")


def test_key_token_failure_reports_a_blank_card(make_card: CardFactory,
                                                keys: PersonalizationKeys,
                                                holder: HolderData) -> None:
    card = make_card()
    broken = dataclasses.replace(keys, signer=_BrokenSigner(keys.signer.certificate_der))
    with pytest.raises(HostError) as info:
        personalize(SimulatedChannel(card), holder, broken)
    assert info.value.card_state is CardState.BLANK and not card.files
    assert isinstance(info.value.__cause__, RuntimeError)


def test_eeprom_write_time_model(make_card: CardFactory, keys: PersonalizationKeys,
                                 holder: HolderData) -> None:
    card = make_card(eeprom_page_seconds=0.0001)
    result = personalize(SimulatedChannel(card), holder, keys)
    pages = sum(-(-f.size // 64) for f in card.files.values())
    assert card.eeprom_seconds >= pages * 0.0001 * 0.99
    assert result.phases["wire"] >= card.eeprom_seconds


def test_pace_with_the_can_and_public_card_access(make_card: CardFactory,
                                                  keys: PersonalizationKeys, holder: HolderData,
                                                  pki: DemoPki) -> None:
    card = make_card()
    personalize(SimulatedChannel(card), holder, keys, can="482913")
    ch = SimulatedChannel(card)
    # EF.CardAccess is public (MF, SFI 1C); the LDS files are not
    assert ch.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
    assert ch.transmit(bytes.fromhex("00B09C0000"))[:-2] == card_access()
    assert ch.transmit(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    assert ch.transmit(bytes.fromhex("00A4020C020101")) == b"\x69\x82"
    report = verify_card(SimulatedChannel(card), pki.csca_certificate_der,
                         access=CanKey("482913"))
    assert report.ok, report.problems
    assert report.access_control == "PACE" and report.active_authentication is True
    wrong = verify_card(SimulatedChannel(card), pki.csca_certificate_der,
                        access=CanKey("482914"))
    assert not wrong.ok and not wrong.raw_files
    assert "PACE failed" in " ".join(wrong.problems)
    # BAC from the MRZ still works for readers that know only BAC
    assert verify_card(SimulatedChannel(card), pki.csca_certificate_der,
                       access=BacKey.from_mrz(td1_mrz(holder))).ok


def test_before_the_lock_files_are_read_only_under_scp03(make_card: CardFactory,
                                                          keys: PersonalizationKeys,
                                                          holder: HolderData) -> None:
    card = make_card(faults=Faults(tear_after=12))
    with pytest.raises(ChipError):
        personalize(SimulatedChannel(card), holder, keys)
    assert card.files and card.life_cycle == 0x03
    ch = SimulatedChannel(card)
    assert ch.transmit(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    assert ch.transmit(bytes.fromhex("00A4020C02011E")) == b"\x69\x82"
    assert ch.transmit(bytes.fromhex("802A9080020101" + "00"))[-2:] == b"\x69\x82"
