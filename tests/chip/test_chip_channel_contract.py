"""One contract for every ``CardChannel`` backend: the in-memory card and PC/SC."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chip.api import CardChannel
from chip.cardops import atr_extended_length
from chip.errors import CardState
from chip.personalization import probe_card_state
from chip.simulator.card import CardConfig, SimulatedCard, SimulatedChannel, default_uid
from chip.softkeys import SoftKeyDiversifier


@pytest.fixture(params=["memory", pytest.param("pcsc", marks=pytest.mark.realstack)])
def channel(request: pytest.FixtureRequest,
            scp03_master: SoftKeyDiversifier) -> Iterator[CardChannel]:
    if request.param == "memory":
        card = SimulatedCard(CardConfig(uid=default_uid("contract"), scp03_master=scp03_master))
        yield SimulatedChannel(card)
        return
    from chip.pcsc import PcscChannel

    stack: Any = request.getfixturevalue("pcsc_stack")
    stack.restart_simulator(0)
    ch = PcscChannel(stack.reader_name(0))
    yield ch
    ch.close()


class TestCardChannelContract:
    def test_atr_announces_extended_length(self, channel: CardChannel) -> None:
        assert channel.atr[0] == 0x3B and atr_extended_length(channel.atr)

    def test_select_and_status_words(self, channel: CardChannel) -> None:
        assert channel.transmit(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
        assert channel.transmit(bytes.fromhex("00A4020C020101")) == b"\x6a\x82"
        assert channel.transmit(bytes.fromhex("00EE000000"))[-2:] == b"\x6d\x00"

    def test_uid_and_extended_response(self, channel: CardChannel) -> None:
        uid = channel.transmit(bytes.fromhex("FFCA000000"))
        assert len(uid) == 9 and uid[0] == 0x04 and uid[-2:] == b"\x90\x00"
        assert channel.transmit(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
        info = channel.transmit(bytes.fromhex("00CA7F6600"))
        assert info[:2] == b"\x7f\x66" and info[-2:] == b"\x90\x00"

    def test_blank_card_probe(self, channel: CardChannel) -> None:
        assert probe_card_state(channel) is CardState.BLANK
        assert isinstance(channel.reader_name, str)
