"""Fixtures for the web app: two regencies each with a kecamatan, a user of every role in
each, records in both kecamatan offices, and a signed-in test client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import Batch, Office, OfficeKind, Record, RecordState, Role, User

PASSWORD = "correct horse battery"


@dataclass
class World:
    offices: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)


def _record(session: Any, batch: Batch, office: Office, n: int, state: RecordState) -> Record:
    rec = Record(
        request_id=f"PC-{office.code.replace('.', '')}-{n:06d}",
        batch_id=batch.id,
        line_no=n,
        nik=f"3526014508{n:06d}",
        nama=f"WARGA {office.code} {n}",
        card_type="KTP-EL",
        office_id=office.id,
        state=state,
        hold_reason="NIK tanggal lahir tidak cocok" if state is RecordState.HELD else None,
        data={},
    )
    session.add(rec)
    session.flush()
    return rec


@pytest.fixture
def world(settings: Settings) -> World:
    """Regency 35.26 with kecamatan 35.26.01 ("own"); regency 35.27 with 35.27.01 ("other")."""
    from printsrv.web.auth_service import hash_password

    w = World()
    pw = hash_password(PASSWORD)
    with unit_of_work(settings) as s:
        reg_a = Office(code="35.26", name="DISDUKCAPIL BANGKALAN", kind=OfficeKind.REGENCY)
        reg_b = Office(code="35.27", name="DISDUKCAPIL SAMPANG", kind=OfficeKind.REGENCY)
        s.add_all([reg_a, reg_b])
        s.flush()
        kec_a = Office(
            code="35.26.01", name="KECAMATAN A", kind=OfficeKind.KECAMATAN, parent_id=reg_a.id
        )
        kec_b = Office(
            code="35.27.01", name="KECAMATAN B", kind=OfficeKind.KECAMATAN, parent_id=reg_b.id
        )
        s.add_all([kec_a, kec_b])
        s.flush()
        w.offices = {"reg_a": reg_a.id, "reg_b": reg_b.id, "own": kec_a.id, "other": kec_b.id}
        for office_key, office in (("own", kec_a), ("other", kec_b), ("reg", reg_a)):
            for role in Role:
                name = f"{role.value}_{office_key}"
                u = User(
                    username=name, role=role, office_id=office.id, password_hash=pw,
                    failed_logins=0, active=True,
                )
                s.add(u)
                s.flush()
                w.users[name] = u.id
        batch = Batch(
            batch_id="TEST-1", issuer="TEST", created_at=datetime.now(UTC), record_count=8,
            manifest_sha256="0" * 64, signer="test",
        )
        s.add(batch)
        s.flush()
        for key, office, base in (("own", kec_a, 1), ("other", kec_b, 100)):
            for i, state in enumerate(
                (RecordState.QUEUED, RecordState.HELD, RecordState.ISSUED, RecordState.FAILED)
            ):
                rec = _record(s, batch, office, base + i, state)
                w.records[f"{key}_{state.value}"] = rec.id
    return w


@pytest.fixture
def app(settings: Settings) -> Flask:
    from printsrv.web import create_app

    return create_app(settings, {"TESTING": True, "SESSION_COOKIE_SECURE": False})


@pytest.fixture
def app_nocsrf(settings: Settings) -> Flask:
    from printsrv.web import create_app

    return create_app(
        settings,
        {"TESTING": True, "SESSION_COOKIE_SECURE": False, "WTF_CSRF_ENABLED": False},
    )


def sign_in(client: FlaskClient, settings: Settings, username: str) -> None:
    """Put a fully signed-in session for ``username`` into the client's cookie."""
    from printsrv.web.auth_service import complete_login

    with unit_of_work(settings) as s:
        user = s.query(User).filter_by(username=username).one()
        token = complete_login(s, user)
    with client.session_transaction() as sess:
        sess.update({"stage": "full", "sid": token})


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c
