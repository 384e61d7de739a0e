"""Tests of enrollment.template: identity rules and the running-mean template."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from enrollment import (
    InvalidIdentityError,
    InvalidTemplateError,
    Template,
    validate_identity,
    validate_modality,
)
from verify.errors import ConfigError, VerifyError
from verify.normalization import CohortStats


def make_template(**changes: object) -> Template:
    fields: dict[str, object] = dict(
        identity="alice",
        modality="face",
        embedding_sum=np.array([3.0, 4.0], dtype=np.float32),
        sample_count=1,
        model_id="facenet",
        model_version="1.0",
        created_at=100.0,
        updated_at=100.0,
    )
    fields.update(changes)
    return Template(**fields)  # type: ignore[arg-type]


# --- identity and modality -----------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "José Ñúñez",
        "李小龙",
        "O'Brien \"Bob\"",
        "Robert'); DROP TABLE templates;--",
        "../../etc/passwd",
        "C:\\Users\\bob",
        "x" * 64,
        "Mohammad\u200cReza",  # zero-width non-joiner is part of Persian names
    ],
)
def test_validate_identity_accepts_any_printable_text(name: str) -> None:
    assert validate_identity(name) == name


def test_validate_identity_strips_and_normalises_to_nfc() -> None:
    assert validate_identity("  Jose\u0301\t ") == "Jos\u00e9"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "must be a string, got NoneType"),
        (b"alice", "must be a string, got bytes"),
        ("", "is empty"),
        ("  \t\n ", "is empty"),
        ("x" * 65, "65 characters long; the limit is 64"),
        ("ali\nce", "control character U\\+000A"),
        ("ali\x00ce", "control character U\\+0000"),
        ("ali\x1b[31mce", "control character U\\+001B"),
        ("ali\u2028ce", "control character U\\+2028"),
        ("ali\ud800ce", "control character U\\+D800"),
    ],
)
def test_validate_identity_rejects(name: object, message: str) -> None:
    with pytest.raises(InvalidIdentityError, match=message):
        validate_identity(name)  # type: ignore[arg-type]


def test_identity_error_is_a_verify_error() -> None:
    assert issubclass(InvalidIdentityError, VerifyError)


def test_validate_modality() -> None:
    assert validate_modality("face") == "face"
    assert validate_modality("voice") == "voice"
    for bad in ("Face", "iris", "", None):
        with pytest.raises(ConfigError, match="unknown modality"):
            validate_modality(bad)  # type: ignore[arg-type]


# --- the template --------------------------------------------------------------------------
def test_from_sample_stores_the_unit_embedding() -> None:
    template = Template.from_sample("bob", "voice", [3, 4], "ecapa", "2", now=5.0)
    assert template.embedding_sum.dtype == np.float32
    np.testing.assert_allclose(template.embedding_sum, [0.6, 0.8], rtol=1e-6)
    assert template.sample_count == 1
    assert template.dim == 2
    assert template.created_at == template.updated_at == 5.0


def test_embedding_is_renormalised_mean_of_unit_samples() -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(5, 16)) * rng.uniform(0.1, 10.0, size=(5, 1))
    template = Template.from_sample("bob", "voice", samples[0], "ecapa", "2", now=1.0)
    for index, sample in enumerate(samples[1:], start=2):
        template = template.with_sample(sample, now=float(index))
    # Resemblyzer embed_speaker: mean of L2-normalised embeddings, renormalised.
    units = samples / np.linalg.norm(samples, axis=1, keepdims=True)
    expected = units.mean(axis=0) / np.linalg.norm(units.mean(axis=0))
    assert template.sample_count == 5
    assert template.updated_at == 5.0 and template.created_at == 1.0
    assert template.embedding.dtype == np.float32 and template.embedding.shape == (16,)
    np.testing.assert_allclose(template.embedding, expected, atol=1e-6)
    np.testing.assert_allclose(template.embedding_sum, units.sum(axis=0), atol=1e-5)


def test_with_sample_by_hand_and_leaves_original_unchanged() -> None:
    template = Template.from_sample("bob", "face", [1, 0], "m", "1", now=1.0)
    updated = template.with_sample([0, 2], now=2.0)
    np.testing.assert_array_equal(updated.embedding_sum, [1.0, 1.0])
    np.testing.assert_allclose(updated.embedding, [2**-0.5, 2**-0.5], rtol=1e-6)
    np.testing.assert_array_equal(template.embedding_sum, [1.0, 0.0])
    assert template.sample_count == 1 and updated.sample_count == 2


def test_embedding_sum_is_a_read_only_copy() -> None:
    source = np.array([3.0, 4.0], dtype=np.float32)
    template = make_template(embedding_sum=source)
    source[0] = 100.0
    assert template.embedding_sum[0] == 3.0
    with pytest.raises(ValueError):
        template.embedding_sum[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.sample_count = 2  # type: ignore[misc]


def test_template_normalises_identity_and_compares_by_value() -> None:
    template = make_template(identity="  alice ")
    assert template.identity == "alice"
    assert template == make_template()
    assert template != make_template(embedding_sum=[3.0, 4.5])
    assert template != make_template(sample_count=2)
    with pytest.raises(TypeError):
        hash(template)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"identity": ""}, InvalidIdentityError, "is empty"),
        ({"modality": "iris"}, ConfigError, "unknown modality 'iris'"),
        ({"embedding_sum": ["a", "b"]}, InvalidTemplateError, "real numbers, got dtype <U1"),
        ({"embedding_sum": [1 + 2j]}, InvalidTemplateError, "real numbers, got dtype complex"),
        ({"embedding_sum": [True, False]}, InvalidTemplateError, "real numbers, got dtype bool"),
        ({"embedding_sum": np.ones((2, 2))}, InvalidTemplateError, r"shape \(D,\).*\(2, 2\)"),
        ({"embedding_sum": np.ones(0)}, InvalidTemplateError, r"got shape \(0,\)"),
        ({"embedding_sum": 3.0}, InvalidTemplateError, r"got shape \(\)"),
        ({"embedding_sum": [1.0, np.nan]}, InvalidTemplateError, "NaN or infinite"),
        ({"embedding_sum": [1.0, np.inf]}, InvalidTemplateError, "NaN or infinite"),
        ({"embedding_sum": [1.0, 1e300]}, InvalidTemplateError, "NaN or infinite"),
        ({"embedding_sum": [0.0, 0.0]}, InvalidTemplateError, "zero norm"),
        ({"sample_count": 0}, InvalidTemplateError, "sample_count must be an integer >= 1"),
        ({"sample_count": 1.0}, InvalidTemplateError, "sample_count must be an integer"),
        ({"sample_count": True}, InvalidTemplateError, "sample_count must be an integer"),
        ({"model_id": ""}, InvalidTemplateError, "model_id must be a non-empty string"),
        ({"model_version": None}, InvalidTemplateError, "model_version must be a non-empty"),
        ({"created_at": "now"}, InvalidTemplateError, "created_at must be a unix time"),
        ({"created_at": True}, InvalidTemplateError, "created_at must be a unix time"),
        ({"updated_at": float("nan")}, InvalidTemplateError, "updated_at must be a finite"),
        ({"updated_at": -1.0}, InvalidTemplateError, "updated_at must be a finite"),
    ],
)
def test_template_rejects(changes: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make_template(**changes)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ([1.0, 2.0, 3.0], r"shape \(3,\); template 'alice' \(face\) has shape \(2,\)"),
        ([[1.0, 2.0]], r"shape \(D,\)"),
        ([0.0, 0.0], "norm 0.0; cannot normalise"),
        ([np.nan, 1.0], "NaN or infinite"),
        (["x", "y"], "real numbers"),
    ],
)
def test_with_sample_rejects(sample: object, message: str) -> None:
    with pytest.raises(InvalidTemplateError, match=message):
        make_template().with_sample(sample, now=200.0)


def test_with_sample_rejects_bad_time() -> None:
    with pytest.raises(InvalidTemplateError, match="updated_at must be a finite"):
        make_template().with_sample([1.0, 0.0], now=float("inf"))


# --- the narrowband copy -------------------------------------------------------------------
STATS = CohortStats(0.1, 0.05, 10, "cohort")


def test_narrowband_copies_are_unit_normalised_summed_and_renormalised() -> None:
    template = Template.from_sample("bob", "voice", [3, 4], "ecapa", "2", now=1.0, narrowband=[0, 2])
    np.testing.assert_array_equal(template.narrowband_sum, [0.0, 1.0])
    updated = template.with_sample([1, 0], now=2.0, narrowband=[3, 4])
    assert updated.narrowband_sum.dtype == np.float32 and updated.sample_count == 2
    np.testing.assert_allclose(updated.narrowband_sum, [0.6, 1.8], rtol=1e-6)
    np.testing.assert_allclose(updated.narrowband, np.array([0.6, 1.8]) / np.hypot(0.6, 1.8), rtol=1e-6)
    assert updated.narrowband.dtype == np.float32
    np.testing.assert_array_equal(template.narrowband_sum, [0.0, 1.0])  # left unchanged
    with pytest.raises(ValueError):
        updated.narrowband_sum[0] = 1.0


def test_a_template_whose_samples_do_not_all_have_a_copy_has_none() -> None:
    plain = Template.from_sample("bob", "voice", [3, 4], "ecapa", "2", now=1.0)
    assert plain.narrowband_sum is None and plain.narrowband is None
    assert plain.with_sample([1, 0], now=2.0, narrowband=[0, 1]).narrowband_sum is None
    banded = make_template(narrowband_sum=[1.0, 0.0], cohort_stats=STATS, narrowband_stats=STATS)
    dropped = banded.with_sample([1, 0], now=200.0)
    assert dropped.narrowband_sum is None and dropped.narrowband is None and dropped.narrowband_stats is None
    kept = banded.with_sample([1, 0], now=200.0, narrowband=[0, 1])
    assert kept.cohort_stats is None and kept.narrowband_stats is None  # they described the smaller template
    np.testing.assert_array_equal(kept.narrowband_sum, [1.0, 1.0])


def test_narrowband_copies_compare_by_value() -> None:
    banded = make_template(narrowband_sum=[1.0, 2.0])
    assert banded == make_template(narrowband_sum=np.array([1.0, 2.0], dtype=np.float64))
    assert banded != make_template(narrowband_sum=[1.0, 2.5])
    assert banded != make_template() and make_template() != banded
    assert make_template(narrowband_sum=[1.0, 2.0], narrowband_stats=STATS) != banded


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"narrowband_sum": [1.0, 2.0, 3.0]}, r"narrowband_sum has shape \(3,\); embedding_sum has shape \(2,\)"),
        ({"narrowband_sum": [0.0, 0.0]}, "narrowband_sum has zero norm"),
        ({"narrowband_sum": [np.nan, 1.0]}, "narrowband_sum holds NaN"),
        ({"narrowband_sum": np.ones((2, 2))}, r"narrowband_sum must have shape \(D,\)"),
        ({"narrowband_sum": [1.0, 0.0], "narrowband_stats": {}}, "narrowband_stats must be CohortStats, got dict"),
        ({"narrowband_stats": STATS}, "narrowband_stats given without a narrowband_sum"),
    ],
    ids=["shape", "zero", "nan", "matrix", "stats-type", "stats-alone"],
)
def test_template_rejects_a_bad_narrowband_copy(changes: dict, message: str) -> None:
    with pytest.raises(InvalidTemplateError, match=message):
        make_template(**changes)


@pytest.mark.parametrize(
    ("narrowband", "message"),
    [([1.0, 2.0, 3.0], r"narrowband embedding has shape \(3,\); template 'alice' \(face\) has shape \(2,\)"),
     ([1.0], r"narrowband embedding has shape \(1,\)"), ([0.0, 0.0], "norm 0.0")],
)
def test_a_bad_narrowband_sample_is_refused_even_without_copies(narrowband: list, message: str) -> None:
    with pytest.raises(InvalidTemplateError, match=message):
        make_template().with_sample([1.0, 0.0], now=200.0, narrowband=narrowband)


def test_from_sample_refuses_a_copy_of_another_dimension() -> None:
    with pytest.raises(InvalidTemplateError, match=r"narrowband_sum has shape \(3,\); embedding_sum has"):
        Template.from_sample("bob", "voice", [3, 4], "ecapa", "2", now=1.0, narrowband=[1, 2, 3])
