"""SCP03 against published vectors (chip-standards.md) and card/host round trips."""

from __future__ import annotations

import pytest

from chip.apdu import CommandApdu, ResponseApdu
from chip.errors import SecureChannelError
from chip.scp03 import (
    InitializeUpdateResponse,
    Scp03Session,
    SecurityLevel,
    StaticKeys,
    kdf,
    key_check_value,
    open_host_session,
)

H = bytes.fromhex

KDF_VECTORS = [
    ("00000000000000000000000000000000", 1, "00000000000000000000000000000000",
     "329C873894717F6D545C755D175AE7ECDAB085DE2592FC3B9218A7FD77005E31"),
    ("00000000000000000000000000000000", 2,
     "329C873894717F6D545C755D175AE7ECDAB085DE2592FC3B9218A7FD77005E31",
     "2AF2B9613F5B87B9E33F28F39EDC8376DDB4B6FE7701232DDD5477CEB17DA9F7"),
    ("329C873894717F6D545C755D175AE7ECDAB085DE2592FC3B9218A7FD77005E31", 3,
     "2AF2B9613F5B87B9E33F28F39EDC8376DDB4B6FE7701232DDD5477CEB17DA9F7",
     "0E6F2B49DC94633D02549405EA86612C717EAF8CB9EF3D7D80DDFC3792184D34"),
    ("2AF2B9613F5B87B9E33F28F39EDC8376DDB4B6FE7701232DDD5477CEB17DA9F7", 4,
     "0E6F2B49DC94633D02549405EA86612C717EAF8CB9EF3D7D80DDFC3792184D34",
     "B863B9A5B35D5566A67E44F560B5E75C"),
]


@pytest.mark.parametrize(("key", "const", "context", "out"), KDF_VECTORS)
def test_kdf_vectors(key: str, const: int, context: str, out: str) -> None:
    assert kdf(H(key), const, H(context), len(H(out)) * 8).hex().upper() == out


def test_key_check_value() -> None:
    assert key_check_value(H("404142434445464748494A4B4C4D4E4F")).hex().upper() == "504A77"


KEYS = StaticKeys(H("000102030405060708090a0b0c0d0e0f"), H("101112131415161718191a1b1c1d1e1f"),
                  H("202122232425262728292a2b2c2d2e2f"))
PLAIN = ["80E2910006BF3E035C015A00", "80F22002", "80ca006600",
         "80F220020a4f0212345c054f9f70c5", "80f28002024f0000"]
SESSIONS = [
    pytest.param(0x03, "8e1552d0513c60f3",
                 "00000000000000000000300370" "30760cd2c47c1dd3" "95065fe5ead8a9d7" "000001",
                 "ee54985e150155e021725489f717d645", "59b76ddff91dba0515a9644de3a48863",
                 "5942bf778c5942f17037da8278f9330d", "fd4721a14d9b0700",
                 "8482030010fd4721a14d9b07003c451d2f8ae6bb21",
                 ["84e2910018ca9c00f6713d79bc8baa642bdff51c3f6a4082d3bd9ad26c00",
                  "84f2200208c9811b11f1264cf1", "84ca006608e10ab60b3054798800",
                  "84f22002184e2908bdb48b2315a55482e9e936ca122d6ecfae7d17416e",
                  "84f28002180dd10a6b6193e5340b9e77d32d5a179cd710ac2773aefb2800"], None,
                 id="SL03"),
    pytest.param(0x33, "fdf38259a1e0de44",
                 "00000000000000000000300370" "3b1aca81e821f219" "081cdc01c26b372d" "000003",
                 "bc5689f3a0b783a9ed6da1c5c6bc1f99", "0415f56cbb9e488bb171b2b66081f004",
                 "1ee185123244e047bc9d68b914bd1fbe", "8c36f96bcc00724a",
                 "84823300108c36f96bcc00724a4e13ad591d7da3f0",
                 ["84e2910018267a85dfe4a98fca6fb0527e0dfecce4914e40401433c87f00",
                  "84f2200208ac6a59024bed84cc", "84ca006608409912ad8fb7aed000",
                  "84f22002185f3dafc3ac14c381536a488bf44e06d056df9d74dbd21e5a",
                  "84f280021865165105be3373347d0424d4400af2ac393f569ec779389e00"],
                 "f3ba2b1013aa6224f5e1c138d71805c569e5439b47576260b75fc021b25097cb2e68f8a0144975b9",
                 id="SL33"),
]


@pytest.mark.parametrize(("sl", "host_challenge", "iu_response", "s_enc", "s_mac", "s_rmac",
                          "host_cryptogram", "ext_auth", "wrapped", "first_response"), SESSIONS)
def test_pysim_session_vectors(sl: int, host_challenge: str, iu_response: str, s_enc: str,
                               s_mac: str, s_rmac: str, host_cryptogram: str, ext_auth: str,
                               wrapped: list[str], first_response: str | None) -> None:
    session, iu = open_host_session(KEYS, H(host_challenge), H(iu_response))
    assert iu.kvn == 0x30 and iu.sequence_counter is not None
    assert (session.s_enc.hex(), session.s_mac.hex(), session.s_rmac.hex()) == (
        s_enc, s_mac, s_rmac)
    assert session.host_cryptogram().hex() == host_cryptogram
    assert session.external_authenticate(SecurityLevel(sl)).encode().hex() == ext_auth
    for i, (plain, expected) in enumerate(zip(PLAIN, wrapped, strict=True)):
        assert session.wrap_command(CommandApdu.decode(H(plain))).encode().hex() == expected
        if i == 0 and first_response:
            resp = session.unwrap_response(ResponseApdu(H(first_response), 0x9000))
            assert resp.data.hex() == "bf3e125a1089882119900000000000000000000005"


def _pair(level: SecurityLevel) -> tuple[Scp03Session, Scp03Session]:
    host_challenge, card_challenge = bytes(range(8)), bytes(range(8, 16))
    card = Scp03Session.derive(KEYS, host_challenge, card_challenge)
    iu = InitializeUpdateResponse(b"\x00" * 10, 0x30, 0x03, 0x60, card_challenge,
                                  card.card_cryptogram(), None)
    host, _ = open_host_session(KEYS, host_challenge, iu.encode())
    card.verify_external_authenticate(host.external_authenticate(level))
    return host, card


@pytest.mark.parametrize("size", [0, 1, 15, 16, 239, 240, 4000])
def test_card_host_round_trip(size: int) -> None:
    host, card = _pair(SecurityLevel(0x33))
    for n in range(3):  # counters and MAC chaining stay in step over several commands
        cmd = CommandApdu(0x80, 0xD6, 0, n, bytes(range(256)) * (size // 256) + bytes(size % 256))
        got = card.unwrap_command(host.wrap_command(cmd))
        assert got.data == cmd.data and got.ins == 0xD6
        resp = card.wrap_response(ResponseApdu(b"hello" * n, 0x9000))
        assert host.unwrap_response(resp).data == b"hello" * n


def test_tampered_command_mac_is_refused() -> None:
    host, card = _pair(SecurityLevel(0x13))
    wire = host.wrap_command(CommandApdu(0x80, 0xD6, 0, 0, b"data"))
    bad = CommandApdu(wire.cla, wire.ins, wire.p1, wire.p2,
                      wire.data[:-1] + bytes((wire.data[-1] ^ 1,)))
    with pytest.raises(SecureChannelError):
        card.unwrap_command(bad)


def test_tampered_response_mac_is_refused() -> None:
    host, card = _pair(SecurityLevel(0x13))
    card.unwrap_command(host.wrap_command(CommandApdu(0x80, 0xCA, 0, 0)))
    resp = card.wrap_response(ResponseApdu(b"abc", 0x9000))
    with pytest.raises(SecureChannelError):
        host.unwrap_response(ResponseApdu(b"abd" + resp.data[3:], 0x9000))


def test_wrong_card_cryptogram() -> None:
    iu = InitializeUpdateResponse(b"\x00" * 10, 0x30, 0x03, 0x60, b"\x01" * 8, b"\x02" * 8, None)
    with pytest.raises(SecureChannelError, match="card cryptogram"):
        open_host_session(KEYS, b"\x00" * 8, iu.encode())
