"""Per-user adaptation of a verification scorer from ONE enrollment embedding.

The per-user model is a linear scorer over backbone embeddings (``D`` = embedding dimension):

    score(params, t, x) = exp(log_scale) * <gain * t + offset, x> + bias

with ``t`` the ``(D,)`` template and ``x`` a probe embedding. With ``gain = 1`` and ``offset = 0``
it is an affine function of the cosine score, so the unadapted scorer ranks like the plain
backbone. Its initialisation (and, for Meta-SGD, per-element step sizes) is meta-trained
(``training.adapt_train``) so that a few gradient steps on one enrollment sample, its
feature-space augmentations (positives) and a shipped cohort of impostor embeddings (negatives)
make it a per-user classifier. Parameters per user: ``2 D + 2`` float32.

Guard: the cohort ships in two halves; adaptation sees the ``fit`` half and the first augmentations,
then the held-out augmentations and the ``guard`` cohort half measure the score margin
``(mean(positives) - mean(cohort)) / std(cohort)`` (scale-free). The adapted parameters are kept
only when that margin beats the unadapted initialisation's; otherwise the user falls back to the
initialisation applied to the plain prototype. Scores of both live on the same (logit) scale, so
one set of calibrated thresholds serves both.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Union

import numpy as np
import torch
from torch import Tensor
from torch.func import grad, vmap

from verify.calibration import Thresholds
from verify.errors import ConfigError, WeightsError
from verify.weights import sha256_of

Params = dict[str, Tensor]
StepSize = Union[float, Mapping[str, Tensor]]

CHECKPOINT_FORMAT = "verify-adaptation/1"
PARAM_NAMES = ("gain", "offset", "log_scale", "bias")
@dataclass(frozen=True)
class AugmentConfig:
    """Feature-space augmentations of one enrollment embedding.

    Attributes:
        count: augmentations made per enrollment; the last ``holdout`` are kept for the guard.
        holdout: augmentations held out from adaptation for the guard check.
        noise: norm of the Gaussian noise added to the unit embedding.
        dropout: fraction of embedding dimensions zeroed.
        mix: largest weight of a random cohort embedding mixed in (interpolation).
    """

    count: int = 12
    holdout: int = 4
    noise: float = 0.5
    dropout: float = 0.1
    mix: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.holdout < self.count:
            raise ConfigError(f"augment holdout must be in 1..count-1, got {self.holdout} of {self.count}")
        if self.noise < 0 or not 0 <= self.dropout < 1 or not 0 <= self.mix < 1:
            raise ConfigError(f"bad augmentation strengths: noise {self.noise}, dropout {self.dropout}, mix {self.mix}")


@dataclass(frozen=True)
class GuardRecord:
    """Why a user's adaptation was kept or dropped (stored beside the parameters)."""

    kept: bool
    margin_initial: float
    margin_adapted: float
    method: str

    def to_json(self) -> str:
        """Compact JSON text."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GuardRecord:
        """Parse :meth:`to_json` output."""
        return cls(**json.loads(text))


# --- the inner loop -----------------------------------------------------------------------
def step_size(lr: StepSize, name: str) -> Tensor | float:
    """The step size of parameter ``name``: ``lr`` itself, or its entry when per-parameter."""
    return lr[name] if isinstance(lr, Mapping) else lr


def adapt(
    params: Params,
    loss_fn: Callable[[Params], Tensor],
    steps: int,
    lr: StepSize,
    *,
    first_order: bool = False,
) -> Params:
    """``steps`` gradient-descent steps on ``loss_fn`` from ``params``; returns the new parameters.

    Differentiable: when called under ``torch.func.grad`` (or with ``params`` that require grad),
    the result depends on ``params`` through every step, Hessian included, unless
    ``first_order`` treats each inner gradient as a constant. ``lr`` is a float, or a dict with
    one step-size tensor per parameter (Meta-SGD, element-wise).
    """
    for _ in range(steps):
        gradients = grad(loss_fn)(params)
        if first_order:
            gradients = {name: value.detach() for name, value in gradients.items()}
        params = {name: value - step_size(lr, name) * gradients[name] for name, value in params.items()}
    return params


# --- the scorer ---------------------------------------------------------------------------
def initial_params(dim: int, scale: float = 10.0, threshold: float = 0.3) -> Params:
    """Parameters of a scorer equal to ``scale * (cosine - threshold)``."""
    return {
        "gain": torch.ones(dim),
        "offset": torch.zeros(dim),
        "log_scale": torch.tensor(math.log(scale)),
        "bias": torch.tensor(-scale * threshold),
    }


def scores(params: Params, template: Tensor, probes: Tensor) -> Tensor:
    """Logit scores ``(M,)`` of probes ``(M, D)`` against a ``(D,)`` template."""
    weight = params["gain"] * template + params["offset"]
    return torch.exp(params["log_scale"]) * (probes @ weight) + params["bias"]


def binary_loss(params: Params, template: Tensor, positives: Tensor, negatives: Tensor) -> Tensor:
    """Class-balanced logistic loss: positives ``(P, D)`` should score high, negatives ``(Q, D)`` low."""
    positive = torch.nn.functional.softplus(-scores(params, template, positives)).mean()
    negative = torch.nn.functional.softplus(scores(params, template, negatives)).mean()
    return positive + negative


def flatten_params(params: Mapping[str, Tensor]) -> np.ndarray:
    """``(2 D + 2,)`` float32: gain, offset, log_scale, bias."""
    return torch.cat([params[name].detach().reshape(-1).float() for name in PARAM_NAMES]).numpy()


def unflatten_params(flat: np.ndarray, dim: int) -> Params:
    """Inverse of :func:`flatten_params`."""
    flat = np.asarray(flat, dtype=np.float32)
    if flat.shape != (2 * dim + 2,):
        raise ConfigError(f"adapted parameters have shape {flat.shape}; expected ({2 * dim + 2},) for dim {dim}")
    tensor = torch.from_numpy(flat.copy())
    return {"gain": tensor[:dim], "offset": tensor[dim : 2 * dim], "log_scale": tensor[2 * dim], "bias": tensor[2 * dim + 1]}


def augment(templates: Tensor, cohort: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """``(N, count, D)`` unit-norm augmentations of unit templates ``(N, D)``: noise, dropout, cohort mixing."""
    count, dim = config.count, templates.shape[-1]
    base = templates[:, None, :].expand(-1, count, -1)
    noise = torch.randn(base.shape, generator=generator) * (config.noise / math.sqrt(dim))
    keep = (torch.rand(base.shape, generator=generator) >= config.dropout).float() / (1 - config.dropout)
    partner = cohort[torch.randint(len(cohort), base.shape[:2], generator=generator)]
    weight = torch.rand(base.shape[:2] + (1,), generator=generator) * config.mix
    mixed = (1 - weight) * (base + noise) * keep + weight * partner
    return mixed / mixed.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def separation_margin(params: Params, template: Tensor, positives: Tensor, negatives: Tensor) -> Tensor:
    """``(mean(positive scores) - mean(negative scores)) / std(negative scores)``, scale-free."""
    negative = scores(params, template, negatives)
    return (scores(params, template, positives).mean() - negative.mean()) / negative.std().clamp_min(1e-6)


# --- the adapter ----------------------------------------------------------------------------
@dataclass
class Adapter:
    """A meta-trained initialisation, its inner-loop settings and cohort: one template -> params.

    Attributes:
        init: initial scorer parameters (see :func:`initial_params`).
        step_sizes: inner step size (float) or per-element step sizes (Meta-SGD).
        steps: inner gradient steps.
        cohort_fit: ``(C, D)`` impostor embeddings the adaptation sees.
        cohort_guard: ``(G, D)`` impostor embeddings held out for the guard.
        augment_config: enrollment augmentations.
        method, modality, model_id, model_version: provenance; templates of another backbone
            must not be scored with it.
        thresholds: calibrated thresholds of the adapted logit scores (validation identities).
        info: free-form training and validation figures.
        seed: seed of the enrollment augmentations (adaptation is deterministic).
        copies: enrollment copies (sample-space augmentations: the enrollment sample degraded by
            the front end's condition copies, embedded) the adaptation takes as extra positives;
            0 for an adapter meta-trained without them.
        checkpoint_id: sha256 of the checkpoint file it was loaded from (``"unsaved"`` otherwise);
            stored with every user's adapted parameters.
    """

    init: Params
    step_sizes: StepSize
    steps: int
    cohort_fit: Tensor
    cohort_guard: Tensor
    augment_config: AugmentConfig = field(default_factory=AugmentConfig)
    method: str = "maml"
    modality: str = "face"
    model_id: str = ""
    model_version: str = ""
    thresholds: Thresholds | None = None
    info: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    copies: int = 0
    checkpoint_id: str = "unsaved"

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return int(self.init["gain"].shape[0])

    def _adapt_one(self, template: Tensor, positives: Tensor) -> Params:
        support = torch.cat([template[None], positives])
        return adapt(
            self.init,
            lambda p: binary_loss(p, template, support, self.cohort_fit),
            self.steps,
            self.step_sizes,
            first_order=True,
        )

    def _copies(self, copies: np.ndarray | None, count: int) -> Tensor:
        """``(N, C, D)`` unit copies, checked against what the adapter was meta-trained with."""
        if copies is None:
            if self.copies:
                raise ConfigError(f"the {self.method} adaptation takes {self.copies} enrollment copies per template; "
                                  "pass the embeddings of the enrollment sample's condition copies")
            return torch.empty(count, 0, self.dim)
        tensor = torch.as_tensor(np.asarray(copies, dtype=np.float32))
        if tensor.shape != (count, self.copies, self.dim):
            raise ConfigError(f"enrollment copies have shape {tuple(tensor.shape)}; the adapter expects "
                              f"({count}, {self.copies}, {self.dim})")
        return tensor / tensor.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def adapt_many(self, templates: np.ndarray, copies: np.ndarray | None = None) -> tuple[np.ndarray, list[GuardRecord]]:
        """Adapt to each of ``templates`` ``(N, D)``; returns ``(N, 2 D + 2)`` params and guard records.

        ``copies``: ``(N, C, D)`` embeddings of each enrollment's condition copies, extra positives
        (required when the adapter was meta-trained with ``C = copies > 0``). Where the guard
        rejects an adaptation the row holds the initial parameters.
        """
        vectors = torch.as_tensor(np.atleast_2d(np.asarray(templates, dtype=np.float32)))
        if vectors.shape[1] != self.dim:
            raise ConfigError(f"templates have dimension {vectors.shape[1]}; the adapter expects {self.dim}")
        vectors = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
        extra = self._copies(copies, len(vectors))
        generator = torch.Generator().manual_seed(self.seed)
        augmented = torch.stack([augment(row[None], self.cohort_fit, self.augment_config, generator)[0] for row in vectors])
        held = self.augment_config.count - self.augment_config.holdout
        fit, holdout = torch.cat([extra, augmented[:, :held]], dim=1), augmented[:, held:]
        with torch.enable_grad():
            adapted = vmap(self._adapt_one)(vectors, fit)
        adapted = {name: value.detach() for name, value in adapted.items()}
        margin_adapted = vmap(separation_margin, in_dims=(0, 0, 0, None))(adapted, vectors, holdout, self.cohort_guard)
        margin_initial = vmap(separation_margin, in_dims=(None, 0, 0, None))(self.init, vectors, holdout, self.cohort_guard)
        kept = margin_adapted > margin_initial
        flat = np.stack([flatten_params({n: adapted[n][i] for n in PARAM_NAMES}) for i in range(len(vectors))])
        flat[~kept.numpy()] = flatten_params(self.init)
        records = [
            GuardRecord(bool(k), float(mi), float(ma), self.method)
            for k, mi, ma in zip(kept, margin_initial, margin_adapted)
        ]
        return flat, records

    def adapt(self, template: np.ndarray, copies: np.ndarray | None = None) -> tuple[np.ndarray, GuardRecord]:
        """Adapt to one ``(D,)`` template (with its ``(C, D)`` copies): ``(2 D + 2,)`` params and the guard's record."""
        flat, records = self.adapt_many(np.asarray(template)[None], None if copies is None else np.asarray(copies)[None])
        return flat[0], records[0]

    def score(self, flat_params: np.ndarray, template: np.ndarray, probes: np.ndarray) -> np.ndarray:
        """Adapted scores ``(M,)`` of probes ``(M, D)`` against a ``(D,)`` template."""
        params = unflatten_params(flat_params, self.dim)
        template_tensor = torch.as_tensor(np.asarray(template, dtype=np.float32))
        probes_tensor = torch.as_tensor(np.atleast_2d(np.asarray(probes, dtype=np.float32)))
        if probes_tensor.shape[1] != self.dim:
            raise ConfigError(f"probes have dimension {probes_tensor.shape[1]}; the adapter expects {self.dim}")
        with torch.inference_mode():
            return scores(params, template_tensor / template_tensor.norm(), probes_tensor).numpy().astype(np.float64)

    # --- checkpoint ---------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Write a checkpoint readable with ``torch.load(weights_only=True)``."""
        step_sizes = self.step_sizes if isinstance(self.step_sizes, float) else dict(self.step_sizes)
        document = {
            "format": CHECKPOINT_FORMAT,
            "init": {name: value.detach().clone() for name, value in self.init.items()},
            "step_sizes": step_sizes,
            "steps": self.steps,
            "cohort_fit": self.cohort_fit.clone(),
            "cohort_guard": self.cohort_guard.clone(),
            "augment": asdict(self.augment_config),
            "method": self.method,
            "modality": self.modality,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "thresholds": {f"{far:g}": value for far, value in (self.thresholds.by_far.items() if self.thresholds else ())},
            "info": json.dumps(self.info, sort_keys=True),
            "seed": self.seed,
            "copies": self.copies,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(document, path)
        self.checkpoint_id = sha256_of(path)
        return path

    @classmethod
    def load(cls, path: Path) -> Adapter:
        """Read a checkpoint written by :meth:`save`.

        Raises:
            WeightsError: missing, unreadable or of another format, naming the file and the fix.
        """
        path = Path(path)
        fix = "train one with: python -m verify train --data DATA --modality face|voice --method maml"
        if not path.is_file():
            raise WeightsError(f"adaptation checkpoint {path} not found; {fix}")
        try:
            document = torch.load(path, map_location="cpu", weights_only=True)
            if document.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {document.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
            by_far = {float(far): float(value) for far, value in document["thresholds"].items()}
            return cls(
                init=dict(document["init"]),
                step_sizes=document["step_sizes"],
                steps=int(document["steps"]),
                cohort_fit=document["cohort_fit"],
                cohort_guard=document["cohort_guard"],
                augment_config=AugmentConfig(**document["augment"]),
                method=document["method"],
                modality=document["modality"],
                model_id=document["model_id"],
                model_version=document["model_version"],
                thresholds=Thresholds(document["model_id"] + "+adapt-" + document["method"], by_far) if by_far else None,
                info=json.loads(document["info"]),
                seed=int(document["seed"]),
                copies=int(document.get("copies", 0)),
                checkpoint_id=sha256_of(path),
            )
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise WeightsError(f"cannot read adaptation checkpoint {path}: {error}; {fix}") from error
