"""The claims cell of every chapter: state a claim, check it in code, fail loudly.

Each check prints one stable line (``PASS: claim``) that nbval compares between the committed
``book`` run and the ``ci`` re-run; the measured figures go into the error only, because they
differ between profiles.
"""

from __future__ import annotations


class ClaimFailed(AssertionError):
    """A chapter's claim does not hold on the runs it was checked on."""


def check(claim: str, holds: bool, figures: object = "") -> None:
    """Print ``PASS: claim``, or print ``FAIL: claim`` and raise :class:`ClaimFailed` with the
    measured ``figures`` when it does not hold."""
    print(f"{'PASS' if holds else 'FAIL'}: {claim}")
    if not holds:
        raise ClaimFailed(f"claim does not hold: {claim} (measured: {figures})")
