"""Static-image check over consecutive accepted webcam frames."""

from __future__ import annotations

import numpy as np
import pytest

from verify.errors import ConfigError
from verify.liveness import LivenessCheck, LivenessConfig, max_pairwise_distance


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_max_pairwise_distance_by_hand():
    # 0 deg, 60 deg, 90 deg: the widest pair is orthogonal, distance 1 - cos 90 = 1.
    vectors = np.array([[1, 0], [0.5, np.sqrt(3) / 2], [0, 1]])
    assert max_pairwise_distance(vectors) == pytest.approx(1.0)
    assert max_pairwise_distance(vectors[:2]) == pytest.approx(0.5)


def test_identical_frames_are_static():
    check = LivenessCheck(LivenessConfig(frames=3, min_variation=1e-3))
    vector = _unit(np.arange(1, 9))
    states = [check.update(vector, True).state for _ in range(3)]
    assert states == ["collecting", "collecting", "static"]
    assert "static image" in check.update(vector, True).message


def test_naturally_varying_frames_are_live():
    rng = np.random.default_rng(0)
    base = rng.normal(size=256)
    check = LivenessCheck(LivenessConfig(frames=4, min_variation=1e-3))
    statuses = [check.update(_unit(base + rng.normal(scale=0.1, size=256)), True) for _ in range(4)]
    assert [s.state for s in statuses] == ["collecting"] * 3 + ["live"]
    assert statuses[-1].variation > 1e-3


def test_a_rejected_frame_restarts_the_window():
    check = LivenessCheck(LivenessConfig(frames=2))
    rng = np.random.default_rng(1)
    check.update(_unit(rng.normal(size=8)), True)
    assert check.update(None, False).frames == 0
    assert check.update(_unit(rng.normal(size=8)), True).state == "collecting"


def test_sliding_window_forgets_old_variation():
    check = LivenessCheck(LivenessConfig(frames=2))
    check.update(_unit([1, 0, 0]), True)
    assert check.update(_unit([0, 1, 0]), True).state == "live"
    assert check.update(_unit([0, 1, 0]), True).state == "static"


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"frames": 1}, "at least 2 frames"), ({"min_variation": -1.0}, "min_variation")]
)
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LivenessConfig(**kwargs)


def test_accepted_frame_without_embedding_is_refused():
    with pytest.raises(ConfigError, match="needs its embedding"):
        LivenessCheck().update(None, True)


def test_dimension_change_is_refused():
    check = LivenessCheck()
    check.update(_unit([1, 0]), True)
    with pytest.raises(ConfigError, match="shape"):
        check.update(_unit([1, 0, 0]), True)
