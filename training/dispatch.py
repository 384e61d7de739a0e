"""Entry points the command line calls for few-shot training and head / adaptation scoring.

Heads (``siamese``, ``proto``, ``relation``) live in :mod:`training.heads_train`; per-user
adaptation methods (``maml``, ``fomaml``, ``reptile``, ``metasgd``, ``taml``) in
:mod:`training.adapt_train` and :mod:`training.adapt_eval`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from verify.embedding import Pipeline
from verify.errors import ConfigError, VerifyError, WeightsError
from verify.evaluation import Pair, embed_pair_files
from training.heads import HEAD_METHODS, load_head
from verify.weights import MODELS_DIR

ADAPT_METHODS = ("maml", "fomaml", "reptile", "metasgd", "taml")
TRAIN_METHODS = HEAD_METHODS + ADAPT_METHODS
DEFAULT_TRAIN_DIR = Path("runs") / "meta"


def shipped_head_path(modality: str, method: str) -> Path:
    """Where a shipped head of ``modality`` and ``method`` lives in ``assets/models``."""
    return MODELS_DIR / f"{modality}-{method}-head.safetensors"


def _optional(module: str, attribute: str, what: str):
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"{what} is not available in this build ({module}.{attribute}: {error})") from None


def train(modality: str, method: str, data_root: Path, out_dir: Path | None = None, seed: int = 0,
          epochs: int | None = None, device: str = "auto") -> str:
    """Train one head or adaptation method on the data sets under ``data_root``; returns a one-line
    summary naming the files written."""
    if method not in TRAIN_METHODS:
        raise ConfigError(f"unknown training method {method!r}: choose one of {', '.join(TRAIN_METHODS)}")
    if method in ADAPT_METHODS:
        train_adaptation = _optional("training.adapt_train", "train_adaptation", f"{method} training")
        if out_dir is None:  # where training.adapt_eval looks for trained checkpoints
            out_dir = _optional("training.adapt_eval", "TRAIN_DIR", f"{method} training")
        options = {"epochs": epochs} if epochs is not None else {}
        return f"wrote {train_adaptation(modality, method, data_root, out_dir, seed, **options)}"
    from training.heads_train import train_head

    out_dir = Path(out_dir or DEFAULT_TRAIN_DIR)
    card = train_head(modality, method, data_root, out_dir, seed=seed, epochs=epochs or 10, device=device)
    validation, plain = card["validation"], card["validation_backbone_only"]
    return (f"wrote {out_dir / f'{modality}-{method}-head'}.{{safetensors,thresholds.json,json,md}}; validation EER "
            f"{validation['eer']:.2%} (backbone only {plain['eer']:.2%}), TAR at FAR 1% "
            f"{validation['tar_at_far_1e_2']:.2%} (backbone only {plain['tar_at_far_1e_2']:.2%})")


def score_pairs_meta(
    pipeline: Pipeline,
    pairs: Sequence[Pair],
    root: Path,
    head: str = "none",
    head_checkpoint: Path | None = None,
    adapt: str = "none",
    adapt_checkpoint: Path | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> tuple[np.ndarray, dict[str, VerifyError]]:
    """Scores of pairs through a trained head or a per-user adaptation (``-inf`` for failed files).

    Raises:
        ConfigError: both or neither of ``head`` and ``adapt`` chosen, or an unknown name.
        WeightsError: the checkpoint is missing or was trained on another backbone.
    """
    if (head == "none") == (adapt == "none"):
        raise ConfigError("choose exactly one of --head and --adapt (the other must be 'none')")
    if adapt != "none":
        if adapt not in ADAPT_METHODS:
            raise ConfigError(f"unknown adaptation {adapt!r}: choose one of {', '.join(ADAPT_METHODS)}")
        scorer = _optional("training.adapt_eval", "score_pairs_adapted", f"--adapt {adapt}")
        return scorer(pipeline, pairs, root, adapt, adapt_checkpoint, progress)
    if head not in HEAD_METHODS:
        raise ConfigError(f"unknown head {head!r}: choose one of none, {', '.join(HEAD_METHODS)}")
    path = Path(head_checkpoint) if head_checkpoint else shipped_head_path(pipeline.modality, head)
    if not path.is_file():
        raise WeightsError(
            f"no {head} head checkpoint at {path} (none ships for {pipeline.modality}: it did not beat the plain "
            f"backbone on validation identities). Train one with: python -m verify train --modality "
            f"{pipeline.modality} --method {head} --out DIR, then pass --head-checkpoint DIR/"
            f"{pipeline.modality}-{head}-head.safetensors"
        )
    trained = load_head(path, getattr(pipeline, "device", "cpu"))
    trained.check_backbone(pipeline.model_id, pipeline.model_version)
    embeddings, errors = embed_pair_files(pipeline, pairs, root, progress)
    vectors = {name: embedding.vector for name, embedding in embeddings.items()}
    scores = np.full(len(pairs), -np.inf)
    usable = [i for i, pair in enumerate(pairs) if pair.enroll_path in vectors and pair.probe_path in vectors]
    if usable:
        templates = np.stack([vectors[pairs[i].enroll_path] for i in usable])
        probes = np.stack([vectors[pairs[i].probe_path] for i in usable])
        scores[usable] = trained.score(templates, probes)
    return scores, errors
