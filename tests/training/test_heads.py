"""Few-shot heads on synthetic embeddings: training separates clusters, checkpoints round-trip.

People differ only in 4 of 16 dimensions; the other 12 carry loud per-sample noise, so cosine on
the raw vectors confuses people and a trained head must learn to ignore the noisy dimensions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from verify.errors import ConfigError, ModelMismatchError, WeightsError
from training.dispatch import score_pairs_meta, train
from training.episodes import IdentitySplit
from training.features import FeatureSet, RawInputs
from training.fewshot_eval import all_pairs, cosine_pair_scores, score_rows, verification_figures
from training.heads import load_head, save_head
from training.heads_train import HeadTrainConfig, feasible_fars, fit_head
from training.scratch_train import ScratchConfig, embed_raw, train_scratch

pytestmark = pytest.mark.usefixtures("torch_threads")


def nuisance_clusters(people: int = 40, per_person: int = 6, seed: int = 0) -> tuple[FeatureSet, IdentitySplit]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 4)) * 1.0
    rows = np.repeat(np.arange(people), per_person)
    vectors = np.concatenate([centres[rows] + 0.15 * rng.normal(size=(len(rows), 4)),
                              1.2 * rng.normal(size=(len(rows), 12))], axis=1)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    names = np.array([f"p{i:02d}" for i in rows])
    people_names = [f"p{i:02d}" for i in range(people)]
    n_train, n_validation = int(people * 0.7), int(people * 0.15)
    split = IdentitySplit(tuple(people_names[:n_train]), tuple(people_names[n_train : n_train + n_validation]),
                          tuple(people_names[n_train + n_validation :]))
    return FeatureSet(vectors, names, [f"{n}/{i}" for i, n in enumerate(names)]), split


def eer_on(features, people, scorer):
    a, b, same = all_pairs(features, people)
    return verification_figures(score_rows(features.vectors, a, b, scorer), same)["eer"]


@pytest.mark.parametrize("method", ["siamese", "proto", "relation"])
def test_trained_head_separates_clusters_better_than_cosine(method):
    torch.manual_seed(0)
    features, split = nuisance_clusters()
    config = HeadTrainConfig(epochs=3, steps_per_epoch=60, n_way=8, pair_batch=128, hidden=64, dropout=0.0,
                             learning_rate=3e-3, validation_episodes=50)
    trained, history = fit_head(method, "face", features, split, config, "cpu", ("fake", "v1"))
    before = eer_on(features, split.test, cosine_pair_scores)
    after = eer_on(features, split.test, trained.score)
    assert len(history) == 3
    assert after < before - 0.05, (before, after)


def test_head_checkpoint_round_trip_and_backbone_check(tmp_path):
    features, split = nuisance_clusters(people=20)
    config = HeadTrainConfig(epochs=1, steps_per_epoch=2, n_way=4, hidden=32)
    trained, _ = fit_head("relation", "voice", features, split, config, "cpu", ("fake", "v1"))
    save_head(tmp_path / "h.safetensors", trained)
    loaded = load_head(tmp_path / "h.safetensors")
    assert (loaded.method, loaded.modality, loaded.model_id) == ("relation", "voice", "fake+relation-head")
    assert np.allclose(loaded.score(features.vectors[:5], features.vectors[5:10]),
                       trained.score(features.vectors[:5], features.vectors[5:10]), atol=1e-6)
    loaded.check_backbone("fake", "v1")
    with pytest.raises(ModelMismatchError, match="trained on fake"):
        loaded.check_backbone("other", "v1")
    with pytest.raises(WeightsError, match="not found; train one"):
        load_head(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot load head checkpoint"):
        load_head(tmp_path / "bad.safetensors")


def test_feasible_fars_need_enough_impostors():
    assert feasible_fars(50_000) == (1e-1, 1e-2, 1e-3, 1e-4)
    assert feasible_fars(2_000) == (1e-1, 1e-2, 1e-3)


def test_dispatch_rejects_bad_choices(tmp_path):
    with pytest.raises(ConfigError, match="unknown training method 'knn'"):
        train("face", "knn", tmp_path, tmp_path)
    with pytest.raises(ConfigError, match="exactly one of --head and --adapt"):
        score_pairs_meta(None, [], tmp_path, head="proto", adapt="maml")
    with pytest.raises(ConfigError, match="exactly one"):
        score_pairs_meta(None, [], tmp_path)


def test_dispatch_names_the_missing_head_and_the_fix(tmp_path):
    class Pipeline:
        modality, model_id, model_version, device = "face", "fake", "v1", "cpu"

    with pytest.raises(WeightsError, match="python -m verify train --modality face --method relation"):
        score_pairs_meta(Pipeline(), [], tmp_path, head="relation", head_checkpoint=tmp_path / "nope.safetensors")


@pytest.mark.parametrize("modality,shape", [("face", (24, 64, 64)), ("voice", (24, 40, 400))])
def test_scratch_training_runs_and_embeds_every_input(modality, shape):
    rng = np.random.default_rng(0)
    inputs = (rng.integers(0, 255, size=shape).astype(np.uint8) if modality == "face"
              else rng.normal(size=shape).astype(np.float16))
    names = np.repeat([f"p{i}" for i in range(8)], 3)
    raw = RawInputs(inputs, np.full(24, 120), names, [f"{n}/{i}" for i, n in enumerate(names)])
    split = IdentitySplit(tuple(f"p{i}" for i in range(5)), ("p5", "p6"), ("p7",))
    encoder, history = train_scratch("proto", modality, raw, split,
                                     ScratchConfig(epochs=1, steps_per_epoch=2, n_way=3), "cpu")
    embedded = embed_raw(encoder, modality, raw)
    assert embedded.vectors.shape == (24, 128) and len(history) == 1
    with pytest.raises(ConfigError, match="from-scratch method"):
        train_scratch("relation", modality, raw, split)


def _tiny_pairs(tmp_path, face_files) -> Path:
    root = face_files[0].parent.parent
    lines = ["enroll_path,probe_path,same"]
    for first in face_files:
        for second in face_files:
            if first < second:
                lines.append(f"{first.relative_to(root)},{second.relative_to(root)},{int(first.parent == second.parent)}")
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n")
    return root


def test_cli_evaluate_with_a_head_checkpoint(tmp_path, face_files, capsys):
    from verify_cli.main import main
    from verify.face.pipeline import FacePipeline

    features, split = nuisance_clusters(people=20)
    wide = FeatureSet((np.tile(features.vectors, (1, 24)) / np.sqrt(24)).astype(np.float32), features.identities,
                      features.paths)  # 384-d, as the fused face embedding
    trained, _ = fit_head("proto", "face", wide, split, HeadTrainConfig(epochs=1, steps_per_epoch=2, n_way=4),
                          "cpu", (FacePipeline.model_id, FacePipeline.model_version))
    save_head(tmp_path / "face-proto-head.safetensors", trained)
    root = _tiny_pairs(tmp_path, face_files)
    status = main(["--device", "cpu", "evaluate", "--pairs", str(tmp_path / "pairs.csv"), "--root", str(root),
                   "--modality", "face", "--head", "proto", "--head-checkpoint",
                   str(tmp_path / "face-proto-head.safetensors"), "--json", str(tmp_path / "out.json")])
    assert status == 0
    assert "EER" in capsys.readouterr().out
    status = main(["--device", "cpu", "evaluate", "--pairs", str(tmp_path / "pairs.csv"), "--root", str(root),
                   "--modality", "face", "--head", "relation", "--head-checkpoint", str(tmp_path / "none.safetensors")])
    assert status == 2
    assert "python -m verify train --modality face --method relation" in capsys.readouterr().err


def test_cli_train_rejects_unknown_method(capsys):
    from verify_cli.main import main

    with pytest.raises(SystemExit):
        main(["train", "--modality", "face", "--method", "knn"])
    assert "invalid choice" in capsys.readouterr().err
