"""Identity splits and samplers: shapes, seeds, and no identity leaking across splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verify.errors import ConfigError
from training.episodes import SPLITS_FILE, EpisodeSampler, sample_pairs, split_identities
from training.features import FeatureSet


def make_features(people: int = 12, per_person: int = 4, dim: int = 6, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(people * per_person, dim)).astype(np.float32)
    identities = np.repeat([f"p{i:02d}" for i in range(people)], per_person)
    return FeatureSet(vectors, identities, [f"{name}/{i}.jpg" for i, name in enumerate(identities)])


@pytest.mark.parametrize("dataset", ["lfw_gray", "librispeech", "fsdd", "orl_att"])
def test_splits_are_disjoint_and_test_is_the_evaluation_half(dataset):
    split = split_identities(dataset, seed=0)
    train, validation, test = map(set, (split.train, split.validation, split.test))
    assert not train & validation and not train & test and not validation & test
    halves = json.loads(SPLITS_FILE.read_text())[dataset]
    if halves["calibration"]:
        assert test == set(halves["evaluation"])
        assert train | validation == set(halves["calibration"])
        assert len(train) == round(0.8 * len(halves["calibration"]))
    else:
        assert (len(train), len(validation), len(test)) == (25, 5, 10)
        assert train | validation | test == set(halves["evaluation"])


def test_split_is_seeded():
    assert split_identities("lfw_gray", 3) == split_identities("lfw_gray", 3)
    assert split_identities("lfw_gray", 3).train != split_identities("lfw_gray", 4).train
    with pytest.raises(ConfigError, match="not in"):
        split_identities("imagenet")


def test_episode_shapes_and_labels():
    features = make_features()
    episode = EpisodeSampler(features, [f"p{i:02d}" for i in range(12)], n_way=5, k_shot=2, n_query=2, seed=0).sample()
    assert episode.support.shape == (10, 6) and episode.query.shape == (10, 6)
    assert episode.support_labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert episode.query_labels.tolist() == episode.support_labels.tolist()
    for label, name in enumerate(episode.identities):
        rows = np.concatenate([episode.support_indices[episode.support_labels == label],
                               episode.query_indices[episode.query_labels == label]])
        assert set(features.identities[rows]) == {name}
    assert not set(episode.support_indices) & set(episode.query_indices)
    assert np.array_equal(episode.support, features.vectors[episode.support_indices])


def test_episodes_are_reproducible_with_a_seed():
    features, people = make_features(), [f"p{i:02d}" for i in range(12)]
    first = [EpisodeSampler(features, people, 3, 1, 1, seed=7).sample() for _ in range(1)][0]
    again = EpisodeSampler(features, people, 3, 1, 1, seed=7).sample()
    other = EpisodeSampler(features, people, 3, 1, 1, seed=8)
    assert np.array_equal(first.support_indices, again.support_indices)
    assert np.array_equal(first.query_indices, again.query_indices)
    assert any(not np.array_equal(first.support_indices, other.sample().support_indices) for _ in range(5))


def test_episodes_draw_only_from_the_given_identities():
    features = make_features()
    allowed = ["p00", "p03", "p05", "p07", "p11"]
    sampler = EpisodeSampler(features, allowed, n_way=3, k_shot=1, n_query=2, seed=1)
    seen = set()
    for _ in range(200):
        episode = sampler.sample()
        seen |= set(features.identities[episode.support_indices]) | set(features.identities[episode.query_indices])
    assert seen == set(allowed)


def test_identities_with_too_few_samples_are_never_drawn_and_too_few_ways_raise():
    features = make_features(people=6, per_person=3)
    sampler = EpisodeSampler(features, ["p00", "p01", "p02"], n_way=2, k_shot=2, n_query=1, seed=0)
    assert sampler.names == ["p00", "p01", "p02"]
    with pytest.raises(ConfigError, match="need 5 identities"):
        EpisodeSampler(features, ["p00", "p01", "p02"], n_way=5, k_shot=1, n_query=1, seed=0)
    with pytest.raises(ConfigError, match=">= 4 samples"):
        EpisodeSampler(features, ["p00", "p01"], n_way=2, k_shot=2, n_query=2, seed=0)
    with pytest.raises(ConfigError, match="n_way >= 2"):
        EpisodeSampler(features, ["p00", "p01"], n_way=1, k_shot=1, n_query=1, seed=0)


def test_pairs_are_half_genuine_labelled_right_and_within_identities():
    features = make_features()
    allowed = ["p01", "p02", "p04", "p09"]
    a, b, same = sample_pairs(features, allowed, 101, seed=0)
    assert len(a) == len(b) == len(same) == 101 and same.sum() == 50
    assert np.array_equal(features.identities[a] == features.identities[b], same)
    assert np.all(a != b)
    assert set(features.identities[a]) | set(features.identities[b]) <= set(allowed)
    again = sample_pairs(features, allowed, 101, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip((a, b, same), again))


def test_pairs_need_a_repeated_identity():
    features = make_features(people=3, per_person=1)
    with pytest.raises(ConfigError, match="pairs need"):
        sample_pairs(features, ["p00", "p01", "p02"], 10, seed=0)
    with pytest.raises(ConfigError, match="at least 2"):
        sample_pairs(features, ["p00"], 1, seed=0)
