"""What lets scripts/train_meta.py ship a few-shot head: a validation win larger than chance."""

from __future__ import annotations

import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def train_meta():
    return load_script("train_meta")


def figures(eer: float, tar_1e2: float, tar_1e3: float, genuine: int = 64) -> dict:
    return {"eer": eer, "tar_at_far_1e_2": tar_1e2, "tar_at_far_1e_3": tar_1e3, "genuine": genuine}


def test_a_head_one_genuine_trial_ahead_does_not_ship(train_meta):
    backbone = figures(0.015625, 63 / 64, 63 / 64)
    assert not train_meta.beats_backbone(figures(0.0005, 1.0, 1.0), backbone)  # the voice run of session 9


def test_a_head_well_ahead_on_every_figure_ships_and_one_behind_anywhere_does_not(train_meta):
    def head(eer: float, tar_1e2: float, more_accepted: int) -> dict:
        return figures(eer, tar_1e2, 0.80 + more_accepted / 200, genuine=200)

    backbone = figures(0.05, 0.90, 0.80, genuine=200)
    gain = train_meta.MIN_GENUINE_GAIN
    assert train_meta.beats_backbone(head(0.03, 0.92, gain), backbone)
    assert not train_meta.beats_backbone(head(0.03, 0.92, gain - 1), backbone)
    assert not train_meta.beats_backbone(head(0.03, 0.89, 20), backbone)  # lower TAR at FAR 1 %
    assert not train_meta.beats_backbone(head(0.05, 0.92, 20), backbone)  # EER not lower
