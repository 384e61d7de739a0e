"""From-scratch baselines: small encoders trained on raw front-end outputs, no pretrained backbone.

Faces: :class:`~training.nets.scratch.FaceCNN` on 64x64 greyscale aligned crops; voices:
:class:`~training.nets.scratch.VoiceTDNN` on log-mel frames. Trained on the *train* identities with
the contrastive loss (``siamese``) or episodically with the prototypical loss (``proto``); the
epoch with the lowest validation EER is kept. :func:`embed_raw` turns every cached input into a
:class:`~training.features.FeatureSet`, so the evaluation is the one the backbone gets.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from verify.device import resolve_device
from verify.errors import ConfigError
from training.episodes import EpisodeSampler, rows_by_identity, sample_pairs
from training.features import FeatureSet, RawInputs
from training.fewshot_eval import all_pairs, cosine_pair_scores, score_rows, verification_figures
from training.nets.protonet import prototypical_loss
from training.nets.scratch import VOICE_CROP_FRAMES, scratch_encoder
from training.nets.siamese import contrastive_loss, euclidean_distance

SCRATCH_METHODS = ("siamese", "proto")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScratchConfig:
    """Hyper-parameters of one from-scratch run."""

    epochs: int = 8
    steps_per_epoch: int = 100
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    margin: float = 1.0
    pair_batch: int = 48
    n_way: int = 32
    k_shot: int = 1
    n_query: int = 1
    proto_scale: float = 5.0
    seed: int = 0


def _batch(modality: str, raw: RawInputs, rows: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
    """Network input of ``rows``: faces ``(B, 1, 64, 64)`` in [0, 1], voices ``(B, 40, 160)`` crops.

    With ``rng`` (training) faces are flipped and shifted by up to 4 px and voice crops start at a
    random frame; without it faces are unchanged and voice crops are centred.
    """
    if modality == "face":
        images = raw.inputs[rows].astype(np.float32) / 255.0
        if rng is not None:
            flip = rng.random(len(rows)) < 0.5
            images[flip] = images[flip, :, ::-1]
            shift = rng.integers(-4, 5, size=2)
            images = np.roll(images, tuple(int(s) for s in shift), axis=(1, 2))
        return torch.from_numpy(np.ascontiguousarray(images[:, None]))
    crops = np.zeros((len(rows), raw.inputs.shape[1], VOICE_CROP_FRAMES), dtype=np.float32)
    for out, row in enumerate(rows):
        length = int(raw.lengths[row])
        slack = max(length - VOICE_CROP_FRAMES, 0)
        start = int(rng.integers(slack + 1)) if rng is not None else slack // 2
        piece = raw.inputs[row, :, start : start + min(length, VOICE_CROP_FRAMES)].astype(np.float32)
        repeats = int(np.ceil(VOICE_CROP_FRAMES / max(piece.shape[1], 1)))
        crops[out] = np.tile(piece, (1, repeats))[:, :VOICE_CROP_FRAMES]
    return torch.from_numpy(crops)


@torch.inference_mode()
def embed_raw(encoder: torch.nn.Module, modality: str, raw: RawInputs, batch: int = 128,
              rows: np.ndarray | None = None) -> FeatureSet:
    """Embed the cached inputs ``rows`` (default all; eval mode): a :class:`FeatureSet` in that order."""
    encoder.eval()
    device = next(encoder.parameters()).device
    rows = np.arange(len(raw.paths)) if rows is None else np.asarray(rows)
    vectors = [encoder(_batch(modality, raw, rows[start : start + batch], None).to(device))
               for start in range(0, len(rows), batch)]
    return FeatureSet(torch.cat(vectors).cpu().numpy().astype(np.float32), raw.identities[rows],
                      [raw.paths[row] for row in rows])


def _loss(method, encoder, modality, raw, config, sampler, rng, identities, device) -> torch.Tensor:
    if method == "siamese":
        a, b, same = sample_pairs(raw, identities, config.pair_batch, int(rng.integers(2**31)))
        embedded = encoder(_batch(modality, raw, np.concatenate([a, b]), rng).to(device))
        distance = euclidean_distance(embedded[: len(a)], embedded[len(a) :])
        return contrastive_loss(distance, torch.from_numpy(same).to(device), config.margin)
    episode = sampler.sample()
    rows = np.concatenate([episode.support_indices, episode.query_indices])
    embedded = encoder(_batch(modality, raw, rows, rng).to(device))
    n_support = len(episode.support_indices)
    return prototypical_loss(embedded[:n_support], torch.from_numpy(episode.support_labels).to(device),
                             embedded[n_support:], torch.from_numpy(episode.query_labels).to(device),
                             config.n_way, config.proto_scale)[0]


def train_scratch(method: str, modality: str, raw: RawInputs, split, config: ScratchConfig = ScratchConfig(),
                  device: str = "auto") -> tuple[torch.nn.Module, list[dict]]:
    """Train an encoder from scratch on ``split.train``; keep the epoch with the lowest validation EER."""
    if method not in SCRATCH_METHODS:
        raise ConfigError(f"unknown from-scratch method {method!r}: choose one of {', '.join(SCRATCH_METHODS)}")
    device = resolve_device(device)
    torch.manual_seed(config.seed)
    encoder = scratch_encoder(modality).to(device)
    optimiser = torch.optim.AdamW(encoder.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    total = config.epochs * config.steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate, total_steps=total)
    rng = np.random.default_rng(config.seed)
    sampler = None if method == "siamese" else EpisodeSampler(
        raw, split.train, config.n_way, config.k_shot, config.n_query, config.seed, field="inputs")
    history, best = [], (np.inf, None)
    validation_rows = np.sort(np.concatenate(list(rows_by_identity(raw.identities, split.validation).values())))
    for epoch in range(1, config.epochs + 1):
        encoder.train()
        losses = []
        for _ in tqdm(range(config.steps_per_epoch), desc=f"scratch {modality} {method} epoch {epoch}", leave=False):
            loss = _loss(method, encoder, modality, raw, config, sampler, rng, split.train, device)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        embedded = embed_raw(encoder, modality, raw, rows=validation_rows)
        a, b, same = all_pairs(embedded, split.validation)
        eer = verification_figures(score_rows(embedded.vectors, a, b, cosine_pair_scores), same)["eer"]
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "validation_eer": eer})
        log.info("scratch %s %s epoch %d: loss %.4f, validation EER %.4f", modality, method, epoch, np.mean(losses), eer)
        if eer < best[0]:
            best = (eer, copy.deepcopy(encoder.state_dict()))
    encoder.load_state_dict(best[1])
    return encoder.eval(), history


def save_scratch(path: Path, encoder: torch.nn.Module, metadata: dict[str, str]) -> None:
    """Write a from-scratch encoder as safetensors with string metadata."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({name: value.detach().cpu().contiguous() for name, value in encoder.state_dict().items()},
              str(path), metadata=metadata)
