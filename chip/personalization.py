"""The personalization sequence: build the LDS, write it over SCP03, check it, lock the card.

Entry points for the station: :func:`personalize` (any :class:`~chip.api.CardChannel`),
:func:`personalize_reader` (a PC/SC reader by name) and :func:`probe_card_state`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric import ec

from chip import activeauth, biometrics, cvc, eac
from chip.apdu import CommandApdu, Ins
from chip.api import CardChannel, DocumentSigner, KeyDiversifier
from chip.bac import BacKey
from chip.cardops import CardFacts, card_facts, read_ef
from chip.diversification import scp03_static_keys
from chip.errors import (
    CapacityError,
    CardLockedError,
    CardState,
    ChipError,
    HostError,
    MalformedError,
    NotBlankError,
    SecureChannelError,
    StatusWordError,
    VerificationError,
    WrongCardError,
)
from chip.face import compact_signature, fit_face
from chip.lds import (
    DATA_GROUPS,
    Ef,
    HolderData,
    dg1,
    dg2,
    dg7,
    dg11,
    dg12,
    ef_com,
    parse_dg1,
)
from chip.scp03 import (
    SecurityLevel,
    StaticKeys,
    initialize_update,
    key_check_value,
    open_host_session,
    put_key_command,
)
from chip.sod import build_sod
from chip.tlv import tlv
from chip.transport import Transport

__all__ = [
    "HolderData",
    "PersonalizationKeys",
    "PersonalizationOptions",
    "PersonalizationResult",
    "ReadBack",
    "personalize",
    "personalize_reader",
    "probe_card_state",
]

SECURITY_LEVEL = SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION | SecurityLevel.R_MAC
HOST_FILE_OVERHEAD = 32  # conservative per-file allowance for card-side file headers


class ReadBack(StrEnum):
    HASH = "hash"  # the card hashes all files (HASH FILES under R-MAC): few bytes on the wire
    FULL = "full"  # every file is read back and compared byte for byte


@dataclass(frozen=True)
class PersonalizationKeys:
    """The three token keys a personalization needs."""

    signer: DocumentSigner
    scp03_master: KeyDiversifier
    biometric_master: KeyDiversifier
    biometric_key_id: bytes = biometrics.DEFAULT_KEY_ID
    #: The CVCA certificate (CV, ``7F21``) the chip trusts for Terminal Authentication; with
    #: it the chip lets DG3 be read only after TA (EAC). None: no EAC trust point.
    cvca_certificate: bytes | None = None


@dataclass(frozen=True)
class PersonalizationOptions:
    readback: ReadBack = ReadBack.FULL  # standard; HASH only for card profiles that declare it
    max_face_bytes: int = 12_000
    min_face_bytes: int = 2_000
    scp03_kvn: int = 0x30
    #: Before locking, replace the personalization keys by random keys nobody keeps (PUT KEY
    #: under the DEK): a locked card can never open a personalization session again.
    retire_keys: bool = True
    active_authentication: bool = True  # the card makes an AA key pair; DG15 holds its key
    chip_authentication: bool = True  # the card makes a CA key pair; DG14 holds its key


@dataclass(frozen=True)
class PersonalizationResult:
    """What the station logs per card."""

    reader: str
    chip_uid: str
    atr: str
    apdus: int
    bytes_sent: int
    bytes_received: int
    payload_bytes: int
    handshake_bytes: int  # inspect + SCP03 opening, before the first write
    seconds: float
    phases: dict[str, float]
    files: dict[str, int]
    face_bytes: int
    card_state: CardState = CardState.LOCKED

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["card_state"] = self.card_state.value
        return d


@dataclass
class _WriteTracker:
    """What we know about the card's content while writing (drives ``card_state``)."""

    confirmed: bool = False  # at least one write acknowledged
    in_flight: bool = False  # a write was sent and not yet answered
    lock_sent: bool = False
    locked: bool = False

    def state_after(self, exc: ChipError) -> CardState:
        if self.locked:
            return CardState.LOCKED
        uncertain = self.in_flight and not isinstance(exc, StatusWordError)
        if self.lock_sent and uncertain:
            return CardState.UNKNOWN
        if self.confirmed:
            return CardState.PARTIAL
        return CardState.UNKNOWN if uncertain else CardState.BLANK

    @property
    def started(self) -> bool:
        return self.confirmed or self.in_flight or self.lock_sent


@dataclass
class _Clock:
    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = round(self.phases.get(name, 0.0) + time.perf_counter() - t0, 6)


def _fingers(h: HolderData) -> list[biometrics.Finger]:
    out = []
    if h.finger_right_index_fmr:
        out.append(biometrics.Finger(biometrics.FINGER_RIGHT_INDEX, h.finger_right_index_fmr))
    if h.finger_left_index_fmr:
        out.append(biometrics.Finger(biometrics.FINGER_LEFT_INDEX, h.finger_left_index_fmr))
    return out


_SOD_SIZES: dict[tuple[bytes, tuple[int, ...]], int] = {}


def _sod_size_estimate(signer: DocumentSigner, dgs: tuple[int, ...]) -> int:
    """EF.SOD's size does not depend on the data groups' sizes: measure it once per signer and
    set of data groups with placeholders (+16 for the varying ECDSA DER length, signing time)."""
    key = (hashlib.sha256(signer.certificate_der).digest(), dgs)
    if key not in _SOD_SIZES:
        _SOD_SIZES[key] = len(build_sod(dict.fromkeys(dgs, b""), signer)) + 16
    return _SOD_SIZES[key]


def build_files(holder: HolderData, keys: PersonalizationKeys, card_identity: bytes,
                free_bytes: int | None, options: PersonalizationOptions,
                dg15: bytes | None = None,
                ca_public: ec.EllipticCurvePublicKey | None = None) -> dict[Ef, bytes]:
    """Every EF, EF.SOD last, sized to the card: the face takes what memory is left.

    Raises :class:`CapacityError` (card still blank) when the data cannot fit.
    """
    fingers = _fingers(holder)
    groups: dict[Ef, bytes] = {
        Ef.DG1: dg1(holder),
        Ef.DG7: dg7(compact_signature(holder.signature_image)),
        Ef.DG11: dg11(holder),
        Ef.DG12: dg12(holder),
    }
    if fingers:
        groups[Ef.DG3] = biometrics.encrypt_dg3(fingers, keys.biometric_master, card_identity,
                                                holder.document_number, keys.biometric_key_id)
    if dg15 is not None or ca_public is not None:
        groups[Ef.DG14] = eac.dg14(ca_public, active_authentication=dg15 is not None)
    if dg15 is not None:
        groups[Ef.DG15] = dg15
    cvca = (cvc.parse_cv_certificate(keys.cvca_certificate) if keys.cvca_certificate
            else None)
    present = [ef for ef in DATA_GROUPS if ef in groups or ef is Ef.DG2]
    com = ef_com(present)
    sod_size = _sod_size_estimate(keys.signer, tuple(sorted(
        [ef.value.dg or 0 for ef in groups] + [2])))
    ef_cvca = eac.ef_cvca(cvca.chr) if cvca is not None else None
    fixed = (len(com) + sum(len(v) for v in groups.values()) + sod_size
             + len(ef_cvca or b""))
    n_files = len(present) + 2 + (ef_cvca is not None)
    face_budget = options.max_face_bytes
    if free_bytes is not None:
        dg2_wrapper = len(dg2(b"")) + 8
        face_budget = min(face_budget,
                          free_bytes - fixed - n_files * HOST_FILE_OVERHEAD - dg2_wrapper)
    if face_budget < options.min_face_bytes:
        raise CapacityError(
            f"card has {free_bytes} bytes free; the data needs {fixed} plus a face image of"
            f" at least {options.min_face_bytes}", card_state=CardState.BLANK)
    groups[Ef.DG2] = dg2(fit_face(holder.photo_jpeg, face_budget))
    files = {Ef.COM: com}
    files.update({ef: groups[ef] for ef in DATA_GROUPS if ef in groups})
    if ef_cvca is not None:
        files[Ef.CVCA] = ef_cvca
    sod = build_sod({ef.value.dg or 0: raw for ef, raw in files.items() if ef.value.dg},
                    keys.signer)
    files[Ef.SOD] = sod
    total = sum(len(v) + HOST_FILE_OVERHEAD for v in files.values())
    if free_bytes is not None and total > free_bytes:
        raise CapacityError(f"data needs {total} bytes, card has {free_bytes} free",
                            card_state=CardState.BLANK)
    return files


def _chunk_size(facts: CardFacts) -> int:
    """Largest plain chunk so that padding (1..16) and the C-MAC (8) fit the card's buffer."""
    limit = facts.max_command_data if facts.extended_length else 255
    limit = min(limit, 65535)
    return (limit - 8) // 16 * 16 - 1


def _update_commands(ef: Ef, data: bytes, chunk: int, extended: bool) -> Iterator[CommandApdu]:
    offset = 0
    while offset < len(data):
        if offset < 0x8000:
            size = min(chunk, len(data) - offset)
            part = data[offset : offset + size]
            yield CommandApdu(0x80, Ins.UPDATE_BINARY, offset >> 8, offset & 0xFF, part)
        else:  # offsets beyond 15 bits: odd INS with offset DO 54
            size = min(chunk - 12, len(data) - offset)
            part = data[offset : offset + size]
            body = tlv(0x54, offset.to_bytes(3, "big")) + tlv(0x53, part)
            yield CommandApdu(0x80, Ins.UPDATE_BINARY_ODD, ef.value.fid >> 8,
                              ef.value.fid & 0xFF, body, extended=extended)
        offset += size


def _create_command(ef: Ef, size: int) -> CommandApdu:
    fcp = tlv(0x62, tlv(0x80, size.to_bytes(2, "big")) + tlv(0x82, b"\x01")
              + tlv(0x83, ef.value.fid.to_bytes(2, "big")) + tlv(0x88, bytes((ef.value.sfi,))))
    return CommandApdu(0x80, Ins.CREATE_FILE, 0x00, 0x00, fcp)


def personalize(channel: CardChannel, holder: HolderData, keys: PersonalizationKeys,
                options: PersonalizationOptions | None = None, *,
                can: str | None = None) -> PersonalizationResult:
    """Personalize and lock the card on ``channel``; ``can`` (6 digits, printed on the card)
    becomes the card's PACE password, besides BAC from the MRZ.

    Raises a :class:`~chip.errors.ChipError` whose ``card_state`` says whether the card is
    still blank (retry), partly written (spoil), locked or unknown. Never returns for a card
    whose writes were not all confirmed and checked.
    """
    options = options or PersonalizationOptions()
    t = Transport(channel)
    tracker = _WriteTracker()
    clock = _Clock()
    started = time.perf_counter()
    try:
        with clock.phase("inspect"):
            facts = card_facts(t, channel.atr)
        if facts.state is CardState.LOCKED:
            raise CardLockedError("card is already personalized and locked",
                                  card_state=CardState.LOCKED)
        if facts.state is CardState.PARTIAL:
            raise NotBlankError(f"card already holds {facts.used_bytes} bytes of files",
                                card_state=CardState.PARTIAL)
        if not facts.card_identity:
            raise WrongCardError("card has no CPLC (GET DATA 9F7F): its keys cannot be "
                                 "derived", card_state=CardState.FOREIGN)
        with clock.phase("secure_channel"):
            static = scp03_static_keys(keys.scp03_master, facts.card_identity,
                                       options.scp03_kvn)
            host_challenge = os.urandom(8)
            iu = t.transmit(initialize_update(options.scp03_kvn, host_challenge),
                            context="INITIALIZE UPDATE")
            session, _ = open_host_session(static, host_challenge, iu.data)
            t.transmit(session.external_authenticate(SECURITY_LEVEL),
                       context="EXTERNAL AUTHENTICATE", secure=False)
            t.session = session
        handshake = t.stats.bytes_sent + t.stats.bytes_received
        with clock.phase("build"):
            # The AA key pair is made on the card before the files are built (DG15 goes into
            # EF.SOD); a CapacityError after it still leaves a card without files (blank).
            dg15 = activeauth.generate_on_card(t) if options.active_authentication else None
            ca_public = eac.generate_on_card(t) if options.chip_authentication else None
            files = build_files(holder, keys, facts.card_identity, facts.free_bytes, options,
                                dg15, ca_public)
        chunk = _chunk_size(facts)
        for ef, data in files.items():
            with clock.phase("write"):
                _write_file(t, tracker, ef, data, chunk, facts.extended_length)
            if options.readback is ReadBack.FULL:
                with clock.phase("readback"):
                    _read_back(t, ef, data, facts)
        if options.readback is ReadBack.HASH:
            with clock.phase("readback"):
                _check_hashes(t, files)
        with clock.phase("lock"):
            t.transmit(access_keys_command(BacKey.from_mrz(parse_dg1(files[Ef.DG1])), can),
                       context="PUT DATA (access keys)")
            if keys.cvca_certificate is not None:
                t.transmit(eac.trust_point_command(
                    cvc.parse_cv_certificate(keys.cvca_certificate),
                    dt.datetime.now(dt.UTC).date()), context="PUT DATA (EAC trust point)")
            if options.retire_keys:
                _retire_keys(t, static)
            tracker.lock_sent = tracker.in_flight = True
            t.transmit(CommandApdu(0x80, Ins.ACTIVATE_FILE, 0, 0), context="ACTIVATE (lock)")
            tracker.in_flight = False
            tracker.locked = True
            t.session = None
            if card_facts(t, channel.atr).state is not CardState.LOCKED:
                raise VerificationError("card does not report the locked life cycle")
    except ChipError as exc:
        if tracker.started or exc.card_state is CardState.UNKNOWN:
            exc.card_state = tracker.state_after(exc)
        raise
    except Exception as exc:  # a key token or library failure must still report the card
        wrapped = HostError(f"personalization failed on the host: {type(exc).__name__}: {exc}")
        wrapped.card_state = tracker.state_after(wrapped)
        raise wrapped from exc
    elapsed = time.perf_counter() - started
    payload = sum(len(v) for v in files.values())
    return PersonalizationResult(
        reader=channel.reader_name,
        chip_uid=facts.uid.hex().upper(),
        atr=channel.atr.hex().upper(),
        apdus=t.stats.apdus,
        bytes_sent=t.stats.bytes_sent,
        bytes_received=t.stats.bytes_received,
        payload_bytes=payload,
        handshake_bytes=handshake,
        seconds=round(elapsed, 6),
        phases=clock.phases | {"wire": round(t.stats.wire_seconds, 6)},
        files={ef.value.name: len(v) for ef, v in files.items()},
        face_bytes=len(files[Ef.DG2]),
    )


def access_keys_command(bac: BacKey, can: str | None = None) -> CommandApdu:
    """PUT DATA ``00A0``: the BAC keys and the CAN the card enforces once locked (sent under
    SCP03 with C-DECRYPTION)."""
    k_enc, k_mac = bac.keys()
    body = tlv(0x80, k_enc) + tlv(0x81, k_mac)
    if can is not None:
        if not (len(can) == 6 and can.isdigit()):
            raise MalformedError("the CAN is 6 digits")
        body += tlv(0x82, can.encode("ascii"))
    return CommandApdu(0x80, 0xDA, 0x00, 0xA0, tlv(0xA0, body))


def _write_file(t: Transport, tracker: _WriteTracker, ef: Ef, data: bytes, chunk: int,
                extended: bool) -> None:
    tracker.in_flight = True
    t.transmit(_create_command(ef, len(data)), context=f"CREATE {ef.value.name}")
    tracker.confirmed = True
    for cmd in _update_commands(ef, data, chunk, extended):
        t.transmit(cmd, context=f"UPDATE {ef.value.name}")
    tracker.in_flight = False


def _retire_keys(t: Transport, static: StaticKeys) -> None:
    """PUT KEY: replace key set ``static.kvn`` by three random AES keys, forgotten at once."""
    keys = tuple(os.urandom(16) for _ in range(3))
    new_kvn = static.kvn + 1
    resp = t.transmit(put_key_command(static.dek, static.kvn, new_kvn, keys),
                      context="PUT KEY (retire the personalization keys)")
    if resp.data != bytes((new_kvn,)) + b"".join(key_check_value(k) for k in keys):
        raise SecureChannelError("PUT KEY: the card's key check values do not match")


def _read_back(t: Transport, ef: Ef, data: bytes, facts: CardFacts) -> None:
    got = read_ef(t, ef, facts, secure=True)
    if not hmac.compare_digest(got, data):
        raise VerificationError(f"{ef.value.name}: read-back differs from what was written")


def _card_hash(t: Transport, efs: list[Ef]) -> bytes:
    fids = b"".join(ef.value.fid.to_bytes(2, "big") for ef in efs)
    return t.transmit(CommandApdu(0x80, Ins.HASH_FILE, 0x90, 0x80, fids, le=256),
                      context="HASH FILES").data


def _check_hashes(t: Transport, files: dict[Ef, bytes]) -> None:
    """One HASH FILES over every EF (under R-MAC); on a mismatch, find the file."""
    expected = hashlib.sha256(b"".join(hashlib.sha256(v).digest() for v in files.values()))
    if hmac.compare_digest(_card_hash(t, list(files)), expected.digest()):
        return
    for ef, data in files.items():
        if not hmac.compare_digest(_card_hash(t, [ef]),
                                   hashlib.sha256(hashlib.sha256(data).digest()).digest()):
            raise VerificationError(f"{ef.value.name}: card hash differs from what was written")
    raise VerificationError("card hash over all files differs from what was written")


def probe_card_state(channel: CardChannel) -> CardState:
    """BLANK, PARTIAL, LOCKED or FOREIGN for the card on ``channel`` (reads only)."""
    t = Transport(channel)
    try:
        return card_facts(t, channel.atr).state
    except ChipError as exc:
        if exc.card_state is CardState.FOREIGN:
            return CardState.FOREIGN
        raise


def personalize_reader(reader: str, holder: HolderData, keys: PersonalizationKeys,
                       options: PersonalizationOptions | None = None, *,
                       can: str | None = None) -> PersonalizationResult:
    """:func:`personalize` on the card in PC/SC reader ``reader`` (exclusive connection)."""
    from chip.pcsc import PcscChannel

    try:
        channel = PcscChannel(reader)
    except ChipError as exc:
        exc.card_state = CardState.BLANK  # nothing was sent to the card
        raise
    try:
        return personalize(channel, holder, keys, options, can=can)
    finally:
        channel.close()


