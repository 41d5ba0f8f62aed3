"""The printer port moves a blank to the encoder as the profile's ``[encoder]`` says: through
a real cupsd + ippeveprinter queue, a vendor-command profile's ``to_encoder`` goes out as a raw
job whose document is the command; a cardsim profile sends nothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from printers.api import encoder_command
from printers.errors import PrinterUnavailableError
from printers.profiles import get_profile


def test_the_command_bytes_follow_the_profile() -> None:
    assert encoder_command(get_profile("evolis-primacy-2"), "p") == b"\x1bSic\r"
    assert encoder_command(get_profile("evolis-primacy-2"), "p", "reject") == b"\x1bSer\r"
    assert encoder_command(get_profile("evolis-primacy-2"), "p", "eject") == b"\x1bSe\r"
    assert encoder_command(get_profile("magicard-enduro"), "p", "reject") is None
    assert encoder_command(get_profile("virtual-ipp-card"), "p") is None
    with pytest.raises(PrinterUnavailableError, match="SDK"):
        encoder_command(get_profile("zebra-zxp3"), "p")


@pytest.mark.realstack
def test_a_vendor_command_goes_through_cups_as_a_raw_job(cups_stack: Any) -> None:
    import cups as pycups

    virtual = get_profile("virtual-ipp-card")
    evolis_encoder = get_profile("evolis-primacy-2").encoder
    profile = dataclasses.replace(virtual, encoder=evolis_encoder)
    printer = cups_stack.open_printer("Card1", profile=profile, timeout=30)
    conn = pycups.Connection(host=cups_stack.server)
    before = set(conn.getJobs(which_jobs="all"))
    cups_stack.open_printer("Card1", timeout=30).feed_to_encoder()  # cardsim: nothing sent
    assert set(conn.getJobs(which_jobs="all")) == before
    printer.feed_to_encoder()
    jobs = conn.getJobs(which_jobs="all", requested_attributes=["job-name", "job-id"])
    new = [job_id for job_id in jobs if job_id not in before]
    assert [jobs[j]["job-name"] for j in new] == ["encoder-to_encoder"]
    attrs = conn.getJobAttributes(new[0])
    assert attrs.get("document-format-supplied", attrs.get("document-format")) in (
        "application/vnd.cups-raw", "application/octet-stream", None)
