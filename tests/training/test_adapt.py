"""Per-user adaptation of the verification scorer: adaptation, guard, checkpoints, training, evaluation.

Synthetic embeddings: people are random unit directions in 16 dimensions, samples are those
directions plus noise, renormalised.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from verify.errors import ConfigError, WeightsError
from verify.evaluation import Pair
from training import adapt_eval, adapt_train
from verify.adaptation import (
    Adapter,
    AugmentConfig,
    GuardRecord,
    binary_loss,
    flatten_params,
    initial_params,
    scores,
    unflatten_params,
)
from training.episodes import IdentitySplit
from training.features import FeatureSet

DIM = 16


def synthetic_features(people: int = 40, per_person: int = 4, noise: float = 0.5, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.repeat(centres, per_person, axis=0) + noise * rng.standard_normal((people * per_person, DIM)) / math.sqrt(DIM)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    identities = np.repeat([f"p{i:02d}" for i in range(people)], per_person)
    return FeatureSet(vectors.astype(np.float32), identities, [f"p/{i}.jpg" for i in range(len(identities))])


def make_adapter(step_sizes=0.05, steps: int = 3, seed: int = 0) -> Adapter:
    features = synthetic_features(seed=seed + 1)
    cohort = torch.from_numpy(features.vectors)
    return Adapter(initial_params(DIM, threshold=0.3), step_sizes, steps, cohort[:96], cohort[96:],
                   AugmentConfig(count=8, holdout=3), method="maml", modality="face", model_id="vector",
                   model_version="1")


def test_initial_scorer_is_an_affine_function_of_cosine():
    params = initial_params(DIM, scale=10.0, threshold=0.3)
    features = synthetic_features()
    template, probes = torch.from_numpy(features.vectors[0]), torch.from_numpy(features.vectors[1:6])
    torch.testing.assert_close(scores(params, template, probes), 10.0 * (probes @ template - 0.3))


def test_adaptation_lowers_the_support_loss():
    adapter = make_adapter()
    template = torch.from_numpy(synthetic_features(seed=5).vectors[0])
    positives = template[None]
    before = binary_loss(adapter.init, template, positives, adapter.cohort_fit)
    adapted = adapter._adapt_one(template, torch.empty(0, DIM))
    assert binary_loss(adapted, template, positives, adapter.cohort_fit) < before


def test_guard_keeps_helpful_adaptation_and_records_margins():
    adapter = make_adapter()
    params, records = adapter.adapt_many(synthetic_features(seed=5).vectors[:8])
    assert params.shape == (8, 2 * DIM + 2)
    assert all(isinstance(record, GuardRecord) for record in records)
    assert sum(record.kept for record in records) >= 6
    for row, record in zip(params, records):
        assert record.kept == (record.margin_adapted > record.margin_initial)
        assert record.kept != np.array_equal(row, flatten_params(adapter.init))


def test_guard_falls_back_to_the_prototype_when_adaptation_hurts():
    adapter = make_adapter(step_sizes=-0.5)  # gradient *ascent*: adaptation makes the user worse
    template = synthetic_features(seed=5).vectors[0]
    params, record = adapter.adapt(template)
    assert not record.kept
    assert record.margin_adapted < record.margin_initial
    np.testing.assert_array_equal(params, flatten_params(adapter.init))
    assert GuardRecord.from_json(record.to_json()) == record


def test_adaptation_is_deterministic_and_fast():
    adapter = make_adapter()
    template = synthetic_features(seed=5).vectors[0]
    first, second = adapter.adapt(template)[0], adapter.adapt(template)[0]
    np.testing.assert_array_equal(first, second)
    assert adapt_eval.adapt_milliseconds(adapter, template, repeats=3) < 1000


def test_flat_params_round_trip_and_shape_check():
    params = make_adapter().init
    flat = flatten_params(params)
    assert flat.shape == (2 * DIM + 2,) and flat.dtype == np.float32
    for name, value in unflatten_params(flat, DIM).items():
        torch.testing.assert_close(value, params[name].float())
    with pytest.raises(ConfigError, match=r"shape \(5,\); expected \(34,\)"):
        unflatten_params(np.zeros(5), DIM)


def test_saved_and_loaded_adapter_gives_identical_scores(tmp_path):
    adapter = make_adapter(step_sizes={name: torch.full_like(v, 0.03) for name, v in initial_params(DIM).items()})
    path = adapter.save(tmp_path / "adapt.pt")
    loaded = Adapter.load(path)
    features = synthetic_features(seed=7)
    template, probes = features.vectors[0], features.vectors[1:20]
    params, record = adapter.adapt(template)
    params_loaded, record_loaded = loaded.adapt(template)
    np.testing.assert_array_equal(params, params_loaded)
    assert record == record_loaded
    np.testing.assert_array_equal(adapter.score(params, template, probes), loaded.score(params_loaded, template, probes))


def test_checkpoint_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(WeightsError, match=r"not found; train one with: python -m verify train"):
        Adapter.load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(WeightsError, match=r"bad.pt.*format 'something-else'"):
        Adapter.load(bad)
    with pytest.raises(ConfigError, match="templates have dimension 3; the adapter expects 16"):
        make_adapter().adapt_many(np.ones((2, 3)))
    with pytest.raises(ConfigError, match="augment holdout must be in 1..count-1"):
        AugmentConfig(count=4, holdout=4)


@pytest.fixture
def synthetic_dataset(monkeypatch):
    features = synthetic_features(people=60, per_person=4)
    names = sorted(set(features.identities))
    split = IdentitySplit(tuple(names[:36]), tuple(names[36:48]), tuple(names[48:]))
    for module in (adapt_train, adapt_eval):
        monkeypatch.setattr(module, "load_features", lambda dataset, data_root, **kwargs: features)
        monkeypatch.setattr(module, "split_identities", lambda dataset, seed=0: split)
    return features


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile", "metasgd", "taml"])
def test_train_and_evaluate_every_method_on_synthetic_features(synthetic_dataset, tmp_path, method):
    path = adapt_train.train_adaptation("face", method, tmp_path / "data", tmp_path, meta_steps=4, tasks_per_step=4, validation_every=2,
                                        validation_pairs=2000, cohort_size=40, guard_cohort_size=16)
    assert path == tmp_path / f"adapt-face-{method}.pt"
    adapter = Adapter.load(path)
    assert adapter.method == method and adapter.thresholds is not None
    assert {"validation_eer_adapted", "validation_eer_plain", "beats_plain_on_validation"} <= set(adapter.info)
    result = adapt_eval.evaluate_adaptation("face", method, tmp_path / "data", checkpoint=path, n_pairs=400, episodes=20)
    for key in ("eer", "tar_at_far_1e_2", "acc_5way1shot", "acc_ci95", "adapt_ms_per_user", "episodes"):
        assert key in result
    assert result["episodes"] == 20 and 0.0 <= result["eer"] <= 0.5 and result["acc_5way1shot"] > 0.5


def test_train_rejects_unknown_options(synthetic_dataset, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown training option\(s\) \['inner_stepz'\]"):
        adapt_train.train_adaptation("face", "maml", tmp_path / "data", tmp_path, inner_stepz=3)
    with pytest.raises(ConfigError, match="unknown adaptation method 'sgd'"):
        adapt_train.train_adaptation("face", "sgd", tmp_path / "data", tmp_path)
    with pytest.raises(ConfigError, match="epochs must be >= 1, got 0"):
        adapt_train.train_adaptation("face", "maml", tmp_path / "data", tmp_path, epochs=0)


def test_epochs_count_hundreds_of_meta_steps(synthetic_dataset, tmp_path):
    path = adapt_train.train_adaptation("face", "fomaml", tmp_path / "data", tmp_path, epochs=1, tasks_per_step=2, validation_every=50,
                                        validation_pairs=400, cohort_size=40, guard_cohort_size=16)
    info = Adapter.load(path).info
    assert info["options"]["meta_steps"] == 100 and [h["step"] for h in info["history"]] == [0, 50, 100]


class VectorFilePipeline:
    """Files are .npy embeddings; a missing file fails like an unreadable sample."""

    modality, model_id, model_version = "face", "vector", "1"

    def embed_many(self, sources):
        from verify.embedding import Embedding
        from verify.errors import DecodeError

        results = []
        for source in sources:
            try:
                results.append(Embedding(np.load(source)))
            except OSError:
                results.append(DecodeError(f"cannot read {source}"))
        return results


def test_score_pairs_adapted_matches_adapting_pair_by_pair(tmp_path):
    adapter = make_adapter()
    checkpoint = adapter.save(tmp_path / "adapt.pt")
    features = synthetic_features(seed=9)
    for index in range(6):
        np.save(tmp_path / f"{index}.npy", features.vectors[index])
    pairs = [Pair("0.npy", "1.npy", True), Pair("0.npy", "5.npy", False), Pair("4.npy", "5.npy", True),
             Pair("4.npy", "missing.npy", False)]
    scored, errors = adapt_eval.score_pairs_adapted(VectorFilePipeline(), pairs, tmp_path, "maml", checkpoint)
    assert set(errors) == {"missing.npy"} and scored[3] == -np.inf
    for pair, score in zip(pairs[:3], scored[:3]):
        template = features.vectors[int(pair.enroll_path[0])]
        params, _ = adapter.adapt(template)
        expected = adapter.score(params, template, features.vectors[int(pair.probe_path[0])][None])[0]
        assert score == pytest.approx(expected, abs=1e-5)
    other = VectorFilePipeline()
    other.model_id = "another"
    with pytest.raises(WeightsError, match="trained on vector 1 embeddings, not another 1"):
        adapt_eval.score_pairs_adapted(other, pairs, tmp_path, "maml", checkpoint)


def test_no_adapter_ships_for_either_modality():
    """Meta-SGD retrained on the fused face model's embeddings did not beat the plain model on
    validation (README, "Per-user adaptation"), so, as for voices, none ships."""
    from verify.models import model_spec

    for modality in ("face", "voice"):
        assert model_spec(modality).adapter is None
        with pytest.raises(ConfigError, match=f"no per-user adaptation ships for {modality}"):
            model_spec(modality).load_adapter()


def test_enrollment_copies_are_extra_positives_checked_and_saved(tmp_path):
    features = synthetic_features(seed=9)
    template, copies = features.vectors[0], features.vectors[1:3]
    plain = make_adapter()
    with_copies = Adapter(plain.init, 0.05, 3, plain.cohort_fit, plain.cohort_guard, plain.augment_config,
                          method="maml", modality="face", model_id="vector", model_version="1", copies=2)
    with pytest.raises(ConfigError, match="takes 2 enrollment copies"):
        with_copies.adapt(template)
    with pytest.raises(ConfigError, match=r"shape \(1, 3, 16\); the adapter expects \(1, 2, 16\)"):
        with_copies.adapt(template, features.vectors[1:4])
    adapted, record = with_copies.adapt(template, copies)
    assert record.margin_adapted != plain.adapt(template)[1].margin_adapted  # the copies took part
    loaded = Adapter.load(with_copies.save(tmp_path / "copies.pt"))
    assert loaded.copies == 2
    np.testing.assert_array_equal(loaded.adapt(template, copies)[0], adapted)
