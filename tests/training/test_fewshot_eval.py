"""Few-shot figures: pairs files mapped to feature rows, all-pairs trials, episode accuracy and CI."""

from __future__ import annotations

import numpy as np
import pytest

from training.features import FeatureSet
from training.fewshot_eval import (
    all_pairs, cosine_pair_scores, episode_accuracy, nearest_prototype_scores, pairs_file_rows, score_rows)


def orthogonal_people() -> FeatureSet:
    vectors = np.repeat(np.eye(4, dtype=np.float32), 3, axis=0)
    names = np.repeat(["a", "b", "c", "d"], 3)
    return FeatureSet(vectors, names, [f"set/{n}/{i}.jpg" for i, n in enumerate(names)])


def test_all_pairs_counts_and_labels():
    a, b, same = all_pairs(orthogonal_people(), ["a", "b"])
    assert len(a) == 15 and same.sum() == 6  # 6 rows -> 15 pairs, 2 people x 3 genuine
    assert np.all(a < b)


def test_pairs_file_rows_marks_missing_files_and_scores_them_minus_inf(tmp_path):
    features = orthogonal_people()
    (tmp_path / "p.csv").write_text("enroll_path,probe_path,same\nset/a/0.jpg,set/a/1.jpg,1\n"
                                    "set/a/0.jpg,set/x/9.jpg,0\nset/b/3.jpg,set/c/6.jpg,0\n")
    a, b, same = pairs_file_rows(features, tmp_path / "p.csv")
    assert a.tolist() == [0, 0, 3] and b.tolist() == [1, -1, 6] and same.tolist() == [True, False, False]
    assert score_rows(features.vectors, a, b, cosine_pair_scores).tolist() == [1.0, -np.inf, 0.0]


def test_episode_accuracy_is_perfect_on_separate_people_and_chance_on_random_scores():
    features = orthogonal_people()
    perfect = episode_accuracy(features, ["a", "b", "c", "d"], nearest_prototype_scores, episodes=20, n_way=4)
    assert perfect["accuracy"] == 1.0 and perfect["ci95"] == 0.0
    rng = np.random.default_rng(0)
    chance = episode_accuracy(features, ["a", "b", "c", "d"], lambda s, l, q, n: rng.random((len(q), n)),
                              episodes=400, n_way=4)
    assert chance["accuracy"] == pytest.approx(0.25, abs=0.06) and chance["ci95"] > 0
