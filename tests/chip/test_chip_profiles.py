"""Card profiles: the default post-write check is the standard read-back (no simulator-only
command on the wire); HASH FILES only for a profile that declares it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chip.lds import HolderData
from chip.personalization import (
    PersonalizationKeys,
    PersonalizationOptions,
    ReadBack,
    personalize,
)
from chip.profiles import DEFAULT_PROFILE, ProfileError, get_profile, load_profile, profile_names
from chip.simulator.card import SimulatedCard, SimulatedChannel
from tests.chip.conftest import CardFactory


class RecordingChannel(SimulatedChannel):
    """Remembers the INS byte of every command (the CLA 84 wrapping keeps INS in clear)."""

    def __init__(self, card: SimulatedCard) -> None:
        super().__init__(card)
        self.ins: list[int] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.ins.append(apdu[1])
        return super().transmit(apdu)


def test_every_profile_loads() -> None:
    names = profile_names()
    assert {DEFAULT_PROFILE, "ktp-simulator", "nxp-jcop4"} <= set(names)
    for name in names:
        assert get_profile(name).id == name
    assert get_profile().readback is ReadBack.FULL
    assert get_profile("ktp-simulator").readback is ReadBack.HASH


def test_default_sends_only_standard_commands(
        make_card: CardFactory, holder: HolderData, keys: PersonalizationKeys) -> None:
    assert PersonalizationOptions().readback is ReadBack.FULL
    channel = RecordingChannel(make_card())
    personalize(channel, holder, keys, get_profile().options())
    assert 0x2A not in channel.ins  # no HASH FILES
    assert 0xB0 in channel.ins or 0xB1 in channel.ins  # read back instead
    hashed = RecordingChannel(make_card())
    personalize(hashed, holder, keys, get_profile("ktp-simulator").options())
    assert 0x2A in hashed.ins


def test_hash_refused_for_a_profile_without_it() -> None:
    with pytest.raises(ProfileError, match="no HASH FILES"):
        get_profile("nxp-jcop4").options(readback="hash")
    with pytest.raises(ProfileError, match="no card profile"):
        get_profile("nope")


@pytest.mark.parametrize(("text", "message"), [
    ('id = "x"\nchip_os = "a"\ndescription = "b"\nhash_files = true\ncolour = 1\n',
     "unknown key"),
    ('id = "x"\nchip_os = "a"\ndescription = "b"\n', "missing key 'hash_files'"),
    ('id = "x"\nchip_os = "a"\ndescription = "b"\nhash_files = "yes"\n', "must be bool"),
    ('id = "y"\nchip_os = "a"\ndescription = "b"\nhash_files = true\n', "differs"),
])
def test_malformed_profiles_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(path)
    assert "x.toml" in str(info.value)


@pytest.mark.realstack
def test_default_profile_through_pcscd(pcsc_stack: Any, holder: HolderData,
                                       keys: PersonalizationKeys) -> None:
    """Through pcscd: the default profile checks by reading every file back under the SCP03
    session (secure-messaging bits in the CLA: 04 for ISO commands, 84 for GP ones), never by
    HASH FILES; the simulator's profile does the opposite."""
    from chip.pcsc import PcscChannel

    class RecordingPcsc(PcscChannel):
        def __init__(self, reader: str) -> None:
            super().__init__(reader)
            self.commands: list[bytes] = []

        def transmit(self, apdu: bytes) -> bytes:
            self.commands.append(apdu[:2])
            return super().transmit(apdu)

    sent: dict[str, list[bytes]] = {}
    for profile in (DEFAULT_PROFILE, "ktp-simulator"):
        pcsc_stack.restart_simulator(0)
        with RecordingPcsc(pcsc_stack.reader_name(0)) as channel:
            result = personalize(channel, holder, keys, get_profile(profile).options())
        assert result.card_state.value == "locked"
        sent[profile] = channel.commands
        if profile == DEFAULT_PROFILE:
            # read-back moved every payload byte back over the wire, on top of sending it
            assert result.bytes_received > result.payload_bytes
    reads = [c for c in sent[DEFAULT_PROFILE] if c[1] in (0xB0, 0xB1)]
    assert reads and all(c[0] & 0x0C == 0x04 for c in reads)  # under secure messaging
    assert all(c[1] != 0x2A for c in sent[DEFAULT_PROFILE])
    assert any(c == b"\x84\x2a" for c in sent["ktp-simulator"])
