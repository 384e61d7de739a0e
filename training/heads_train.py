"""Train the Siamese, prototypical and relation heads on frozen backbone embeddings.

Every head is trained on the *train* identities of :func:`training.episodes.split_identities`,
selected (best epoch) and calibrated on the *validation* identities; test identities are never
read here. :func:`train_head` writes, to one folder:

* ``<modality>-<method>-head.safetensors``   weights + metadata (:mod:`training.heads`)
* ``<modality>-<method>-head.thresholds.json`` thresholds calibrated on validation trials
* ``<modality>-<method>-head.json`` / ``.md``  model card: data, split, command, seed, metrics
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from verify.calibration import CALIBRATED_FARS, Thresholds, calibrate, save_thresholds
from verify.device import resolve_device
from verify.errors import ConfigError
from training.episodes import EpisodeSampler, sample_pairs, split_identities
from training.features import DEFAULT_CACHE_DIR, FeatureSet, backbone_key, load_features
from training.fewshot_eval import (
    all_pairs, cosine_pair_scores, episode_accuracy, nearest_prototype_scores, score_rows, verification_figures)
from training.heads import HEAD_METHODS, TrainedHead, save_head
from training.nets.protonet import prototypical_loss
from training.nets.relation import RelationModule, relation_loss, relation_scores
from training.nets.siamese import EmbeddingHead, contrastive_loss, euclidean_distance

TRAIN_DATASET = {"face": "lfw_gray", "voice": "librispeech"}
# Siamese: a margin near the impostor distance of unit vectors (sqrt 2) and a lower rate; with margin 1.0 and
# rate 1e-3 the face head's validation EER was 5.6 %, with these 1.5 % after one epoch (backbone: 1.0 %).
METHOD_OVERRIDES = {"siamese": {"margin": 1.4, "learning_rate": 3e-4}}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadTrainConfig:
    """Hyper-parameters of one head training run (steps = epochs * steps_per_epoch)."""

    epochs: int = 10
    steps_per_epoch: int = 150
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    hidden: int = 512
    dropout: float = 0.1
    margin: float = 1.0  # contrastive margin, Euclidean distance between unit vectors
    pair_batch: int = 256
    n_way: int = 20
    k_shot: int = 1
    n_query: int = 1
    proto_scale: float = 5.0  # initial logit scale on squared distances of unit vectors (learned)
    validation_episodes: int = 600
    seed: int = 0


def build_head(method: str, config: HeadTrainConfig, dim: int) -> tuple[EmbeddingHead, RelationModule | None]:
    """Fresh modules of a method, seeded by ``config.seed``."""
    if method not in HEAD_METHODS:
        raise ConfigError(f"unknown head method {method!r}: choose one of {', '.join(HEAD_METHODS)}")
    torch.manual_seed(config.seed)
    head = EmbeddingHead(dim, config.hidden, config.dropout)
    return head, (RelationModule(dim) if method == "relation" else None)


def _step_loss(method, head, relation, scale, data, config, sampler, rng, identities, device) -> torch.Tensor:
    """Loss of one training step: a batch of pairs (siamese) or one episode (proto, relation)."""
    if method == "siamese":
        a, b, same = sample_pairs(data, identities, config.pair_batch, int(rng.integers(2**31)))
        vectors = torch.from_numpy(data.vectors).to(device)
        distance = euclidean_distance(head(vectors[a]), head(vectors[b]))
        return contrastive_loss(distance, torch.from_numpy(same).to(device), config.margin)
    episode = sampler.sample()
    support = head(torch.from_numpy(episode.support).to(device))
    query = head(torch.from_numpy(episode.query).to(device))
    labels = torch.from_numpy(episode.query_labels).to(device)
    if method == "proto":
        return prototypical_loss(support, torch.from_numpy(episode.support_labels).to(device), query, labels,
                                 config.n_way, scale)[0]
    centres = support.reshape(config.n_way, config.k_shot, -1).mean(dim=1)
    return relation_loss(relation_scores(relation, centres, query), labels)


def validation_report(trained: TrainedHead | None, features: FeatureSet, identities, episodes: int, seed: int) -> dict:
    """Verification figures on all validation pairs and 5-way 1-shot accuracy (``None`` = backbone)."""
    vectors = trained.embed(features.vectors) if trained else features.vectors
    pair_scorer = trained.score_embedded if trained else cosine_pair_scores
    class_scorer = trained.class_scores if trained else nearest_prototype_scores
    a, b, same = all_pairs(features, identities)
    scores = score_rows(vectors, a, b, pair_scorer)
    report = verification_figures(scores, same)
    report["five_way_one_shot"] = episode_accuracy(features, identities, class_scorer, episodes, seed=seed)
    return {**report, "_scores": scores, "_same": same}


def selection_pairs(features: FeatureSet, identities, seed: int, impostors: int = 20000):
    """Every genuine pair of ``identities`` and at most ``impostors`` seeded impostor pairs (epoch selection)."""
    a, b, same = all_pairs(features, identities)
    rng = np.random.default_rng(seed)
    impostor_rows = np.nonzero(~same)[0]
    keep = np.sort(np.concatenate([np.nonzero(same)[0],
                                   rng.permutation(impostor_rows)[: min(impostors, len(impostor_rows))]]))
    return a[keep], b[keep], same[keep]


def fit_head(method: str, modality: str, features: FeatureSet, split, config: HeadTrainConfig,
             device: str = "auto", backbone: tuple[str, str] = ("", "")) -> tuple[TrainedHead, list[dict]]:
    """Train a head on ``split.train``; keep the epoch with the lowest validation EER."""
    device = resolve_device(device)
    head, relation = build_head(method, config, features.vectors.shape[1])
    head.to(device)
    relation = relation.to(device) if relation is not None else None
    scale = torch.nn.Parameter(torch.tensor(config.proto_scale, device=device))
    parameters = list(head.parameters()) + (list(relation.parameters()) if relation is not None else [])
    parameters += [scale] if method == "proto" else []
    optimiser = torch.optim.Adam(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    sampler = None if method == "siamese" else EpisodeSampler(
        features, split.train, config.n_way, config.k_shot, config.n_query, config.seed)
    trained = TrainedHead(method, modality, backbone[0], backbone[1], head, relation)
    history, best = [], (np.inf, None)
    a, b, same = selection_pairs(features, split.validation, config.seed)
    for epoch in range(1, config.epochs + 1):
        head.train()
        relation is not None and relation.train()
        losses = []
        for _ in tqdm(range(config.steps_per_epoch), desc=f"{modality} {method} epoch {epoch}", leave=False):
            loss = _step_loss(method, head, relation, scale, features, config, sampler, rng, split.train, device)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        embedded = trained.embed(features.vectors)
        eer = verification_figures(score_rows(embedded, a, b, trained.score_embedded), same)["eer"]
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "validation_eer": eer})
        log.info("%s %s epoch %d: loss %.4f, validation EER %.4f", modality, method, epoch, np.mean(losses), eer)
        if eer < best[0]:
            best = (eer, copy.deepcopy((head.state_dict(), relation.state_dict() if relation else None)))
    head.load_state_dict(best[1][0])
    if relation is not None:
        relation.load_state_dict(best[1][1])
    trained.info = {"best_epoch": int(np.argmin([h["validation_eer"] for h in history]) + 1)}
    return trained, history


def feasible_fars(impostors: int) -> tuple[float, ...]:
    """The calibrated FARs that ``impostors`` impostor trials can support (at least 1 / FAR trials)."""
    return tuple(far for far in CALIBRATED_FARS if impostors * far >= 1)


def train_head(modality: str, method: str, data_root: Path, out_dir: Path, seed: int = 0, epochs: int = 10,
               device: str = "auto", cache_dir: Path = DEFAULT_CACHE_DIR,
               command: str = "") -> dict:
    """Train, validate, calibrate and write one head (see the module docstring); returns its card."""
    if modality not in TRAIN_DATASET:
        raise ConfigError(f"unknown modality {modality!r}: use 'face' or 'voice'")
    dataset = TRAIN_DATASET[modality]
    features = load_features(dataset, data_root, cache_dir, device)
    split = split_identities(dataset, seed)
    config = HeadTrainConfig(epochs=epochs, seed=seed, **METHOD_OVERRIDES.get(method, {}))
    backbone = backbone_key(modality)
    trained, history = fit_head(method, modality, features, split, config, device, backbone)
    validation = validation_report(trained, features, split.validation, config.validation_episodes, seed)
    baseline = validation_report(None, features, split.validation, config.validation_episodes, seed)
    scores, same = validation.pop("_scores"), validation.pop("_same")
    baseline.pop("_scores"), baseline.pop("_same")
    fars = feasible_fars(int(np.sum(~same)))
    stem = Path(out_dir) / f"{modality}-{method}-head"
    card = {
        "model_id": trained.model_id, "method": method, "modality": modality,
        "backbone": {"model_id": backbone[0], "model_version": backbone[1]},
        "data": {"dataset": dataset, "data_root": str(data_root), "files": len(features),
                 "train_identities": len(split.train), "validation_identities": len(split.validation),
                 "test_identities_used": 0,
                 "split": "calibration half of benchmarks/pairs/splits.json, 80/20 train/validation by seed"},
        "command": command or f"python -m verify train --modality {modality} --method {method} --epochs {epochs} "
                              f"--seed {seed} --out {out_dir}",
        "seed": seed, "config": asdict(config), "history": history,
        "validation": validation, "validation_backbone_only": baseline,
        "calibrated_fars": list(fars), "date": datetime.date.today().isoformat(),
        "torch": torch.__version__, "device": str(resolve_device(device)),
    }
    trained.info.update(seed=seed, dataset=dataset)
    save_head(stem.with_suffix(".safetensors"), trained)
    provenance = {"trials": "all pairs of the validation identities", "dataset": dataset,
                  "validation_eer": round(validation["eer"], 5), "command": card["command"]}
    save_thresholds(stem.with_suffix(".thresholds.json"),
                    Thresholds(trained.model_id, calibrate(scores, same, fars), provenance))
    stem.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(model_card_markdown(card), encoding="utf-8")
    return card


def model_card_markdown(card: dict) -> str:
    """A short human-readable model card from the JSON card."""
    val, base = card["validation"], card["validation_backbone_only"]
    row = lambda name, r: (f"| {name} | {100 * r['eer']:.2f} % | {100 * r['tar_at_far_1e_2']:.2f} % | "  # noqa: E731
                           f"{100 * r['five_way_one_shot']['accuracy']:.2f} ± {100 * r['five_way_one_shot']['ci95']:.2f} % |")
    data = card["data"]
    return "\n".join([
        f"# {card['model_id']}", "",
        f"{card['method']} head on the frozen {card['backbone']['model_id']} embeddings ({card['modality']}).",
        f"Trained on {data['train_identities']} identities of `{data['dataset']}`, model selection and thresholds on "
        f"{data['validation_identities']} other identities ({data['split']}); no test identity was used.", "",
        f"Command: `{card['command']}` (seed {card['seed']}, {card['device']}, torch {card['torch']}).", "",
        "| validation | EER | TAR @ FAR 1 % | 5-way 1-shot accuracy |", "|---|---|---|---|",
        row("backbone only", base), row(f"+ {card['method']} head", val), "",
        f"Thresholds calibrated for FARs {', '.join(f'{far:g}' for far in card['calibrated_fars'])}.", "",
    ])
