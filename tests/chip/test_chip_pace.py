"""PACE ECDH Generic Mapping with AES-128 against the ICAO Doc 9303-11 Appendix G.1 example."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chip.apdu import CommandApdu
from chip.errors import SecureChannelError
from chip.pace import (
    PARAM_BRAINPOOL_P256,
    PASSWORD_CAN,
    PASSWORD_MRZ,
    PaceCard,
    card_access,
    kdf,
    parse_card_access,
    password_key,
    perform_pace,
)
from chip.securemessaging import Cipher3
from chip.transport import Transport

H = bytes.fromhex
MRZ_INFO = "T22000129364081251010318"
# Appendix G.1: the terminal's commands and the chip's answers, in order.
TRANSCRIPT = [
    ("0022C1A412800A04007F0007020204020283010184010D", "9000"),
    ("10860000027C0000", "7C12801095A3A016522EE98D01E76CB6B98B42C39000"),
    ("10860000457C438141047ACF3EFC982EC45565A4B155129EFBC74650DCBFA6362D896FC70262E0C2CC5E"
     "544552DCB6725218799115B55C9BAA6D9F6BC3A9618E70C25AF71777A9C4922D00",
     "7C43824104824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F57"
     "30D8C879AAA9C9F73991E61B58F4D52EB87A0A0C709A49DC63719363CCD13C549000"),
    ("10860000457C438341042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C"
     "3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43D9BF850149FBB3646200",
     "7C438441049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB"
     "7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F0949000"),
    ("008600000C7C0A8508C2B0BD78D94BA86600", "7C0A86083ABB9674BCE93C089000"),
]
PRIVATE = {"mapping": 0x7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99,
           "agreement": 0xA73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595}


@dataclass
class ScriptedChip:
    """A channel that checks each command against the transcript and plays the answer."""

    script: list[tuple[str, str]]
    sent: list[str] = field(default_factory=list)
    atr: bytes = b""
    reader_name: str = "script"

    def transmit(self, apdu: bytes) -> bytes:
        want, answer = self.script[len(self.sent)]
        self.sent.append(apdu.hex().upper())
        assert apdu.hex().upper() == want
        return H(answer)

    def close(self) -> None:
        pass


def test_password_key_and_session_keys_appendix_g() -> None:
    assert password_key(MRZ_INFO, PASSWORD_MRZ) == H("89DED1B26624EC1E634C1989302849DD")
    shared = H("28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925")
    assert kdf(shared, 1) == H("F5F0E35C0D7161EE6724EE513A0D9A7F")
    assert kdf(shared, 2) == H("FE251C7858B356B24514B3BD5F4297D1")


def test_card_access_appendix_g() -> None:
    raw = card_access(PARAM_BRAINPOOL_P256)
    assert raw == H("31143012060A04007F0007020204020202010202010D")
    assert parse_card_access(raw) == PARAM_BRAINPOOL_P256


def test_terminal_reproduces_appendix_g1_byte_for_byte() -> None:
    chip = ScriptedChip(TRANSCRIPT)
    t = Transport(chip)
    sm = perform_pace(t, MRZ_INFO, PASSWORD_MRZ, param_id=PARAM_BRAINPOOL_P256,
                      scalar=PRIVATE.__getitem__)
    assert len(chip.sent) == len(TRANSCRIPT)
    assert sm.ks_enc == H("F5F0E35C0D7161EE6724EE513A0D9A7F")
    assert sm.ks_mac == H("FE251C7858B356B24514B3BD5F4297D1")
    assert sm.cipher is Cipher3.AES and sm.ssc == 0 and t.session is sm


def test_a_wrong_chip_token_is_refused() -> None:
    script = list(TRANSCRIPT)
    script[-1] = (script[-1][0], "7C0A86083ABB9674BCE93C099000")
    with pytest.raises(SecureChannelError):
        perform_pace(Transport(ScriptedChip(script)), MRZ_INFO, PASSWORD_MRZ,
                     param_id=PARAM_BRAINPOOL_P256, scalar=PRIVATE.__getitem__)


@dataclass
class CardChannelOnPace:
    """Just enough of a chip to run PaceCard against the terminal."""

    card: PaceCard
    atr: bytes = b""
    reader_name: str = "pace"

    def transmit(self, apdu: bytes) -> bytes:
        cmd = CommandApdu.decode(apdu)
        if cmd.ins == 0x22:
            self.card.set_at(cmd.data)
            return H("9000")
        try:
            reply, _ = self.card.general_authenticate(cmd.data)
        except SecureChannelError:
            return H("6300")
        return reply + H("9000")

    def close(self) -> None:
        pass


def test_card_and_terminal_agree_with_the_can_and_refuse_a_wrong_one() -> None:
    sm = perform_pace(Transport(CardChannelOnPace(PaceCard("123456"))), "123456", PASSWORD_CAN)
    assert len(sm.ks_enc) == 16
    with pytest.raises(SecureChannelError, match="refused the password"):
        perform_pace(Transport(CardChannelOnPace(PaceCard("123456"))), "654321", PASSWORD_CAN)
