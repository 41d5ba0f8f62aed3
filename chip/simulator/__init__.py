"""The reference card: a card-side implementation of our personalization profile.

:mod:`chip.simulator.card` is the card (file system, life cycle, SCP03, faults),
:mod:`chip.simulator.vpcd` connects it to vsmartcard's vpcd so pcscd sees a real reader.
"""

from __future__ import annotations
