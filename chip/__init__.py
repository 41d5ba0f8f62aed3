"""Contactless chip personalization: ICAO LDS1 data groups, EF.SOD, SCP03, PC/SC.

A standalone library: it never imports :mod:`printsrv`. The entry points are
:func:`chip.personalization.personalize`, :func:`chip.verification.verify_card` and
:func:`chip.personalization.probe_card_state`.
"""

from __future__ import annotations
