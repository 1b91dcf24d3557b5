"""The claims cell of every chapter: state a claim, check it in code, fail loudly.

Each check prints one stable line (``PASS: claim``, wrapped to the book's text column) that
nbval compares between the committed ``book`` run and the ``ci`` re-run; the measured figures
go into the error only, because they differ between profiles.
"""

from __future__ import annotations

import json
import os
import textwrap

WIDTH = 88  # characters of the code font that fit the book's column


class ClaimFailed(AssertionError):
    """A chapter's claim does not hold on the runs it was checked on."""


def check(claim: str, holds: bool, figures: object = "") -> None:
    """Print ``PASS: claim`` (wrapped to the book's column, continued lines indented), or
    print ``FAIL: claim`` and raise :class:`ClaimFailed` with the measured ``figures`` when it
    does not hold. With ``GROKBOOK_CLAIMS_LOG=FILE`` set, each
    claim and its figures are also appended to FILE as one JSON line (for reports)."""
    print(textwrap.fill(f"{'PASS' if holds else 'FAIL'}: {claim}", width=WIDTH,
                        subsequent_indent=" " * 6, break_on_hyphens=False))
    log = os.environ.get("GROKBOOK_CLAIMS_LOG")
    if log:
        with open(log, "a") as file:
            file.write(json.dumps({"claim": claim, "holds": bool(holds),
                                   "figures": str(figures)}) + "\n")
    if not holds:
        raise ClaimFailed(f"claim does not hold: {claim} (measured: {figures})")
