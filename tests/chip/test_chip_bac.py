"""BAC and 3DES secure messaging against the ICAO Doc 9303-11 Appendix D worked example."""

from __future__ import annotations

import pytest

from chip.apdu import CommandApdu, ResponseApdu
from chip.bac import BacCard, BacKey, authenticate_command, finish_terminal
from chip.errors import SecureChannelError
from chip.lds import td1_mrz
from chip.samples import sample_holder
from chip.securemessaging import Cipher3, SecureMessaging

H = bytes.fromhex
KEY = BacKey("L898902C", "690806", "940623")
RND_IC, RND_IFD = H("4608F91988702212"), H("781723860C06C226")
K_IFD, K_IC = H("0B795240CB7049B01C19B33E32804F0B"), H("0B4F80323EB3191CB04970CB4052790B")


def test_key_derivation_appendix_d() -> None:
    assert KEY.mrz_information() == "L898902C<369080619406236"
    assert KEY.key_seed() == H("239AB9CB282DAF66231DC5A4DF6BFBAE")
    assert KEY.keys() == (H("AB94FDECF2674FDFB9B391F85D7F76F2"),
                          H("7962D9ECE03D1ACD4C76089DCE131543"))


def test_mrz_parsing_td3_and_td1_long_number() -> None:
    td3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
           "L898902C<3UTO6908061F9406236ZE184226B<<<<<14")
    assert BacKey.from_mrz(td3).mrz_information() == "L898902C<369080619406236"
    # TD1 with the 16-digit NIK: 9 in the field, '<', the rest + its check digit in optional
    holder = sample_holder()
    mrz = td1_mrz(holder)
    key = BacKey.from_mrz(mrz)
    assert key.document_number == holder.document_number and len(key.document_number) == 16
    overflow_check = mrz[15:30].split("<", 1)[0][-1]
    assert key.mrz_information()[:17] == holder.document_number + overflow_check
    assert key.mrz_information()[17:24] == mrz[30:37]  # birth date and its check digit


def test_mutual_authentication_appendix_d() -> None:
    cmd = authenticate_command(KEY, RND_IC, RND_IFD, K_IFD)
    assert cmd.data == H("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2"
                         "5F1448EEA8AD90A7")
    card = BacCard(*KEY.keys())
    card.get_challenge(RND_IC)
    reply, card_sm = card.mutual_authenticate(cmd.data, K_IC)
    assert reply == H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F"
                      "2F2D235D074D7449")
    sm = finish_terminal(KEY, reply, RND_IC, RND_IFD, K_IFD)
    assert sm.ks_enc == H("979EC13B1CBFE9DCD01AB0FED307EAE5")
    assert sm.ks_mac == H("F1CB1F1FB5ADF208806B89DC579DC1F8")
    assert sm.ssc == 0x887022120C06C226 and card_sm == sm


def test_wrong_mrz_fails_on_the_card() -> None:
    wrong = BacKey("L898902C", "690806", "940624")
    card = BacCard(*KEY.keys())
    card.get_challenge(RND_IC)
    with pytest.raises(SecureChannelError):
        card.mutual_authenticate(authenticate_command(wrong, RND_IC, RND_IFD, K_IFD).data)


def _session() -> SecureMessaging:
    return SecureMessaging(H("979EC13B1CBFE9DCD01AB0FED307EAE5"),
                           H("F1CB1F1FB5ADF208806B89DC579DC1F8"), 0x887022120C06C226,
                           Cipher3.DES3)


def test_secure_messaging_appendix_d() -> None:
    sm = _session()
    select = sm.wrap_command(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    assert select.encode() == H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800")
    assert sm.ssc == 0x887022120C06C227
    resp = sm.unwrap_response(ResponseApdu.decode(H("990290008E08FA855A5D4C50A8ED9000")))
    assert resp == ResponseApdu(b"", 0x9000) and sm.ssc == 0x887022120C06C228

    read = sm.wrap_command(CommandApdu(0x00, 0xB0, 0x00, 0x00, le=4))
    assert read.encode() == H("0CB000000D9701048E08ED6705417E96BA5500")
    resp = sm.unwrap_response(ResponseApdu.decode(
        H("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000")))
    assert resp.data == H("60145F01")

    read = sm.wrap_command(CommandApdu(0x00, 0xB0, 0x00, 0x04, le=0x12))
    assert read.encode() == H("0CB000040D9701128E082EA28A70F3C7B53500")
    resp = sm.unwrap_response(ResponseApdu.decode(H(
        "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000")))
    assert resp.data == H("04303130365F36063034303030305C026175")
    assert sm.ssc == 0x887022120C06C22C


def test_card_side_mirrors_terminal_and_rejects_tampering() -> None:
    host, card = _session(), _session()
    wire = host.wrap_command(CommandApdu(0x00, 0xB0, 0x00, 0x04, le=0x12))
    plain = card.unwrap_command(wire)
    assert (plain.cla, plain.ins, plain.p2, plain.le) == (0x00, 0xB0, 0x04, 0x12)
    back = host.unwrap_response(card.wrap_response(ResponseApdu(b"abc", 0x9000)))
    assert back == ResponseApdu(b"abc", 0x9000)
    wire = host.wrap_command(CommandApdu(0x00, 0xB0, 0x00, 0x08, le=0x12))
    tampered = CommandApdu(wire.cla, wire.ins, wire.p1, 0x09, wire.data, wire.le)
    with pytest.raises(SecureChannelError):
        card.unwrap_command(tampered)


def test_dg14_names_ecdsa_plain_sha256_for_active_authentication() -> None:
    from chip.activeauth import OID_ECDSA_PLAIN_SHA256, dg14, dg14_signature_algorithm

    raw = dg14()
    assert raw.startswith(b"\x6e") and dg14_signature_algorithm(raw) == OID_ECDSA_PLAIN_SHA256
    # openssl reads the same SecurityInfos
    import subprocess

    out = subprocess.run(["openssl", "asn1parse", "-inform", "DER"], input=raw[2:],
                         capture_output=True, check=True).stdout.decode()
    assert "2.23.136.1.1.5" in out and "0.4.0.127.0.7.1.1.4.1.3" in out, out
