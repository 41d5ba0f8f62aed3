"""Card side of our e-KTP personalization profile (ISO 7816-4 + GlobalPlatform SCP03).

Files live in one LDS application (AID A0 00 00 02 47 10 01). Access conditions: CREATE FILE,
UPDATE BINARY, PUT DATA (access keys), GENERATE KEY PAIR and ACTIVATE FILE only under an SCP03
session with C-MAC and C-DECRYPTION and only while the application's life cycle is
*initialisation* (03); reading an EF then also needs that session. ACTIVATE FILE moves it to
*operational* (05): from then on every write is refused with 6985, for ever, and SELECT of an
EF or READ BINARY answers 6982 unless the command comes under ICAO secure messaging opened by
BAC (GET CHALLENGE + EXTERNAL AUTHENTICATE with CLA 00) or by PACE with the CAN (MSE:Set AT +
GENERAL AUTHENTICATE; EF.CardAccess 011C / SFI 1C is public). INTERNAL AUTHENTICATE (Active
Authentication) signs the terminal's challenge with the ECDSA key made inside the card.
EAC v1 (:mod:`chip.eac`): Chip Authentication with a second key made inside the card (MSE:Set
AT 41A4 + GENERAL AUTHENTICATE, then new secure-messaging keys) and Terminal Authentication
against the CVCA trust point stored at personalization (MSE:Set DST, PSO:Verify Certificate,
MSE:Set AT 81A4, GET CHALLENGE, EXTERNAL AUTHENTICATE); on a card with a trust point DG3
answers 6982 until TA succeeded with a chain whose CHAT grants "read DG3". EF.CVCA and
EF.CardAccess share FID 011C / SFI 1C: a read under secure messaging (or SCP03) with the LDS
application selected gets EF.CVCA, a plain read gets EF.CardAccess.

Extensions (documented in docs/chip.md): ``80 2A 90 80`` HASH FILES with a list of FIDs
returns SHA-256 over the SHA-256 of each file's content; GET DATA FF21 (GlobalPlatform) reports
free memory; GET DATA 7F66 the buffer sizes; ``FF CA 00 00`` returns the UID as a PC/SC
contactless reader would.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from chip import cvc, eac
from chip.apdu import (
    CLA_CHAINING,
    SW_LAST_OF_CHAIN_EXPECTED,
    CommandApdu,
    CommandChain,
    Ins,
    ResponseApdu,
    Sw,
)
from chip.api import KeyDiversifier
from chip.bac import BacCard
from chip.cardops import cplc_identity
from chip.diversification import scp03_static_keys
from chip.errors import CardRemovedError, MalformedError, SecureChannelError
from chip.lds import LDS_AID, parse_dg1
from chip.pace import CARD_ACCESS_FID, CARD_ACCESS_SFI, PaceCard, card_access
from chip.scp03 import (
    PUT_KEY,
    InitializeUpdateResponse,
    Scp03Session,
    SecurityLevel,
    StaticKeys,
    key_check_value,
    parse_put_key,
)
from chip.securemessaging import SM_CLA, SecureMessaging
from chip.tlv import find, parse, tlv

FILE_OVERHEAD = 16  # bytes of card memory per EF beyond its content
REQUIRED_WRITE_LEVEL = SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION


class LifeCycle(IntEnum):
    INITIALISATION = 0x03
    OPERATIONAL = 0x05


def make_atr(extended_length: bool = True, command_chaining: bool = True) -> bytes:
    """Contactless-style ATR (PC/SC part 3 layout) whose historical bytes are ISO/IEC 7816-4
    compact-TLV (category indicator 80): card issuer's data ``"KTP"`` (tag 5), then card
    capabilities (tag 7): selection by full DF name, by FID and by SFI; data coding byte 01
    (byte-sized data units); third byte b8 command chaining, b7 extended Lc/Le."""
    third = (0x40 if extended_length else 0x00) | (0x80 if command_chaining else 0x00)
    hist = b"\x80" + b"\x53KTP" + bytes((0x73, 0x94, 0x01, third))
    body = bytes((0x80 | len(hist), 0x80, 0x01)) + hist
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


def default_cplc(seed: bytes) -> bytes:
    """A plausible 42-byte CPLC: NXP as IC fabricator, a serial number and batch from
    ``seed``; the dates and equipment fields zero."""
    digest = hashlib.sha256(b"cplc" + seed).digest()
    return (b"\x47\x90" + b"\xd3\x21" + b"\x47\x91" + b"\x00" * 6  # fabricator, type, OS
            + digest[:4] + digest[4:6]  # IC serial number, IC batch identifier
            + b"\x00" * 24)


def random_uid() -> bytes:
    """An ISO/IEC 14443-3 random single-size UID (first byte 08)."""
    return b"\x08" + os.urandom(3)


def default_uid(seed: str) -> bytes:
    """A stable 7-byte NXP-style UID for a simulator instance."""
    return b"\x04" + hashlib.sha256(seed.encode()).digest()[:6]


@dataclass
class CardFile:
    fid: int
    sfi: int
    data: bytearray

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Faults:
    """Faults injected on request."""

    tear_after: int | None = None  # execute the Nth APDU, then tear the link (no response)
    refuse_writes: bool = False  # UPDATE BINARY answers 6581 (memory failure)
    overstate_free: int = 0  # report this many bytes more free memory than there is


@dataclass
class CardConfig:
    uid: bytes
    scp03_master: KeyDiversifier
    capacity: int = 32768
    max_command_data: int = 8192
    max_response_data: int = 8192
    extended_length: bool = True
    profile: str = "ktp"  # "foreign": a card without our LDS application (wrong card)
    eeprom_page: int = 64
    eeprom_page_seconds: float = 0.0  # 0 disables the EEPROM write-time model
    state_file: Path | None = None
    #: GlobalPlatform CPLC (42 bytes, GET DATA 9F7F); default derived from the UID at creation
    cplc: bytes | None = None
    #: A new random 4-byte UID (08 xx xx xx, ISO 14443-3) at every power-up, as real chips do
    random_uid: bool = False


# Proprietary personalization commands (documented in docs/chip.md).
PUT_DATA_ACCESS_KEYS = 0x00A0  # PUT DATA P1-P2: A0 { 80 BAC K_enc, 81 BAC K_mac, 82 CAN }
INS_PUT_DATA = 0xDA
INS_GENERATE_KEY_PAIR = 0x46  # GENERATE ASYMMETRIC KEY PAIR: Active Authentication key
INS_GET_CHALLENGE = 0x84
INS_INTERNAL_AUTHENTICATE = 0x88
INS_MUTUAL_AUTHENTICATE = 0x82
INS_MSE = 0x22
INS_GENERAL_AUTHENTICATE = 0x86
INS_PSO = 0x2A  # PSO:Verify Certificate 00 2A 00 BE (HASH FILES is 80 2A 90 80)


@dataclass
class Secrets:
    """Card keys that never leave the card (persisted with the state, never readable)."""

    bac_enc: bytes | None = None
    bac_mac: bytes | None = None
    aa_private_pem: bytes | None = None
    can: bytes | None = None  # PACE password (6 ASCII digits)
    ca_private_pem: bytes | None = None  # Chip Authentication key (EAC)
    trust_points: bytes | None = None  # CVCA certificates (7F21 …), one or two, concatenated
    eac_date: bytes | None = None  # the chip's current date (YYMMDD unpacked BCD)

    def as_dict(self) -> dict[str, str | None]:
        return {k: (v.hex() if v is not None else None) for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, str | None]) -> Secrets:
        return cls(**{k: (bytes.fromhex(v) if v else None) for k, v in d.items()})


@dataclass
class _Session:
    scp: Scp03Session | None = None
    sm: SecureMessaging | None = None  # ICAO secure messaging after BAC
    bac: BacCard | None = None
    pace: PaceCard | None = None
    app_selected: bool = False
    current_ef: CardFile | None = None
    eac: eac.EacCardState = field(default_factory=eac.EacCardState)
    next_sm: SecureMessaging | None = None  # the session Chip Authentication just agreed
    #: TA's ID_PICC for this session: the document number after BAC, Comp(~PK_PICC) after PACE
    id_picc: bytes | None = None
    chain: CommandChain = field(default_factory=CommandChain)  # PSO:Verify Certificate


class SimulatedCard:
    """One card: call :meth:`process` with a raw APDU, get the raw response."""

    def __init__(self, config: CardConfig, faults: Faults | None = None) -> None:
        self.config = config
        self.faults = faults or Faults()
        self.files: dict[int, CardFile] = {}
        self.secrets = Secrets()
        self.life_cycle = LifeCycle.INITIALISATION
        self.apdu_count = 0
        self.eeprom_seconds = 0.0
        self._session = _Session()
        #: The key set that replaced the personalization keys (PUT KEY), None while they hold.
        self.replaced_keys: StaticKeys | None = None
        self._read_allowed = False
        self._icao_sm = False
        self._lock = threading.Lock()
        self.atr = make_atr(config.extended_length)
        if config.cplc is None:
            config.cplc = default_cplc(config.uid)
        if config.state_file and config.state_file.exists():
            self._load(config.state_file)
        if config.random_uid:
            config.uid = random_uid()

    # -- persistence ---------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        state = json.loads(path.read_text())
        self.config.uid = bytes.fromhex(state["uid"])
        if state.get("cplc"):
            self.config.cplc = bytes.fromhex(state["cplc"])
        self.life_cycle = LifeCycle(state["life_cycle"])
        replaced = state.get("replaced_keys")
        if replaced:
            self.replaced_keys = StaticKeys(
                bytes.fromhex(replaced["enc"]), bytes.fromhex(replaced["mac"]),
                bytes.fromhex(replaced["dek"]), replaced["kvn"])
        self.files = {
            int(fid, 16): CardFile(int(fid, 16), f["sfi"], bytearray.fromhex(f["data"]))
            for fid, f in state["files"].items()
        }
        self.secrets = Secrets.from_dict(state.get("secrets", {}))

    def _save(self) -> None:
        path = self.config.state_file
        if path is None:
            return
        state = {
            "uid": self.config.uid.hex(),
            "cplc": (self.config.cplc or b"").hex(),
            "life_cycle": int(self.life_cycle),
            "replaced_keys": None if self.replaced_keys is None else {
                "enc": self.replaced_keys.enc.hex(), "mac": self.replaced_keys.mac.hex(),
                "dek": self.replaced_keys.dek.hex(), "kvn": self.replaced_keys.kvn},
            "files": {f"{f.fid:04X}": {"sfi": f.sfi, "data": f.data.hex()}
                      for f in self.files.values()},
            "secrets": self.secrets.as_dict(),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    # -- state ---------------------------------------------------------------------------------
    @property
    def used_bytes(self) -> int:
        return sum(f.size + FILE_OVERHEAD for f in self.files.values())

    @property
    def free_bytes(self) -> int:
        return self.config.capacity - self.used_bytes

    def reset(self) -> None:
        """Power cycle: volatile state (selection, secure channel) is lost; a card with
        random UIDs shows a new one."""
        self._session = _Session()
        if self.config.random_uid:
            self.config.uid = random_uid()

    @property
    def card_identity(self) -> bytes:
        """What the card's keys are diversified from: its CPLC serial (see
        :func:`chip.cardops.cplc_identity`), never the UID."""
        return cplc_identity(self.config.cplc or b"")

    def wipe(self) -> None:
        """Back to a blank card (tests only)."""
        with self._lock:
            self.files.clear()
            self.secrets = Secrets()
            self.life_cycle = LifeCycle.INITIALISATION
            self.replaced_keys = None
            self.reset()
            self._save()

    # -- APDU processing -----------------------------------------------------------------------
    def process(self, raw: bytes) -> bytes:
        """Process one APDU; raises :class:`CardRemovedError` when a tear is injected."""
        with self._lock:
            self.apdu_count += 1
            response = self._process(raw)
            if self.faults.tear_after is not None and self.apdu_count >= self.faults.tear_after:
                self.faults.tear_after = None
                self.reset()
                raise CardRemovedError("simulated tear")
            return response

    def _process(self, raw: bytes) -> bytes:
        try:
            cmd = CommandApdu.decode(raw)
        except ValueError:
            return _sw(Sw.WRONG_LENGTH)
        if len(cmd.data) > self.config.max_command_data or (
            cmd.extended and not self.config.extended_length
        ):
            return _sw(Sw.WRONG_LENGTH)
        if cmd.cla == 0xFF:
            if cmd.ins == Ins.GET_DATA and cmd.p1 == 0x00:
                return self.config.uid + _sw(Sw.OK)
            return _sw(Sw.INS_NOT_SUPPORTED)
        if cmd.cla not in (0x00, 0x10, 0x80, 0x84, 0x04, SM_CLA, SM_CLA | CLA_CHAINING):
            return _sw(Sw.CLA_NOT_SUPPORTED)  # 10: chaining (PACE; PSO under SM)
        session = self._session
        if cmd.cla & ~CLA_CHAINING == SM_CLA:
            return self._process_sm(cmd)
        session.sm = None  # a plain command ends ICAO secure messaging (9303-11 §9.8.1)
        session.eac = eac.EacCardState()  # and with it whatever CA and TA had granted
        session.chain.reset()
        wrapped = bool(cmd.cla & 0x04)
        if cmd.ins == Ins.EXTERNAL_AUTHENTICATE and cmd.cla & 0x80:
            return self._external_authenticate(cmd)
        if wrapped:
            if session.scp is None or not session.scp.authenticated:
                return _sw(Sw.SECURITY_STATUS)
            try:
                cmd = session.scp.unwrap_command(cmd)
            except SecureChannelError:
                session.scp = None  # any MAC failure ends the session
                return _sw(Sw.SECURITY_STATUS)
        resp = self._dispatch(cmd, wrapped)
        if wrapped and session.scp is not None:
            if resp.sw != Sw.OK and resp.sw >> 8 not in (0x62, 0x63):
                session.scp = None  # abort on error, as the host does
                return resp.encode()
            resp = session.scp.wrap_response(resp)
        return resp.encode()

    def _process_sm(self, cmd: CommandApdu) -> bytes:
        sm = self._session.sm
        if sm is None:
            return _sw(Sw.SECURITY_STATUS)
        try:
            plain = sm.unwrap_command(cmd)
        except SecureChannelError:
            self._session.sm, self._session.eac = None, eac.EacCardState()
            self._session.chain.reset()
            return _sw(SW_SM_OBJECTS_INCORRECT)
        resp = self._chained(plain)
        if resp is None:
            resp = self._dispatch(plain, False, icao_sm=True)
        wrapped = sm.wrap_response(resp).encode()
        if self._session.next_sm is not None:  # CA: the answer under the old keys, then switch
            self._session.sm, self._session.next_sm = self._session.next_sm, None
        return wrapped

    def _chained(self, plain: CommandApdu) -> ResponseApdu | None:
        """ISO 7816-4 command chaining under secure messaging, for PSO:Verify Certificate (a
        link certificate with domain parameters is longer than a short APDU): each link is
        answered 9000 until the last, whose answer is the whole command's. None when
        ``plain`` is not part of a chain (dispatch it as it is)."""
        chain = self._session.chain
        if not (plain.cla & CLA_CHAINING or chain.pending):
            return None
        if plain.ins != INS_PSO:
            if chain.pending:  # another command mid-chain ends the chain
                chain.reset()
                return ResponseApdu(b"", SW_LAST_OF_CHAIN_EXPECTED)
            return ResponseApdu(b"", Sw.CLA_NOT_SUPPORTED)  # chaining only for PSO
        try:
            whole = chain.feed(plain)
        except MalformedError:
            return ResponseApdu(b"", Sw.WRONG_LENGTH)
        if whole is None:
            return ResponseApdu(b"", Sw.OK)
        return self._dispatch(whole, False, icao_sm=True)

    def _dispatch(self, cmd: CommandApdu, secure: bool, *, icao_sm: bool = False) -> ResponseApdu:
        ins = cmd.ins
        if self.config.profile != "ktp" and ins != Ins.GET_DATA:
            return ResponseApdu(b"", Sw.FILE_NOT_FOUND if ins == Ins.SELECT
                                else Sw.INS_NOT_SUPPORTED)
        handlers: dict[int, Callable[[CommandApdu], ResponseApdu]] = {
            Ins.SELECT: self._select,
            Ins.READ_BINARY: self._read_binary,
            Ins.READ_BINARY_ODD: self._read_binary,
            Ins.GET_DATA: self._get_data,
            Ins.INITIALIZE_UPDATE: self._initialize_update,
            Ins.CREATE_FILE: self._create_file,
            Ins.UPDATE_BINARY: self._update_binary,
            Ins.UPDATE_BINARY_ODD: self._update_binary,
            Ins.ACTIVATE_FILE: self._activate,
            Ins.HASH_FILE: self._hash_file,
            PUT_KEY: self._put_key,
            INS_PUT_DATA: self._put_data,
            INS_GENERATE_KEY_PAIR: self._generate_key_pair,
            INS_GET_CHALLENGE: self._get_challenge,
            INS_INTERNAL_AUTHENTICATE: self._internal_authenticate,
            INS_MSE: self._mse,
            INS_GENERAL_AUTHENTICATE: self._general_authenticate,
        }
        self._icao_sm = icao_sm
        if ins == INS_MUTUAL_AUTHENTICATE and cmd.cla == 0x00:
            if icao_sm:
                return self._ta_external_authenticate(cmd)
            return self._mutual_authenticate(cmd)
        if ins == INS_PSO and (cmd.p1, cmd.p2) == (0x00, 0xBE):
            return self._pso_verify_certificate(cmd) if icao_sm else ResponseApdu(
                b"", Sw.SECURITY_STATUS)
        handler = handlers.get(ins)
        if handler is None:
            return ResponseApdu(b"", Sw.INS_NOT_SUPPORTED)
        if ins in (Ins.CREATE_FILE, Ins.UPDATE_BINARY, Ins.UPDATE_BINARY_ODD,
                   Ins.ACTIVATE_FILE, PUT_KEY, INS_PUT_DATA, INS_GENERATE_KEY_PAIR):
            denied = self._write_denied(secure)
            if denied is not None:
                return ResponseApdu(b"", denied)
        self._read_allowed = self._reads_allowed(secure, icao_sm)
        if ins in (Ins.HASH_FILE, INS_INTERNAL_AUTHENTICATE) and not self._read_allowed:
            return ResponseApdu(b"", Sw.SECURITY_STATUS)
        return handler(cmd)

    def _reads_allowed(self, secure: bool, icao_sm: bool) -> bool:
        """EF access: under SCP03 while in initialisation, under BAC secure messaging after."""
        if self.life_cycle == LifeCycle.INITIALISATION:
            return secure and self._session.scp is not None
        return icao_sm and self._session.sm is not None

    def _write_denied(self, secure: bool) -> int | None:
        scp = self._session.scp
        if not secure or scp is None or (scp.level & REQUIRED_WRITE_LEVEL) != REQUIRED_WRITE_LEVEL:
            return Sw.SECURITY_STATUS
        if self.life_cycle != LifeCycle.INITIALISATION:
            return Sw.CONDITIONS
        if not self._session.app_selected:
            return Sw.CONDITIONS
        return None

    # -- commands ------------------------------------------------------------------------------
    def _app_fcp(self) -> bytes:
        return tlv(0x62, tlv(0x82, b"\x38") + tlv(0x84, LDS_AID)
                   + tlv(0x81, self.used_bytes.to_bytes(2, "big"))
                   + tlv(0x8A, bytes((self.life_cycle,))))

    def _ef_fcp(self, f: CardFile) -> bytes:
        return tlv(0x62, tlv(0x80, f.size.to_bytes(2, "big")) + tlv(0x82, b"\x01")
                   + tlv(0x83, f.fid.to_bytes(2, "big")) + tlv(0x88, bytes((f.sfi,)))
                   + tlv(0x8A, bytes((self.life_cycle,))))

    def _select(self, cmd: CommandApdu) -> ResponseApdu:
        want_fcp = cmd.p2 & 0x0C == 0x04 or cmd.p2 == 0x00
        if cmd.p1 == 0x04:
            if cmd.data != LDS_AID:
                return ResponseApdu(b"", Sw.FILE_NOT_FOUND)
            self._session = _Session(app_selected=True, sm=self._session.sm,
                                     eac=self._session.eac, id_picc=self._session.id_picc)
            return ResponseApdu(self._app_fcp() if want_fcp else b"", Sw.OK)
        if cmd.p1 in (0x00, 0x02) and len(cmd.data) == 2:
            fid = int.from_bytes(cmd.data, "big")
            if fid == 0x3F00 and cmd.p1 == 0x00:  # the MF
                self._session.app_selected, self._session.current_ef = False, None
                return ResponseApdu(b"", Sw.OK)
            if (fid == CARD_ACCESS_FID and self._card_access() is not None
                    and not self._cvca_visible()):
                self._session.current_ef = self._card_access()
                return ResponseApdu(b"", Sw.OK)
            f = self.files.get(fid) if self._session.app_selected else None
            if f is None:
                return ResponseApdu(b"", Sw.FILE_NOT_FOUND)
            if not self._read_allowed or self._eac_denied(f):
                return ResponseApdu(b"", Sw.SECURITY_STATUS)
            self._session.current_ef = f
            return ResponseApdu(self._ef_fcp(f) if want_fcp else b"", Sw.OK)
        return ResponseApdu(b"", Sw.INCORRECT_P1P2)

    def _file_and_offset(self, cmd: CommandApdu) -> tuple[CardFile | None, int, bytes, int]:
        """(file, offset, data, status) for the even and odd READ/UPDATE BINARY forms."""
        if cmd.ins & 1:
            fid = (cmd.p1 << 8) | cmd.p2
            f = self.files.get(fid) if fid else self._session.current_ef
            try:
                items = dict(parse(cmd.data))
            except ValueError:
                return None, 0, b"", Sw.WRONG_DATA
            if 0x54 not in items:
                return None, 0, b"", Sw.WRONG_DATA
            return f, int.from_bytes(items[0x54], "big"), items.get(0x53, b""), Sw.OK
        if cmd.p1 & 0x80:
            sfi = cmd.p1 & 0x1F
            f = next((x for x in self.files.values() if x.sfi == sfi), None)
            if f is not None:
                self._session.current_ef = f
            return f, cmd.p2, cmd.data, Sw.OK
        return self._session.current_ef, (cmd.p1 << 8) | cmd.p2, cmd.data, Sw.OK

    def _cvca_visible(self) -> bool:
        """011C / SFI 1C means EF.CVCA (not EF.CardAccess) for an authenticated read with the
        LDS application selected."""
        return (self._session.app_selected and eac.CVCA_FID in self.files
                and self._read_allowed)

    def _eac_denied(self, f: CardFile) -> bool:
        """DG3 on a locked EAC card: only after Terminal Authentication granting read-DG3."""
        if f.fid != DG3_FID or self.life_cycle != LifeCycle.OPERATIONAL:
            return False
        if not self.secrets.trust_points:
            return False
        state = self._session.eac
        return not (state.terminal_authenticated and state.effective_rights & cvc.READ_DG3)

    def _card_access(self) -> CardFile | None:
        """EF.CardAccess in the MF, public: present once the card knows its CAN."""
        if self.secrets.can is None:
            return None
        return CardFile(CARD_ACCESS_FID, CARD_ACCESS_SFI, bytearray(card_access()))

    def _read_binary(self, cmd: CommandApdu) -> ResponseApdu:
        current = self._session.current_ef
        public = self._card_access()
        if public is not None and not cmd.ins & 1 and not self._cvca_visible() and (
                (cmd.p1 & 0x80 and cmd.p1 & 0x1F == CARD_ACCESS_SFI)
                or (not cmd.p1 & 0x80 and current is not None
                    and current.fid == CARD_ACCESS_FID)):
            offset = cmd.p2 if cmd.p1 & 0x80 else (cmd.p1 << 8) | cmd.p2
            chunk = bytes(public.data[offset : offset + (cmd.le or 256)])
            return ResponseApdu(chunk, Sw.OK if len(chunk) == (cmd.le or 256) else Sw.END_OF_FILE)
        if not self._session.app_selected:
            return ResponseApdu(b"", Sw.CONDITIONS)
        if not self._read_allowed:
            return ResponseApdu(b"", Sw.SECURITY_STATUS)
        f, offset, _, status = self._file_and_offset(cmd)
        if status != Sw.OK:
            return ResponseApdu(b"", status)
        if f is None:
            return ResponseApdu(b"", Sw.FILE_NOT_FOUND)
        if self._eac_denied(f):
            return ResponseApdu(b"", Sw.SECURITY_STATUS)
        if offset > f.size:
            return ResponseApdu(b"", Sw.WRONG_P1P2)
        le = min(cmd.le or 256, self.config.max_response_data)
        chunk = bytes(f.data[offset : offset + le])
        if cmd.ins & 1:
            chunk_tlv = tlv(0x53, chunk)
            return ResponseApdu(chunk_tlv, Sw.OK if len(chunk) == le else Sw.END_OF_FILE)
        return ResponseApdu(chunk, Sw.OK if len(chunk) == le else Sw.END_OF_FILE)

    def _get_data(self, cmd: CommandApdu) -> ResponseApdu:
        tag = (cmd.p1 << 8) | cmd.p2
        if tag == 0x9F7F and self.config.cplc:
            return ResponseApdu(tlv(0x9F7F, self.config.cplc), Sw.OK)
        if tag == 0xFF21:
            free = max(0, self.free_bytes + self.faults.overstate_free)
            body = (tlv(0x81, b"\x01") + tlv(0x82, free.to_bytes(4, "big"))
                    + tlv(0x83, b"\x08\x00"))
            return ResponseApdu(tlv(0xFF21, body), Sw.OK)
        if tag == 0x7F66 and self.config.extended_length:
            body = (tlv(0x02, self.config.max_command_data.to_bytes(2, "big"))
                    + tlv(0x02, self.config.max_response_data.to_bytes(2, "big")))
            return ResponseApdu(tlv(0x7F66, body), Sw.OK)
        return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)

    def _initialize_update(self, cmd: CommandApdu) -> ResponseApdu:
        if cmd.cla != 0x80 or len(cmd.data) != 8:
            return ResponseApdu(b"", Sw.WRONG_DATA)
        keys = self._static_keys()
        if cmd.p1 not in (0x00, keys.kvn):
            return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
        if not self._session.app_selected:
            return ResponseApdu(b"", Sw.CONDITIONS)
        card_challenge = os.urandom(8)
        scp = Scp03Session.derive(keys, cmd.data, card_challenge)
        self._session.scp = scp
        iu = InitializeUpdateResponse(
            self.card_identity.ljust(10, b"\x00")[:10], keys.kvn, 0x03, 0x60,
            card_challenge, scp.card_cryptogram(), None,
        )
        return ResponseApdu(iu.encode(), Sw.OK)

    def _static_keys(self) -> StaticKeys:
        """The current SCP03 key set: the diversified personalization keys (KVN 30) until a
        PUT KEY replaced them."""
        if self.replaced_keys is not None:
            return self.replaced_keys
        return scp03_static_keys(self.config.scp03_master, self.card_identity)

    def _put_key(self, cmd: CommandApdu) -> ResponseApdu:
        """PUT KEY replacing the current key set (P1 = its KVN); keys under the static DEK."""
        current = self._static_keys()
        if cmd.p1 != current.kvn or cmd.p2 != 0x81:
            return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
        try:
            new_kvn, keys = parse_put_key(current.dek, cmd.data)
        except ValueError:
            return ResponseApdu(b"", Sw.WRONG_DATA)
        if len(keys) != 3 or new_kvn in (0x00, 0xFF):
            return ResponseApdu(b"", Sw.WRONG_DATA)
        self.replaced_keys = StaticKeys(keys[0], keys[1], keys[2], new_kvn)
        self._save()
        return ResponseApdu(bytes((new_kvn,)) + b"".join(key_check_value(k) for k in keys),
                            Sw.OK)

    def _external_authenticate(self, cmd: CommandApdu) -> bytes:
        scp = self._session.scp
        if scp is None or scp.authenticated:
            self._session.scp = None
            return _sw(Sw.CONDITIONS)
        try:
            scp.verify_external_authenticate(cmd)
        except SecureChannelError:
            self._session.scp = None
            return _sw(Sw.SECURITY_STATUS)
        return _sw(Sw.OK)

    def _create_file(self, cmd: CommandApdu) -> ResponseApdu:
        try:
            fcp = dict(parse(find(cmd.data, 0x62) or b""))
            size = int.from_bytes(fcp[0x80], "big")
            fid = int.from_bytes(fcp[0x83], "big")
            sfi = fcp.get(0x88, b"\x00")[0]
        except (ValueError, KeyError, IndexError):
            return ResponseApdu(b"", Sw.WRONG_DATA)
        if fid in self.files:
            return ResponseApdu(b"", Sw.FILE_EXISTS)
        if size + FILE_OVERHEAD > self.free_bytes:
            return ResponseApdu(b"", Sw.NOT_ENOUGH_MEMORY)
        f = CardFile(fid, sfi, bytearray(size))
        self.files[fid] = f
        self._session.current_ef = f
        self._save()
        return ResponseApdu(b"", Sw.OK)

    def _update_binary(self, cmd: CommandApdu) -> ResponseApdu:
        f, offset, data, status = self._file_and_offset(cmd)
        if status != Sw.OK:
            return ResponseApdu(b"", status)
        if f is None:
            return ResponseApdu(b"", Sw.FILE_NOT_FOUND)
        if offset + len(data) > f.size:
            return ResponseApdu(b"", Sw.WRONG_P1P2)
        if self.faults.refuse_writes:
            return ResponseApdu(b"", Sw.MEMORY_FAILURE)
        f.data[offset : offset + len(data)] = data
        self._eeprom_wait(offset, len(data))
        self._save()
        return ResponseApdu(b"", Sw.OK)

    def _eeprom_wait(self, offset: int, length: int) -> None:
        if self.config.eeprom_page_seconds <= 0 or length == 0:
            return
        page = self.config.eeprom_page
        pages = (offset + length - 1) // page - offset // page + 1
        delay = pages * self.config.eeprom_page_seconds
        self.eeprom_seconds += delay
        time.sleep(delay)

    def _activate(self, cmd: CommandApdu) -> ResponseApdu:
        self.life_cycle = LifeCycle.OPERATIONAL
        self._save()
        return ResponseApdu(b"", Sw.OK)

    # -- access control and Active Authentication ------------------------------------------------
    def _put_data(self, cmd: CommandApdu) -> ResponseApdu:
        """PUT DATA 00A0: the BAC keys (K_enc, K_mac) derived from the MRZ by the host."""
        if (cmd.p1 << 8) | cmd.p2 == eac.PUT_DATA_TRUST_POINT:
            return self._put_trust_point(cmd.data)
        if (cmd.p1 << 8) | cmd.p2 != PUT_DATA_ACCESS_KEYS:
            return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
        try:
            items = dict(parse(find(cmd.data, 0xA0) or b""))
            k_enc, k_mac = items[0x80], items[0x81]
        except (ValueError, KeyError):
            return ResponseApdu(b"", Sw.WRONG_DATA)
        can = items.get(0x82)
        if len(k_enc) != 16 or len(k_mac) != 16 or (
                can is not None and not (len(can) == 6 and can.isdigit())):
            return ResponseApdu(b"", Sw.WRONG_DATA)
        self.secrets.bac_enc, self.secrets.bac_mac, self.secrets.can = k_enc, k_mac, can
        self._save()
        return ResponseApdu(b"", Sw.OK)

    def _put_trust_point(self, data: bytes) -> ResponseApdu:
        """PUT DATA 00A1: the CVCA's CHR and public key, and the chip's current date."""
        try:
            items = parse(data)
            point_raw = tlv(items[0][0], items[0][1])
            eac.decode_trust_points(point_raw)
            date = cvc.decode_date(dict(items).get(cvc.TAG_EFFECTIVE, b""))
        except (MalformedError, ValueError, IndexError, UnicodeDecodeError):
            return ResponseApdu(b"", Sw.WRONG_DATA)
        self.secrets.trust_points = point_raw
        self.secrets.eac_date = cvc.encode_date(date)
        self._save()
        return ResponseApdu(b"", Sw.OK)

    def _eac_card(self) -> eac.EacCard:
        points = eac.decode_trust_points(self.secrets.trust_points or b"")
        return eac.EacCard(points, cvc.decode_date(self.secrets.eac_date or b"\0" * 6))

    def _store_eac(self, card: eac.EacCard) -> None:
        self.secrets.trust_points = b"".join(eac.encode_trust_point(tp)
                                             for tp in card.trust_points)
        self.secrets.eac_date = cvc.encode_date(card.current_date)
        cvca_file = self.files.get(eac.CVCA_FID)
        if cvca_file is not None:  # the chip keeps EF.CVCA in step: newest trust point first
            refs = [tp.chr for tp in reversed(card.trust_points)]
            cvca_file.data[:] = eac.ef_cvca(*refs[:2])[:cvca_file.size]
        self._save()

    def _generate_key_pair(self, cmd: CommandApdu) -> ResponseApdu:
        """A new P-256 key pair for Active Authentication (P2 00) or Chip Authentication
        (P2 01); answers the public key only (``7F49 { 86 uncompressed point }``). The
        private key never leaves the card."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        if cmd.p2 == eac.P2_CA_KEY:
            self.secrets.ca_private_pem = pem
        else:
            self.secrets.aa_private_pem = pem
        self._save()
        point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        return ResponseApdu(tlv(0x7F49, tlv(0x86, point)), Sw.OK)

    def _get_challenge(self, cmd: CommandApdu) -> ResponseApdu:
        if cmd.le != 8:
            return ResponseApdu(b"", Sw.WRONG_LENGTH)
        if self._icao_sm:  # Terminal Authentication's challenge, the session stays
            self._session.eac.challenge = os.urandom(8)
            return ResponseApdu(self._session.eac.challenge, Sw.OK)
        if self.secrets.bac_enc is None or self.secrets.bac_mac is None:
            return ResponseApdu(os.urandom(8), Sw.OK)
        self._session.bac = BacCard(self.secrets.bac_enc, self.secrets.bac_mac)
        self._session.sm = None
        return ResponseApdu(self._session.bac.get_challenge(), Sw.OK)

    def _mutual_authenticate(self, cmd: CommandApdu) -> ResponseApdu:
        bac, self._session.bac = self._session.bac, None
        if bac is None:
            return ResponseApdu(b"", Sw.CONDITIONS)
        try:
            reply, sm = bac.mutual_authenticate(cmd.data)
        except SecureChannelError:
            return ResponseApdu(b"", Sw.SECURITY_STATUS)
        try:
            id_picc: bytes | None = eac.id_picc(self._mrz())
        except (ValueError, IndexError):
            id_picc = None  # no DG1 (yet): TA cannot bind to this BAC session
        self._session.sm, self._session.id_picc = sm, id_picc
        return ResponseApdu(reply, Sw.OK)

    def _mse(self, cmd: CommandApdu) -> ResponseApdu:
        """MSE: Set AT for PACE (C1A4), for Chip Authentication (41A4) and Terminal
        Authentication (81A4); Set DST (81B6) names the key of the next certificate."""
        p1p2 = (cmd.p1, cmd.p2)
        if p1p2 == (0xC1, 0xA4):
            return self._mse_set_at(cmd)
        if not self._icao_sm:
            return ResponseApdu(b"", Sw.SECURITY_STATUS)
        state = self._session.eac
        if p1p2 == (0x41, 0xA4):
            oid = find(cmd.data, 0x80)
            if self.secrets.ca_private_pem is None or oid != eac.oid_bytes(
                    eac.OID_CA_ECDH_AES_CBC_CMAC_128):
                return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
            state.ca_pending = True
            return ResponseApdu(b"", Sw.OK)
        if p1p2 in ((0x81, 0xB6), (0x81, 0xA4)):
            if not self.secrets.trust_points:
                return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
            card = self._eac_card()
            sw = (card.set_dst if p1p2 == (0x81, 0xB6) else card.set_at)(state, cmd.data)
            return ResponseApdu(b"", sw)
        return ResponseApdu(b"", Sw.INCORRECT_P1P2)

    def _pso_verify_certificate(self, cmd: CommandApdu) -> ResponseApdu:
        if not self.secrets.trust_points:
            return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
        card = self._eac_card()
        sw = card.verify_certificate(self._session.eac, cmd.data)
        if sw == Sw.OK:
            self._store_eac(card)  # the date may have advanced, a link certificate arrived
        return ResponseApdu(b"", sw)

    def _mrz(self) -> str:
        dg1 = self.files.get(DG1_FID)
        try:
            return parse_dg1(bytes(dg1.data)) if dg1 is not None else ""
        except (ValueError, UnicodeDecodeError):
            return ""

    def _ta_external_authenticate(self, cmd: CommandApdu) -> ResponseApdu:
        """TA's last step: the IS signature over ID_PICC ‖ r_PICC ‖ Comp(PK_PCD), ID_PICC the
        one of the access this session was opened with (BAC or PACE)."""
        sw = self._eac_card().external_authenticate(self._session.eac, cmd.data,
                                                     self._session.id_picc or b"")
        return ResponseApdu(b"", sw)

    def _mse_set_at(self, cmd: CommandApdu) -> ResponseApdu:
        """MSE:Set AT for PACE (``00 22 C1 A4``) with the CAN as password."""
        if self.secrets.can is None:
            return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
        pace = PaceCard(self.secrets.can.decode("ascii"))
        try:
            pace.set_at(cmd.data)
        except SecureChannelError:
            return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
        self._session.pace, self._session.sm = pace, None
        return ResponseApdu(b"", Sw.OK)

    def _general_authenticate(self, cmd: CommandApdu) -> ResponseApdu:
        state = self._session.eac
        if state.ca_pending and self._icao_sm and self.secrets.ca_private_pem is not None:
            state.ca_pending = False
            pk_pcd = find(find(cmd.data, 0x7C) or b"", 0x80)
            key = serialization.load_pem_private_key(self.secrets.ca_private_pem, None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            try:
                self._session.next_sm = eac.ecdh_session(key, pk_pcd or b"")
            except SecureChannelError:
                return ResponseApdu(b"", Sw.WRONG_DATA)
            # A new session: TA starts from nothing, with this ephemeral key.
            self._session.eac = eac.EacCardState(pk_pcd=pk_pcd)
            return ResponseApdu(tlv(0x7C, b""), Sw.OK)
        pace = self._session.pace
        if pace is None:
            return ResponseApdu(b"", Sw.CONDITIONS)
        try:
            reply, sm = pace.general_authenticate(cmd.data)
        except SecureChannelError:
            self._session.pace = None
            return ResponseApdu(b"", 0x6300)  # authentication failed (wrong CAN)
        if sm is not None:
            self._session.pace, self._session.sm = None, sm
            self._session.id_picc = sm.pace_chip_key  # TA's dynamic binding to this PACE run
        return ResponseApdu(reply, Sw.OK)

    def _internal_authenticate(self, cmd: CommandApdu) -> ResponseApdu:
        """Active Authentication (ICAO 9303-11 §6.1): ECDSA-SHA-256 over the 8-byte challenge,
        plain r ‖ s (BSI TR-03111)."""
        if self.secrets.aa_private_pem is None:
            return ResponseApdu(b"", Sw.REFERENCED_DATA_NOT_FOUND)
        if len(cmd.data) != 8:
            return ResponseApdu(b"", Sw.WRONG_DATA)
        key = serialization.load_pem_private_key(self.secrets.aa_private_pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(cmd.data, ec.ECDSA(hashes.SHA256())))
        return ResponseApdu(r.to_bytes(32, "big") + s.to_bytes(32, "big"), Sw.OK)

    def _hash_file(self, cmd: CommandApdu) -> ResponseApdu:
        """HASH FILES: SHA-256 over the SHA-256 of each listed EF's content, in order."""
        if cmd.p1 != 0x90 or cmd.p2 != 0x80:
            return ResponseApdu(b"", Sw.INCORRECT_P1P2)
        if not cmd.data or len(cmd.data) % 2:
            return ResponseApdu(b"", Sw.WRONG_LENGTH)
        digests = b""
        for i in range(0, len(cmd.data), 2):
            f = self.files.get(int.from_bytes(cmd.data[i : i + 2], "big"))
            if f is None:
                return ResponseApdu(b"", Sw.FILE_NOT_FOUND)
            if self._eac_denied(f):
                return ResponseApdu(b"", Sw.SECURITY_STATUS)
            digests += hashlib.sha256(f.data).digest()
        return ResponseApdu(hashlib.sha256(digests).digest(), Sw.OK)


SW_SM_OBJECTS_INCORRECT = 0x6988
DG1_FID, DG3_FID = 0x0101, 0x0103


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


@dataclass
class SimulatedChannel:
    """An in-memory :class:`~chip.api.CardChannel` onto a :class:`SimulatedCard`."""

    card: SimulatedCard
    reader_name: str = "Simulated reader"
    closed: bool = field(default=False)

    def __post_init__(self) -> None:
        self.card.reset()

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def transmit(self, apdu: bytes) -> bytes:
        if self.closed:
            raise CardRemovedError("channel closed")
        try:
            return self.card.process(apdu)
        except CardRemovedError:
            self.closed = True
            raise

    def close(self) -> None:
        self.closed = True
