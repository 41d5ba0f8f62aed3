"""SMS gateways: one small class each, chosen by name (``sms.backend``) from :data:`GATEWAYS`.

A gateway hands one message over and says whether it was accepted, and if not whether trying
again later may help. It never raises for a refused or unreachable send. Adding an HTTP
provider's API is one class here and one line in :data:`GATEWAYS`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from printsrv.config import Settings
from printsrv.notify.rules import SmsSettings


@dataclass(frozen=True)
class Handover:
    """What the gateway said: ``accepted``; if not, whether a later try may succeed."""

    accepted: bool
    retryable: bool
    reply: str


class SmsGateway(Protocol):
    name: str

    def send(self, message_id: str, phone: str, text: str) -> Handover: ...


def report_signature(key: bytes, message_id: str) -> str:
    """The token in a delivery-report URL: only the gateway we gave it to can report on it."""
    return hmac.new(key, message_id.encode(), hashlib.sha256).hexdigest()[:32]


def report_key(settings: Settings) -> bytes:
    """The key of delivery-report URLs, made on first use in the instance's key folder."""
    path = settings.keys_dir / "sms-report.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(os.urandom(32).hex())
    return bytes.fromhex(path.read_text().strip())


class KannelGateway:
    """Kannel's smsbox ``sendsms`` HTTP interface, asking for every delivery report
    (``dlr-mask`` 31) at our callback with the message id and its signature."""

    name = "kannel"
    #: Kannel's report types (dlr-mask bits) as our words.
    REPORTS: ClassVar[dict[int, str]] = {
        1: "delivered", 2: "undeliverable", 4: "buffered", 8: "smsc-accepted",
        16: "smsc-rejected",
    }  # fmt: skip

    def __init__(self, sms: SmsSettings, key: bytes) -> None:
        self.sms = sms
        self.key = key

    def url_for(self, message_id: str, phone: str, text: str) -> str:
        params = {
            "username": self.sms.username,
            "password": self.sms.password,
            "from": self.sms.sender,
            "to": phone,
            "text": text,
            "charset": "UTF-8",
            "coding": "0",
        }
        if self.sms.callback_url:
            query = urllib.parse.urlencode(
                {"m": message_id, "sig": report_signature(self.key, message_id)}
            )
            sep = "&" if "?" in self.sms.callback_url else "?"
            # %d (report type) and %T (time) are filled in by Kannel.
            params["dlr-url"] = f"{self.sms.callback_url}{sep}{query}&s=%d&t=%T"
            params["dlr-mask"] = "31"
        return f"{self.sms.url}?{urllib.parse.urlencode(params)}"

    def send(self, message_id: str, phone: str, text: str) -> Handover:
        try:
            with urllib.request.urlopen(
                self.url_for(message_id, phone, text), timeout=self.sms.timeout_seconds
            ) as resp:
                body = resp.read(500).decode(errors="replace").strip()
                return Handover(True, False, body)  # 0: Accepted / 3: Queued for later delivery
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read(500).decode(errors="replace").strip()
            # 4xx: our request is wrong (credentials, number); 5xx: the gateway's trouble.
            return Handover(False, exc.code >= 500 or exc.code == 429, f"{exc.code} {body}")
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return Handover(False, True, f"gateway unreachable: {exc}")


class FileGateway:
    """Appends each message to a file (the demo, and offices without a gateway yet): one line
    ``message_id<TAB>phone<TAB>text``. A message id already in the file is not written again."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message_id: str, phone: str, text: str) -> Handover:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and any(
            line.split("\t", 1)[0] == message_id for line in self.path.read_text().splitlines()
        ):
            return Handover(True, False, "already written")
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{message_id}\t{phone}\t{text}\n")
            fh.flush()
            os.fsync(fh.fileno())
        return Handover(True, False, f"written to {self.path}")


#: Every gateway by its ``sms.backend`` name.
GATEWAYS: dict[str, Callable[[Settings, SmsSettings], SmsGateway]] = {
    "kannel": lambda settings, sms: KannelGateway(sms, report_key(settings)),
    "file": lambda settings, sms: FileGateway(sms.outgoing_file(settings)),
}


def gateway_for(settings: Settings, sms: SmsSettings) -> SmsGateway:
    """The configured gateway."""
    return GATEWAYS[sms.backend](settings, sms)
