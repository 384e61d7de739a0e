"""Meta-train the per-user scorer initialisation (:mod:`verify.adaptation`) on cached backbone features.

Training identities are divided into *cohort* people (their embeddings become the shipped impostor
cohort) and *task* people (one task = one person: one enrollment embedding, its augmentations and
the cohort as support set; the person's other samples and other task people as query set).
Checkpoints are selected on validation identities by one-shot EER; thresholds for the adapted
scores are calibrated on validation identities too. Test identities are never touched here.

    from training.adapt_train import train_adaptation
    train_adaptation("voice", "maml", Path("../shared/data"), Path("runs/adapt"))
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from verify.calibration import CALIBRATED_FARS, Thresholds, calibrate
from verify.errors import ConfigError
from verify.adaptation import Adapter, AugmentConfig, Params, augment, binary_loss, initial_params, scores
from training.episodes import rows_by_identity, sample_pairs, split_identities
from training.features import FeatureSet, backbone_key, load_features
from training.maml import METHODS, MetaConfig, MetaLearner
from verify.metrics import equal_error_rate, min_dcf, tar_at_far

log = logging.getLogger(__name__)

MODALITY_DATASETS = {"face": "lfw_gray", "voice": "librispeech"}
COHORT_FRACTION = 0.3  # of the training people, whose embeddings form the impostor cohort
STEPS_PER_EPOCH = 100  # meta-steps (batches of tasks) per "epoch" of the CLI's --epochs


def prediction_entropy(params: Params, template: Tensor, samples: Tensor) -> Tensor:
    """Mean binary entropy (nats) of the accept probability ``sigmoid(score)`` over samples ``(S, D)``."""
    logits = scores(params, template, samples)
    probability = torch.sigmoid(logits)
    return (torch.nn.functional.softplus(logits) - probability * logits).mean()



@dataclass(frozen=True)
class TrainOptions:
    """Meta-training settings (all overridable through ``train_adaptation(**options)``)."""

    meta_steps: int = 300
    tasks_per_step: int = 32
    inner_steps: int = 3
    inner_lr: float = 0.05
    meta_lr: float = 3e-4
    taml_weight: float = 0.05
    query_positives: int = 2
    query_negatives: int = 32
    cohort_size: int = 256
    guard_cohort_size: int = 128
    validation_every: int = 50
    validation_pairs: int = 24000
    threads: int = 1


def _cohort(features: FeatureSet, people: list[str], size: int, rng: np.random.Generator) -> torch.Tensor:
    rows = np.concatenate([rows_by_identity(features.identities, [name])[name] for name in people])
    chosen = rng.choice(rows, size=min(size, len(rows)), replace=False)
    return torch.from_numpy(features.vectors[np.sort(chosen)].astype(np.float32))


class TaskSampler:
    """Batches of one-person tasks (tensors with a leading task axis) from cached features."""

    def __init__(self, features: FeatureSet, people: list[str], cohort: torch.Tensor, augment_config: AugmentConfig,
                 options: TrainOptions, seed: int) -> None:
        self.vectors = torch.from_numpy(features.vectors.astype(np.float32))
        self.groups = rows_by_identity(features.identities, people, 2)
        if len(self.groups) < 2:
            raise ConfigError(f"meta-training needs >= 2 people with >= 2 samples, got {len(self.groups)}")
        self.names = sorted(self.groups)
        self.label_of = np.full(len(features), -1)
        for label, name in enumerate(self.names):
            self.label_of[self.groups[name]] = label
        self.pool = np.concatenate([self.groups[name] for name in self.names])
        self.cohort, self.augment_config, self.options = cohort, augment_config, options
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, count: int) -> dict[str, torch.Tensor]:
        """``count`` tasks: template ``(T, D)``, fit ``(T, A, D)``, query_pos ``(T, P, D)``, query_neg ``(T, Q, D)``."""
        people = self.rng.choice(len(self.names), size=count)
        templates, positives, negatives = [], [], []
        for label in people:
            rows = self.rng.permutation(self.groups[self.names[label]])
            templates.append(rows[0])
            positives.append(self.rng.choice(rows[1:], size=self.options.query_positives))
            others = self.pool[self.label_of[self.pool] != label]
            negatives.append(self.rng.choice(others, size=self.options.query_negatives, replace=False))
        template = self.vectors[np.array(templates)]
        held = self.augment_config.count - self.augment_config.holdout
        fit = augment(template, self.cohort, self.augment_config, self.generator)[:, :held]
        return {"template": template, "fit": fit, "query_pos": self.vectors[np.stack(positives)],
                "query_neg": self.vectors[np.stack(negatives)]}


def task_losses(cohort: torch.Tensor):
    """``(support_loss, query_loss, entropy)`` functions of ``(params, task)`` for :class:`MetaLearner`."""

    def support(params, task):
        positives = torch.cat([task["template"][None], task["fit"]])
        return binary_loss(params, task["template"], positives, cohort)

    def query(params, task):
        return binary_loss(params, task["template"], task["query_pos"], task["query_neg"])

    def entropy(params, task):
        samples = torch.cat([task["template"][None], task["fit"], cohort])
        return prediction_entropy(params, task["template"], samples)

    return support, query, entropy


def _cosine_threshold(features: FeatureSet, people: list[str], seed: int) -> float:
    a, b, same = sample_pairs(features, people, 4000, seed)
    cosine = np.sum(features.vectors[a] * features.vectors[b], axis=1)
    return equal_error_rate(cosine, same)[1]


def train_adaptation(modality: str, method: str, data_root: Path, out_dir: Path, seed: int = 0, **options: Any) -> Path:
    """Meta-train a per-user adaptation for ``modality`` with ``method``; returns the checkpoint path.

    ``options`` override :class:`TrainOptions` fields and ``AugmentConfig`` fields (prefixed
    ``augment_``), plus ``dataset`` (default: lfw_gray for faces, librispeech for voices) and
    ``epochs`` (the CLI's ``--epochs``: ``STEPS_PER_EPOCH`` meta-steps each).
    The checkpoint is ``<out_dir>/adapt-<modality>-<method>.pt``; its ``info`` holds the
    validation figures of the adapted and of the plain cosine scorer on the same trials.
    """
    dataset, settings, augment_config = _parse_options(modality, method, options)
    torch.set_num_threads(settings.threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    features = load_features(dataset, data_root)
    split = split_identities(dataset, seed)
    train_people = [str(name) for name in rng.permutation(sorted(split.train))]
    n_cohort = max(2, int(len(train_people) * COHORT_FRACTION))
    cohort_people, task_people = train_people[:n_cohort], train_people[n_cohort:]
    cohort_all = _cohort(features, cohort_people, settings.cohort_size + settings.guard_cohort_size, rng)
    order = torch.from_numpy(rng.permutation(len(cohort_all)))
    n_guard = max(2, min(settings.guard_cohort_size, len(cohort_all) // 3))
    cohort_guard, cohort_fit = cohort_all[order[:n_guard]], cohort_all[order[n_guard:]]

    config = MetaConfig(method, settings.inner_steps, settings.inner_lr, settings.meta_lr, settings.taml_weight)
    support, query, entropy = task_losses(cohort_fit)
    init = initial_params(features.vectors.shape[1], threshold=_cosine_threshold(features, task_people, seed))
    learner = MetaLearner(init, support, query, config, entropy, frozen_init=("offset",))
    sampler = TaskSampler(features, task_people, cohort_fit, augment_config, settings, seed)
    model_id, model_version = backbone_key(modality)

    def snapshot() -> Adapter:
        step_sizes = learner.step_sizes
        if isinstance(step_sizes, dict):
            step_sizes = {name: value.clone() for name, value in step_sizes.items()}
        init = {name: value.clone() for name, value in learner.init.items()}
        return Adapter(init, step_sizes, settings.inner_steps, cohort_fit, cohort_guard, augment_config,
                       method, modality, model_id, model_version, seed=seed)

    validation = sample_pairs(features, list(split.validation), settings.validation_pairs, seed + 1)
    started = time.perf_counter()
    best, history = _meta_train(learner, sampler, snapshot, features.vectors, validation, settings, f"{modality} {method}")
    best.info = {
        "dataset": dataset, "seed": seed, "train_people": len(task_people), "cohort_people": len(cohort_people),
        "validation_people": len(split.validation), "history": history,
        "train_seconds": round(time.perf_counter() - started, 1), "options": {**settings.__dict__},
        **_calibrate_on_validation(best, features.vectors, validation),
    }
    return best.save(Path(out_dir) / f"adapt-{modality}-{method}.pt")


def _parse_options(modality: str, method: str, options: dict[str, Any]) -> tuple[str, TrainOptions, AugmentConfig]:
    if modality not in MODALITY_DATASETS:
        raise ConfigError(f"unknown modality {modality!r}: choose face or voice")
    if method not in METHODS:
        raise ConfigError(f"unknown adaptation method {method!r}: choose one of {', '.join(METHODS)}")
    options = dict(options)
    dataset = options.pop("dataset", MODALITY_DATASETS[modality])
    epochs = options.pop("epochs", None)
    if epochs is not None:
        if int(epochs) < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        options["meta_steps"] = int(epochs) * STEPS_PER_EPOCH
    augment_options = {key[len("augment_"):]: options.pop(key) for key in list(options) if key.startswith("augment_")}
    unknown = set(options) - set(TrainOptions.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown training option(s) {sorted(unknown)}; known: {sorted(TrainOptions.__dataclass_fields__)}")
    return dataset, TrainOptions(**options), AugmentConfig(**augment_options)


def _meta_train(learner: MetaLearner, sampler: TaskSampler, snapshot, vectors: np.ndarray, validation: tuple,
                settings: TrainOptions, label: str) -> tuple[Adapter, list[dict]]:
    """Meta-steps with a validation check every ``validation_every`` steps; the lowest minDCF wins.

    minDCF (P_target 0.01) rather than EER: on LFW the EER is pinned by a few hopeless genuine pairs
    (mislabelled or badly cropped) and does not move, while the low-FAR region does.

    Step 0 (the cosine-equivalent initialisation, adapted per user but not meta-trained) competes
    too, so meta-training is kept only when it helps on validation identities.
    """
    from training.adapt_eval import pair_scores  # evaluation helpers live beside the benchmark

    first, second, same = validation
    best_cost, best, history = np.inf, snapshot(), []
    for step in range(settings.meta_steps + 1):
        if step % settings.validation_every == 0 or step == settings.meta_steps:
            scores = pair_scores(snapshot(), vectors, first, second)[0]
            eer, cost = equal_error_rate(scores, same)[0], min_dcf(scores, same)
            history.append({"step": step, "validation_eer": eer, "validation_min_dcf": cost})
            log.info("%s step %d: validation EER %.4f minDCF %.4f", label, step, eer, cost)
            if cost < best_cost:
                best_cost, best = cost, snapshot()
                best.info = {"selected_step": step}
        if step < settings.meta_steps:
            learner.meta_step(sampler.sample(settings.tasks_per_step))
    return best, history


def _calibrate_on_validation(adapter: Adapter, vectors: np.ndarray, validation: tuple) -> dict[str, Any]:
    """Set the adapter's thresholds from validation trials; return adapted vs plain figures on them."""
    from training.adapt_eval import pair_scores

    first, second, same = validation
    adapted, kept = pair_scores(adapter, vectors, first, second)
    plain = np.sum(vectors[first] * vectors[second], axis=1)
    fars = [far for far in CALIBRATED_FARS if int(np.sum(~same)) * far >= 1]  # the rest cannot be calibrated
    adapter.thresholds = Thresholds(f"{adapter.model_id}+adapt-{adapter.method}", calibrate(adapted, same, fars))
    figures: dict[str, Any] = {"selected_step": adapter.info.get("selected_step", 0), "validation_pairs": int(len(same)),
                               "validation_guard_kept_fraction": float(np.mean(kept))}
    for name, pair_score in (("adapted", adapted), ("plain", plain)):
        figures[f"validation_eer_{name}"] = float(equal_error_rate(pair_score, same)[0])
        figures[f"validation_tar_at_far_1e_2_{name}"] = float(tar_at_far(pair_score, same, 1e-2))
        figures[f"validation_tar_at_far_1e_3_{name}"] = float(tar_at_far(pair_score, same, 1e-3))
        figures[f"validation_min_dcf_{name}"] = float(min_dcf(pair_score, same))
    figures["beats_plain_on_validation"] = (
        figures["validation_eer_adapted"] <= figures["validation_eer_plain"]
        and figures["validation_min_dcf_adapted"] < figures["validation_min_dcf_plain"]
    )
    return figures
