"""Fixtures for the chip library: demo PKI and keys, sample holder, simulated cards, and the
real PC/SC stack (pcscd + vpcd + simulator processes) for ``realstack`` tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from chip.lds import HolderData
from chip.personalization import PersonalizationKeys
from chip.samples import sample_holder
from chip.simulator.card import CardConfig, Faults, SimulatedCard, default_uid
from chip.softkeys import (
    DEMO_BIOMETRIC_MASTER_HEX,
    DEMO_SCP03_MASTER_HEX,
    DemoPki,
    SoftKeyDiversifier,
    make_demo_pki,
)


@pytest.fixture(scope="session")
def pki() -> DemoPki:
    return make_demo_pki()


@pytest.fixture(scope="session")
def scp03_master() -> SoftKeyDiversifier:
    return SoftKeyDiversifier.from_hex(DEMO_SCP03_MASTER_HEX)


@pytest.fixture(scope="session")
def bio_master() -> SoftKeyDiversifier:
    return SoftKeyDiversifier.from_hex(DEMO_BIOMETRIC_MASTER_HEX)


@pytest.fixture(scope="session")
def keys(pki: DemoPki, scp03_master: SoftKeyDiversifier,
         bio_master: SoftKeyDiversifier) -> PersonalizationKeys:
    return PersonalizationKeys(pki.signer, scp03_master, bio_master)


@pytest.fixture(scope="session")
def holder() -> HolderData:
    return sample_holder()


CardFactory = Callable[..., SimulatedCard]


@pytest.fixture
def make_card(scp03_master: SoftKeyDiversifier) -> CardFactory:
    """Build an in-memory card: ``make_card(capacity=..., faults=Faults(...))``."""

    def factory(faults: Faults | None = None, **config: object) -> SimulatedCard:
        cfg = CardConfig(uid=default_uid("unit"), scp03_master=scp03_master)
        for name, value in config.items():
            setattr(cfg, name, value)
        return SimulatedCard(cfg, faults)

    return factory


@pytest.fixture(scope="module")
def pcsc_stack() -> Iterator[object]:
    """pcscd + two simulator processes on vpcd for one test module. Module scope, so the
    machine-wide stack lock is released as soon as the module is done (other suites in the
    same pytest session start their own stacks)."""
    from printsrv.devstack.pcsc import PcscStack, missing_tools

    missing = missing_tools()
    if missing:
        pytest.fail(f"real-stack packages missing: {', '.join(missing)}")
    with PcscStack(sim_args=[[], []]) as stack:
        yield stack
