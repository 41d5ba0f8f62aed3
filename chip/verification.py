"""Read a personalized card back and check it: passive authentication, biometrics, lock.

:func:`verify_card` plays the terminal: it opens BAC with the MRZ key it is given, reads EF.COM,
EF.SOD and every data group under secure messaging, checks the SOD signature, the document
signer against the CSCA and each hash, runs Active Authentication when DG15 is present (a clone
fails it), and, given the biometric master key, decrypts DG3.

With EAC (DG14 offers Chip Authentication) it runs CA right after reading DG14 (a byte copy of
the files fails it) and, given an inspection system (:class:`chip.eac.InspectionSystem`),
Terminal Authentication before reading DG3: an EAC chip shows DG3 to nobody else.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from cryptography.x509 import load_der_x509_certificate

from chip import activeauth, biometrics, eac
from chip.api import CardChannel, KeyDiversifier
from chip.bac import BacKey, perform_bac
from chip.cardops import CardFacts, card_facts, read_ef
from chip.errors import (
    CardState,
    ChipError,
    FileMissingError,
    SecureChannelError,
    SecurityStatusError,
    StatusWordError,
    VerificationError,
)
from chip.face import face_image
from chip.lds import Ef, biometric_instances, parse_dg1, parse_ef_com
from chip.pace import CanKey, perform_pace_can
from chip.pki import document_types
from chip.sod import parse_sod, passive_authentication
from chip.tlv import unwrap
from chip.transport import Transport

_BY_DG = {ef.value.dg: ef for ef in Ef if ef.value.dg}


def document_number_from_mrz(mrz: str) -> str:
    """Document number of a TD1 MRZ, long-number rule included."""
    line1 = mrz[:30]
    number = line1[5:14]
    if line1[14] == "<":  # overflow in the optional data, ended by its check digit
        overflow = line1[15:30].split("<", 1)[0]
        number += overflow[:-1]
    return number.rstrip("<")


@dataclass
class VerificationReport:
    """Everything ``chip verify`` reports; ``ok`` is the verdict."""

    reader: str
    chip_uid: str
    atr: str
    locked: bool
    card_state: CardState
    mrz: str = ""
    document_number: str = ""
    files: dict[str, int] = field(default_factory=dict)
    signature_valid: bool = False
    chain_valid: bool = False
    dg_hashes_valid: dict[int, bool] = field(default_factory=dict)
    signer_subject: str = ""
    signing_time: str = ""  # EF.SOD's signingTime (ISO 8601), the chain model's reference
    revocation_checked: bool = False
    notes: list[str] = field(default_factory=list)  # worth knowing, not a failure
    biometrics_checked: bool = False
    biometrics_ok: bool | None = None
    fingers_decrypted: int = 0
    face_bytes: int = 0
    access_control: str = "none"  # "BAC" once the chip accepted our MRZ key
    active_authentication: bool | None = None  # None: the card has no DG15
    chip_authentication: bool | None = None  # None: DG14 offers no Chip Authentication
    terminal_authentication: bool | None = None  # None: not attempted (no DG3 or no IS key)
    dg3_withheld: bool = False  # the chip refused DG3 (EAC) and we had no way in
    problems: list[str] = field(default_factory=list)
    apdus: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    raw_files: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def passive_authentication_ok(self) -> bool:
        return (self.signature_valid and self.chain_valid and bool(self.dg_hashes_valid)
                and all(self.dg_hashes_valid.values()))

    @property
    def ok(self) -> bool:
        return (self.passive_authentication_ok and self.locked and not self.problems
                and self.biometrics_ok is not False and self.active_authentication is not False
                and self.chip_authentication is not False
                and self.terminal_authentication is not False)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok, "reader": self.reader, "chip_uid": self.chip_uid, "atr": self.atr,
            "locked": self.locked, "card_state": self.card_state.value,
            "access_control": self.access_control,
            "active_authentication": self.active_authentication,
            "chip_authentication": self.chip_authentication,
            "terminal_authentication": self.terminal_authentication,
            "dg3_withheld": self.dg3_withheld,
            "document_number": self.document_number, "mrz": self.mrz, "files": self.files,
            "passive_authentication": {
                "ok": self.passive_authentication_ok, "signature_valid": self.signature_valid,
                "chain_valid": self.chain_valid, "signer": self.signer_subject,
                "signing_time": self.signing_time,
                "revocation_checked": self.revocation_checked,
                "dg_hashes_valid": {f"DG{n}": v for n, v in self.dg_hashes_valid.items()},
            },
            "biometrics": {"checked": self.biometrics_checked, "ok": self.biometrics_ok,
                           "fingers_decrypted": self.fingers_decrypted,
                           "face_bytes": self.face_bytes},
            "problems": self.problems, "notes": self.notes, "apdus": self.apdus,
            "bytes_received": self.bytes_received, "seconds": self.seconds,
        }


def verify_card(channel: CardChannel, csca_der: bytes | None,
                biometric_master: KeyDiversifier | None = None,
                expected_fingers: list[bytes] | None = None, *,
                crl_der: bytes | None = None,
                at: dt.datetime | None = None,
                access: BacKey | CanKey | None = None,
                require_active_authentication: bool = True,
                inspection: eac.InspectionSystem | None = None) -> VerificationReport:
    """Read and check the card on ``channel``; problems are reported, not raised.

    ``access`` is the BAC key from the holder's MRZ or the card's CAN for PACE (without it a
    locked card answers 6982).
    A card without DG15 is a problem unless ``require_active_authentication`` is False.
    The document signer is checked by the chain model at the SOD's signing time, and against
    the CSCA's CRL when ``crl_der`` is given; ``at`` is the verifier's clock (default now).
    ``inspection`` (IS certificate chain and key) lets us pass Terminal Authentication and read
    an EAC-protected DG3; without it such a DG3 is reported withheld (its hash unchecked).

    Raises :class:`~chip.errors.ChipError` only when the card cannot be read at all.
    """
    started = time.perf_counter()
    t = Transport(channel)
    facts = card_facts(t, channel.atr)
    report = VerificationReport(channel.reader_name, facts.uid.hex().upper(),
                                channel.atr.hex().upper(), facts.state is CardState.LOCKED,
                                facts.state)
    files: dict[int, bytes] = {}
    secure = False
    pace_id: bytes | None = None  # TA's ID_PICC after PACE (Comp of the chip's PACE key)
    if access is not None:
        protocol = "PACE" if isinstance(access, CanKey) else "BAC"
        try:
            if isinstance(access, CanKey):
                pace_id = eac.id_picc_pace(perform_pace_can(t, access))
            else:
                perform_bac(t, access)
        except (SecureChannelError, StatusWordError) as exc:
            report.problems.append(f"{protocol} failed (wrong key or not our card): {exc}")
            report.seconds = round(time.perf_counter() - started, 6)
            return report
        report.access_control, secure = protocol, True
    try:
        com = read_ef(t, Ef.COM, facts, secure=secure)
        report.raw_files["EF.COM"] = com
        sod_raw = read_ef(t, Ef.SOD, facts, secure=secure)
        report.raw_files["EF.SOD"] = sod_raw
    except FileMissingError as exc:
        report.problems.append(f"card is not personalized: {exc}")
        report.seconds = round(time.perf_counter() - started, 6)
        return report
    except StatusWordError as exc:
        report.problems.append(f"card refuses to be read: {exc}")
        report.seconds = round(time.perf_counter() - started, 6)
        return report
    try:
        sod = parse_sod(sod_raw)
    except VerificationError as exc:
        report.problems.append(str(exc))
        return report
    listed = {tag for tag in parse_ef_com(com)}
    ca: eac.ChipAuthenticationResult | None = None
    # DG14 first (Chip Authentication), DG1 next (TA signs the document number), DG3 last.
    order = sorted(sod.dg_hashes, key=lambda n: (n != 14, n != 1, n == 3, n))
    for n in order:
        ef = _BY_DG.get(n)
        if ef is None:
            report.problems.append(f"SOD lists DG{n}, which we do not know")
            continue
        if ef.value.tag not in listed:
            report.problems.append(f"DG{n} is in EF.SOD but not in EF.COM")
        if n == 3 and ca is not None and inspection is not None:
            _terminal_authentication(t, facts, report, inspection, ca, files.get(1, b""),
                                     pace_id)
        try:
            files[n] = read_ef(t, ef, facts, secure=secure)
            report.raw_files[ef.value.name] = files[n]
        except FileMissingError:
            report.problems.append(f"DG{n} listed in EF.SOD is missing")
        except SecurityStatusError:
            if n != 3:
                raise
            report.dg3_withheld = True
        if n == 14 and 14 in files and secure:
            ca = _chip_authentication(t, facts, report, files[14])
            if report.chip_authentication is False and t.session is None:  # nothing to read
                report.seconds = round(time.perf_counter() - started, 6)
                return report
    report.files = {name: len(raw) for name, raw in report.raw_files.items()}
    pa = passive_authentication(sod, files, csca_der, at, crl_der)
    report.signature_valid, report.chain_valid = pa.signature_valid, pa.chain_valid
    report.dg_hashes_valid, report.signer_subject = pa.dg_hashes_valid, pa.signer_subject
    if report.dg3_withheld:
        report.dg_hashes_valid.pop(3, None)
        if report.terminal_authentication is True:
            report.problems.append("the chip refuses DG3 after Terminal Authentication: our "
                                   "certificate chain does not grant read-DG3 (CHAT)")
        elif report.terminal_authentication is None:
            report.notes.append("DG3 not read: the chip shows it only after EAC Terminal "
                                "Authentication (no inspection-system certificate given)")
    if pa.chain is not None:
        report.problems += pa.chain.problems
        report.notes += pa.chain.notes
        report.revocation_checked = pa.chain.revocation_checked
        if pa.chain.signing_time is not None:
            report.signing_time = pa.chain.signing_time.isoformat()
    if csca_der is not None and crl_der is None:
        report.notes.append("no CRL given: revocation not checked")
    if csca_der is None:
        report.problems.append("no CSCA certificate given: chain not checked")
    if 1 in files:
        try:
            report.mrz = parse_dg1(files[1])
            report.document_number = document_number_from_mrz(report.mrz)
            allowed = document_types(load_der_x509_certificate(sod.signer_certificate_der))
            code = report.mrz[:2].rstrip("<")
            if allowed and code not in allowed:
                report.problems.append(f"the document signer may sign {allowed}, not a "
                                       f"document of type {code!r}")
        except (ValueError, UnicodeDecodeError) as exc:
            report.problems.append(f"DG1 unreadable: {exc}")
    if 2 in files:
        try:
            _, items = biometric_instances(files[2], 0x75)[0]
            report.face_bytes = len(face_image(items.get(0x5F2E, b"")))
        except (ValueError, IndexError) as exc:
            report.problems.append(f"DG2 unreadable: {exc}")
    if biometric_master is not None and 3 in files:
        report.biometrics_checked = True
        try:
            fingers = biometrics.decrypt_dg3(files[3], biometric_master,
                                             facts.card_identity or facts.uid,
                                             report.document_number)
            report.fingers_decrypted = len(fingers)
            well_formed = all(f.fmr.startswith(b"FMR\x00") for f in fingers)
            matches = expected_fingers is None or sorted(f.fmr for f in fingers) == sorted(
                expected_fingers)
            report.biometrics_ok = well_formed and matches
            if not report.biometrics_ok:
                report.problems.append("decrypted fingerprints do not match")
        except VerificationError as exc:
            report.biometrics_ok = False
            report.problems.append(str(exc))
    if 15 in files and report.dg_hashes_valid.get(15):
        try:
            algorithm = (activeauth.dg14_signature_algorithm(files[14]) if 14 in files
                         else None)
            if algorithm not in (None, activeauth.OID_ECDSA_PLAIN_SHA256):
                raise VerificationError(f"DG14 names AA algorithm {algorithm}, not ours")
            problem = activeauth.check(t, files[15])
        except (ChipError, ValueError) as exc:
            problem = f"Active Authentication failed: {exc}"
        report.active_authentication = problem is None
        if problem:
            report.problems.append(problem)
    elif require_active_authentication:
        report.problems.append("no Active Authentication (DG15 missing or not covered by EF.SOD)")
    if not report.locked:
        report.problems.append("card is not locked")
    report.apdus = t.stats.apdus
    report.bytes_received = t.stats.bytes_received
    report.seconds = round(time.perf_counter() - started, 6)
    return report


def _chip_authentication(t: Transport, facts: CardFacts, report: VerificationReport,
                         dg14_raw: bytes) -> eac.ChipAuthenticationResult | None:
    """CA with DG14's key, then one read under the new keys (a clone fails here)."""
    try:
        ca_public = eac.ca_public_key(dg14_raw)
    except ValueError as exc:
        report.problems.append(f"DG14 unreadable: {exc}")
        return None
    if ca_public is None:
        return None
    try:
        result = eac.chip_authentication(t, ca_public)
        read_ef(t, Ef.COM, facts, secure=True)
    except ChipError as exc:
        report.chip_authentication = False
        report.problems.append(f"Chip Authentication failed (the chip lacks DG14's private "
                               f"key: a clone?): {exc}")
        return None
    report.chip_authentication = True
    return result


def _terminal_authentication(t: Transport, facts: CardFacts, report: VerificationReport,
                             inspection: eac.InspectionSystem,
                             ca: eac.ChipAuthenticationResult, dg1_raw: bytes,
                             pace_id: bytes | None) -> None:
    """TA bound to this session's access: Comp(~PK_PICC) after PACE, the document number
    from DG1 after BAC."""
    try:
        refs = eac.parse_ef_cvca(read_ef(t, Ef.CVCA, facts, secure=True))
        id_picc = pace_id if pace_id is not None else eac.id_picc(parse_dg1(dg1_raw))
        eac.terminal_authentication(t, inspection, refs, ca, id_picc, facts=facts)
    except (ChipError, ValueError) as exc:
        report.terminal_authentication = False
        report.problems.append(f"Terminal Authentication failed: {exc}")
        return
    report.terminal_authentication = True


def verify_reader(reader: str, csca_der: bytes | None,
                  biometric_master: KeyDiversifier | None = None, *,
                  crl_der: bytes | None = None,
                  at: dt.datetime | None = None,
                  access: BacKey | CanKey | None = None,
                  require_active_authentication: bool = True,
                  inspection: eac.InspectionSystem | None = None) -> VerificationReport:
    """:func:`verify_card` on PC/SC reader ``reader``."""
    from chip.pcsc import PcscChannel

    channel = PcscChannel(reader, exclusive=False)
    try:
        return verify_card(channel, csca_der, biometric_master, crl_der=crl_der, at=at,
                           access=access,
                           require_active_authentication=require_active_authentication,
                           inspection=inspection)
    finally:
        channel.close()


def sod_content_info(raw_sod: bytes) -> bytes:
    """The DER ContentInfo inside EF.SOD (strip tag 77), e.g. for ``openssl cms -verify``."""
    return unwrap(raw_sod, 0x77)

