"""AND-rule fusion of face and voice decisions."""

from __future__ import annotations

import pytest

from verify.errors import ConfigError
from verify.fusion import fuse_and
from verify.scoring import Decision

ACCEPT = Decision("accepted", 0.70, 0.36)
RETRY = Decision("retry", 0.30, 0.36, "borderline score, try another sample")
REJECT = Decision("rejected", 0.10, 0.87, "score below threshold")


def test_both_accept_is_accepted_with_the_smaller_margin():
    fused = fuse_and({"face": ACCEPT, "voice": Decision("accepted", 0.90, 0.87)})
    assert fused.accepted and fused.reason == ""
    assert fused.margin == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("face", "voice", "outcome", "reason"),
    [
        (ACCEPT, REJECT, "rejected", "voice rejected"),
        (REJECT, ACCEPT, "rejected", "face rejected"),
        (RETRY, REJECT, "rejected", "voice rejected"),
        (ACCEPT, RETRY, "retry", "voice needs another sample"),
        (RETRY, RETRY, "retry", "face and voice need"[:8]),
    ],
)
def test_any_failure_blocks_acceptance(face, voice, outcome, reason):
    fused = fuse_and({"face": face, "voice": voice})
    assert fused.outcome == outcome and not fused.accepted
    assert fused.reason.startswith(reason)
    assert fused.margin < 0


def test_single_modality_passes_through():
    assert fuse_and({"face": REJECT}).outcome == "rejected"


def test_empty_is_refused():
    with pytest.raises(ConfigError, match="at least one modality"):
        fuse_and({})
