"""Cohort statistics, adaptive S-norm and cohort files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from verify.errors import CalibrationError, CohortMismatchError, ModelMismatchError, WeightsError
from verify.metrics import equal_error_rate
from verify.normalization import (
    STD_FLOOR,
    Cohort,
    CohortStats,
    load_cohort,
    s_norm,
    s_norm_many,
    save_cohort,
)

# four unit cohort vectors in 2-D; a probe along x scores 1, 0.6, 0, -0.8 against them
COHORT_2D = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])


def random_cohort(
    size: int = 50, dim: int = 8, top_k: int = 10, seed: int = 0, identities: bool = False
) -> Cohort:
    rng = np.random.default_rng(seed)
    labels = np.arange(size) // 2 if identities else None
    return Cohort(rng.normal(size=(size, dim)), top_k, "model", labels, {"data": "synthetic"})


# --- CohortStats --------------------------------------------------------------------------------
def test_cohort_stats_round_trip_through_json_and_bytes():
    stats = CohortStats(0.1234567891, 0.05, 300, "abcdef0123456789")

    assert CohortStats.from_json(stats.to_json()) == stats
    assert CohortStats.from_bytes(stats.to_bytes()) == stats
    assert json.loads(stats.to_json()) == {
        "mean": 0.1234567891,
        "std": 0.05,
        "top_k": 300,
        "cohort_id": "abcdef0123456789",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "cannot read cohort statistics"),
        ('{"mean": 0.1, "std": 0.1, "top_k": 3}', "cannot read cohort statistics.*cohort_id"),
        ('{"mean": "x", "std": 0.1, "top_k": 3, "cohort_id": "a"}', "cannot read cohort statistics"),
        ('{"mean": 0.1, "std": 0.0, "top_k": 3, "cohort_id": "a"}', "impossible cohort statistics"),
        ('{"mean": NaN, "std": 0.1, "top_k": 3, "cohort_id": "a"}', "impossible cohort statistics"),
        ('{"mean": 0.1, "std": 0.1, "top_k": 1, "cohort_id": "a"}', "impossible cohort statistics"),
    ],
    ids=["bad-json", "missing-key", "bad-number", "zero-std", "nan-mean", "top-1"],
)
def test_cohort_stats_from_bad_text_is_refused(text, message):
    with pytest.raises(CalibrationError, match=message):
        CohortStats.from_json(text)


# --- Cohort construction ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vectors", "top_k", "message"),
    [
        (np.ones(4), 2, r"needs a \(C, D\) array with C >= 2, got shape \(4,\)"),
        (np.ones((1, 4)), 2, r"C >= 2, got shape \(1, 4\)"),
        (np.array([[1.0, 0.0], [np.nan, 1.0]]), 2, "finite and non-zero"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), 2, "finite and non-zero"),
        (COHORT_2D, 1, "top_k must be an integer >= 2, got 1"),
        (COHORT_2D, 2.5, "top_k must be an integer >= 2, got 2.5"),
        (COHORT_2D, True, "top_k must be an integer >= 2, got True"),
    ],
    ids=["1-d", "one-row", "nan", "zero-row", "top-1", "float-k", "bool-k"],
)
def test_cohort_refuses_bad_vectors_or_top_k(vectors, top_k, message):
    with pytest.raises(CalibrationError, match=message):
        Cohort(vectors, top_k, "model")


def test_cohort_refuses_identities_of_another_length():
    with pytest.raises(CalibrationError, match=r"identities \(3,\) do not match 4 vectors"):
        Cohort(COHORT_2D, 2, "model", np.arange(3))


def test_cohort_rows_are_normalised_and_the_id_is_a_content_hash():
    cohort = Cohort(COHORT_2D * 5.0, 2, "model")

    np.testing.assert_allclose(np.linalg.norm(cohort.vectors, axis=1), 1.0, rtol=1e-6)
    assert cohort.vectors.dtype == np.float32
    assert cohort.cohort_id == Cohort(COHORT_2D, 3, "other").cohort_id  # scale-free, k-free
    assert cohort.cohort_id != Cohort(COHORT_2D[::-1], 2, "model").cohort_id
    assert len(cohort.cohort_id) == 16


# --- statistics ---------------------------------------------------------------------------------
def test_stats_are_the_mean_and_std_of_the_top_k_cohort_scores():
    stats = Cohort(COHORT_2D, 2, "model").stats(np.array([2.0, 0.0]))  # scores 1, 0.6, 0, -0.8

    assert stats.mean == pytest.approx(0.8)
    assert stats.std == pytest.approx(0.2)
    assert stats.top_k == 2


def test_top_k_at_least_the_cohort_size_is_plain_s_norm_over_every_score():
    cohort = Cohort(COHORT_2D, 100, "model")

    stats = cohort.stats(np.array([1.0, 0.0]))

    scores = np.array([1.0, 0.6, 0.0, -0.8])
    assert cohort.effective_k == 4 and stats.top_k == 4
    assert stats.mean == pytest.approx(scores.mean())
    assert stats.std == pytest.approx(scores.std())


def test_std_of_identical_top_scores_is_floored():
    cohort = Cohort(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 2, "model")

    assert cohort.stats(np.array([1.0, 0.0])).std == STD_FLOOR


def test_statistics_of_many_rows_match_one_at_a_time():
    """Equal up to float32 rounding (matrix-vector and matrix-matrix products round differently)."""
    cohort = random_cohort(size=2_100)  # more rows than one chunk of the batch path
    vectors = np.random.default_rng(1).normal(size=(1_500, 8))

    means, stds = cohort.statistics(vectors)

    for row in (0, 1_023, 1_024, 1_499):
        single = cohort.stats(vectors[row])
        assert (single.mean, single.std) == pytest.approx((means[row], stds[row]), rel=1e-5)


def test_trial_statistics_leave_the_persons_own_rows_out():
    cohort = Cohort(COHORT_2D, 2, "model", identities=np.array([7, 8, 9, 9]))
    vector = np.array([[1.0, 0.0]])

    means, stds, _, _ = cohort.trial_statistics(vector, np.array([7]), np.array([0]), np.array([0]))  # drops the 1.0

    assert means[0] == pytest.approx(0.3)  # top 2 of 0.6, 0, -0.8
    assert stds[0] == pytest.approx(0.3)


def test_trial_statistics_leave_both_people_out_of_each_side():
    cohort = Cohort(COHORT_2D, 2, "model", identities=np.array([7, 8, 9, 9]))
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [1.0, 0.0]])

    means, _, _, _ = cohort.trial_statistics(vectors, np.array([7, 8, 9]), np.array([0, 2]), np.array([1, 2]))

    assert means == pytest.approx([-0.4, 0.8])  # 0 and -0.8 left; 1.0 and 0.6 left


def test_trial_statistics_leave_both_people_of_each_trial_out():
    cohort = random_cohort(size=60, top_k=5, identities=True)  # 30 people, 2 rows each
    vectors = cohort.vectors[::3]  # 20 samples of cohort people
    identities = cohort.identities[::3]
    enroll, probe = np.array([0, 0, 3, 7, 7]), np.array([1, 5, 3, 2, 19])

    t_means, t_stds, p_means, p_stds = cohort.trial_statistics(vectors, identities, enroll, probe)

    for trial, (first, second) in enumerate(zip(enroll, probe)):
        people = [identities[first], identities[second]]
        kept = Cohort(cohort.vectors[~np.isin(cohort.identities, people)], 5, "model")
        template, probed = kept.stats(vectors[first]), kept.stats(vectors[second])
        assert (t_means[trial], t_stds[trial]) == pytest.approx((template.mean, template.std), rel=1e-5)
        assert (p_means[trial], p_stds[trial]) == pytest.approx((probed.mean, probed.std), rel=1e-5)


def test_trial_statistics_refuse_a_cohort_without_identities():
    with pytest.raises(CalibrationError, match="trial statistics need a cohort with identities"):
        Cohort(COHORT_2D, 2, "model").trial_statistics(np.ones((1, 2)), np.array([0]), np.array([0]), np.array([0]))


def test_trial_statistics_refuse_an_exclusion_that_leaves_fewer_than_two_scores():
    cohort = Cohort(COHORT_2D, 2, "model", identities=np.array([1, 1, 1, 2]))

    with pytest.raises(CalibrationError, match="fewer than 2 cohort scores left"):
        cohort.trial_statistics(np.ones((2, 2)), np.array([1, 2]), np.array([0]), np.array([1]))


def test_statistics_refuse_another_dimension():
    with pytest.raises(
        CalibrationError, match=r"embeddings of shape \(1, 3\) do not match the cohort's dimension 2"
    ):
        Cohort(COHORT_2D, 2, "model").stats(np.ones(3))


@pytest.mark.parametrize("vector", [np.zeros(2), np.array([np.inf, 0.0])], ids=["zero", "inf"])
def test_statistics_refuse_zero_or_non_finite_embeddings(vector):
    with pytest.raises(CalibrationError, match="zero or not finite"):
        Cohort(COHORT_2D, 2, "model").stats(vector)


# --- S-norm -------------------------------------------------------------------------------------
def test_s_norm_is_the_mean_of_the_two_z_scores():
    cohort_id = "c"
    template, probe = CohortStats(0.2, 0.1, 5, cohort_id), CohortStats(0.4, 0.2, 5, cohort_id)

    # (0.6 - 0.2) / 0.1 = 4 and (0.6 - 0.4) / 0.2 = 1
    assert s_norm(0.6, template, probe) == pytest.approx(2.5)
    np.testing.assert_allclose(
        s_norm_many(np.array([0.6, 0.2]), np.full(2, 0.2), np.full(2, 0.1), np.full(2, 0.4), np.full(2, 0.2)),
        [2.5, -0.5],
    )


@pytest.mark.parametrize(
    "probe", [CohortStats(0.4, 0.2, 5, "other"), CohortStats(0.4, 0.2, 6, "c")], ids=["cohort", "top-k"]
)
def test_s_norm_refuses_statistics_of_different_cohorts(probe):
    with pytest.raises(CohortMismatchError, match="template statistics .* and probe statistics .* differ"):
        s_norm(0.5, CohortStats(0.2, 0.1, 5, "c"), probe)


def test_cohort_check_names_the_fix_for_stale_template_statistics():
    cohort = random_cohort()
    stale = CohortStats(0.1, 0.1, cohort.effective_k, "0000000000000000")

    cohort.check(cohort.stats(np.ones(8)))
    with pytest.raises(CohortMismatchError, match="recompute them with Cohort.stats"):
        cohort.check(stale)
    assert issubclass(CohortMismatchError, ModelMismatchError)


def test_s_norm_removes_per_person_score_offsets():
    """Half the people are "hubs" sharing a direction: raw impostor scores among them run high.
    S-norm against a cohort with the same mix separates the pooled trials better (lower EER)."""
    rng = np.random.default_rng(3)
    dim, people, per = 32, 160, 3
    hub = rng.normal(size=dim)
    centres = rng.normal(size=(2 * people, dim))
    centres[::2] += 1.2 * hub  # every other person (cohort and trial people alike) is a hub
    identities = np.repeat(np.arange(people), per)
    samples = centres[identities] + 0.9 * rng.normal(size=(identities.size, dim))
    cohort = Cohort(centres[people:] + 0.9 * rng.normal(size=(people, dim)), 40, "model")
    samples /= np.linalg.norm(samples, axis=1, keepdims=True)
    first, second = np.triu_indices(identities.size, 1)
    raw = np.einsum("ij,ij->i", samples[first], samples[second])
    labels = identities[first] == identities[second]
    means, stds = cohort.statistics(samples)

    normalised = s_norm_many(raw, means[first], stds[first], means[second], stds[second])

    assert equal_error_rate(normalised, labels)[0] < 0.8 * equal_error_rate(raw, labels)[0]


# --- files --------------------------------------------------------------------------------------
def test_save_then_load_round_trips_the_cohort(tmp_path: Path):
    cohort = random_cohort(identities=True)
    manifest = tmp_path / "model.cohort.json"

    save_cohort(manifest, cohort)
    loaded = load_cohort(manifest, "model")

    np.testing.assert_array_equal(loaded.vectors, cohort.vectors)
    np.testing.assert_array_equal(loaded.identities, cohort.identities)
    assert (loaded.cohort_id, loaded.top_k, loaded.provenance) == (
        cohort.cohort_id,
        10,
        {"data": "synthetic"},
    )
    document = json.loads(manifest.read_text())
    assert document["vectors_file"] == "model.cohort.npz" and document["shape"] == [50, 8]


def test_a_cohort_without_identities_loads_without_them(tmp_path: Path):
    save_cohort(tmp_path / "m.json", random_cohort())

    assert load_cohort(tmp_path / "m.json", "model").identities is None


def _edit_manifest(path: Path, **changes) -> None:
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_id": "other"}, "is the cohort of model 'other', not 'model'"),
        ({"format": "something"}, "is not a verify-impostor-cohort v1 manifest"),
        ({"format_version": 2}, "is not a verify-impostor-cohort v1 manifest"),
        ({"sha256": "0" * 64}, "has sha256 .*, expected 000000000000"),
        ({"cohort_id": "ffffffffffffffff"}, "do not match the manifest's shape or cohort_id"),
        ({"shape": [49, 8]}, "do not match the manifest's shape or cohort_id"),
        ({"vectors_file": "missing.npz"}, "cannot read cohort .*No such file"),
        ({"top_k": 1}, "cannot read cohort .*top_k must be an integer >= 2"),
    ],
    ids=["model", "format", "version", "sha256", "cohort-id", "shape", "missing-npz", "bad-top-k"],
)
def test_load_refuses_a_manifest_of_another_model_format_or_content(tmp_path: Path, change, message):
    manifest = tmp_path / "model.cohort.json"
    save_cohort(manifest, random_cohort())
    _edit_manifest(manifest, **change)

    with pytest.raises(WeightsError, match=message):
        load_cohort(manifest, "model")


def test_load_refuses_an_unreadable_manifest(tmp_path: Path):
    manifest = tmp_path / "model.cohort.json"
    manifest.write_text("{oops", encoding="utf-8")

    with pytest.raises(WeightsError, match=r"cannot read cohort .*model\.cohort\.json.*Rebuild it with"):
        load_cohort(manifest, "model")
