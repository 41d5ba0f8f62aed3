"""Fixtures for the record, NIK, region and media checks: a fixed intake date and valid records."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.validation.validation_data import TODAY, first


@pytest.fixture
def today() -> date:
    return TODAY


@pytest.fixture
def ktp() -> dict[str, Any]:
    """A valid KTP-EL record of a WNI adult."""
    return first("KTP-EL")


@pytest.fixture
def wna() -> dict[str, Any]:
    return first("KTP-EL", "WNA")


@pytest.fixture
def kia() -> dict[str, Any]:
    """A valid KIA record of a child aged 5 or more (with photo)."""
    return first("KIA", photo=True)


@pytest.fixture
def kia_small() -> dict[str, Any]:
    """A valid KIA record of a child under 5 (no photo)."""
    return first("KIA", photo=False)
