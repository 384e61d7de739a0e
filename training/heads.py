"""Trained few-shot heads on backbone embeddings: one object to save, load and score with.

A head checkpoint is a safetensors file whose metadata names the method (``siamese``, ``proto``
or ``relation``), the backbone it was trained on and the layer sizes; the weights are loaded with
``strict=True``. Thresholds calibrated for the head ship beside it as
``<stem>.thresholds.json`` (see :mod:`verify.calibration`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from verify.device import resolve_device
from verify.errors import ModelMismatchError, WeightsError
from training.nets.relation import RelationModule, relation_scores
from training.nets.siamese import EmbeddingHead

HEAD_METHODS = ("siamese", "proto", "relation")


@dataclass
class TrainedHead:
    """An embedding head (and, for ``relation``, its relation module) on a backbone's embeddings."""

    method: str
    modality: str
    backbone_id: str
    backbone_version: str
    head: EmbeddingHead
    relation: RelationModule | None = None
    info: dict = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """Identifier of backbone + head, used for thresholds and templates."""
        return f"{self.backbone_id}+{self.method}-head"

    def to(self, device: str | torch.device) -> TrainedHead:
        """Move the modules to ``device`` (``"auto"`` allowed)."""
        device = resolve_device(device)
        self.head.to(device)
        if self.relation is not None:
            self.relation.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    @torch.inference_mode()
    def embed(self, vectors: np.ndarray) -> np.ndarray:
        """Map ``(N, D)`` backbone embeddings to ``(N, D)`` unit head embeddings (float32)."""
        self.head.eval()
        batch = torch.as_tensor(np.atleast_2d(vectors), dtype=torch.float32, device=self.device)
        return self.head(batch).cpu().numpy().astype(np.float32)

    def score(self, templates: np.ndarray, probes: np.ndarray) -> np.ndarray:
        """Row-wise scores ``(N,)`` of ``(N, D)`` template and probe backbone embeddings (higher = same).

        Cosine of head embeddings; the relation head scores with its relation module instead.
        """
        return self.score_embedded(self.embed(templates), self.embed(probes))

    @torch.inference_mode()
    def score_embedded(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Row-wise scores ``(N,)`` of pairs already mapped by :meth:`embed`."""
        if self.relation is None:
            return np.sum(first * second, axis=1).astype(np.float64)
        self.relation.eval()
        as_tensor = lambda array: torch.from_numpy(np.ascontiguousarray(array)).to(self.device)  # noqa: E731
        return self.relation(as_tensor(first), as_tensor(second)).cpu().numpy().astype(np.float64)

    @torch.inference_mode()
    def class_scores(self, support: np.ndarray, support_labels: np.ndarray, query: np.ndarray, n_way: int) -> np.ndarray:
        """``(Q, n_way)`` scores of queries against the classes of an episode (higher = more likely)."""
        support_embedded, query_embedded = self.embed(support), self.embed(query)
        centres = np.stack([support_embedded[support_labels == label].mean(axis=0) for label in range(n_way)])
        if self.relation is None:
            return -((query_embedded[:, None, :] - centres[None]) ** 2).sum(axis=2)
        self.relation.eval()
        scores = relation_scores(self.relation, torch.from_numpy(centres).float().to(self.device),
                                 torch.from_numpy(query_embedded).to(self.device))
        return scores.cpu().numpy()

    def check_backbone(self, model_id: str, model_version: str) -> None:
        """Raise :class:`ModelMismatchError` unless the head was trained on this backbone."""
        if (model_id, model_version) != (self.backbone_id, self.backbone_version):
            raise ModelMismatchError(
                f"head {self.method} was trained on {self.backbone_id} ({self.backbone_version}), "
                f"not on {model_id} ({model_version})"
            )


def save_head(path: Path, trained: TrainedHead) -> None:
    """Write the head's weights and metadata as safetensors."""
    tensors = {f"head.{name}": value.detach().cpu().contiguous() for name, value in trained.head.state_dict().items()}
    if trained.relation is not None:
        tensors.update({f"relation.{name}": value.detach().cpu().contiguous()
                        for name, value in trained.relation.state_dict().items()})
    metadata = {
        "method": trained.method, "modality": trained.modality, "backbone_id": trained.backbone_id,
        "backbone_version": trained.backbone_version, "dim": str(trained.head.dim), "hidden": str(trained.head.hidden),
        "relation_hidden": str(trained.relation.hidden) if trained.relation is not None else "",
        "info": json.dumps(trained.info),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def load_head(path: Path, device: str | torch.device = "cpu") -> TrainedHead:
    """Read a head checkpoint written by :func:`save_head` (``strict=True``) onto ``device``.

    Raises:
        WeightsError: the file is missing, unreadable or does not match the head it describes.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"head checkpoint {path} not found; train one with: python -m verify train --modality "
            "face|voice --method siamese|proto|relation --out DIR"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path), device="cpu")
        head = EmbeddingHead(int(metadata["dim"]), int(metadata["hidden"]))
        head.load_state_dict(_prefixed(tensors, "head."), strict=True)
        relation = None
        if metadata["method"] == "relation":
            relation = RelationModule(int(metadata["dim"]), int(metadata["relation_hidden"]))
            relation.load_state_dict(_prefixed(tensors, "relation."), strict=True)
        trained = TrainedHead(metadata["method"], metadata["modality"], metadata["backbone_id"],
                              metadata["backbone_version"], head, relation, json.loads(metadata.get("info", "{}")))
    except Exception as error:  # safetensors raises several types for a malformed file
        raise WeightsError(f"cannot load head checkpoint {path}: {error}") from error
    return trained.to(device)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
