"""Every condition-shift method by name: train one, load its checkpoint as a :class:`UserScorer`.

Methods: ``adapt0`` (the cosine-equivalent per-user scorer adapted by plain gradient steps, never
meta-trained: the control), ``maml``, ``fomaml``, ``reptile``, ``metasgd``, ``taml`` (the
scorer's initialisation meta-trained, :mod:`training.shift_train`), ``matching`` (matching
network with full-context embeddings, :mod:`training.matching_train`) and ``metalstm`` (the
scorer adapted by a learned LSTM optimiser, :mod:`training.meta_lstm_train`). Checkpoints are
``<dir>/shift-<modality>-<method>.pt``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from training.maml import METHODS
from training.shift_setup import ShiftSetup, UserScorer
from training.shift_train import BASELINE
from verify.errors import ConfigError

SHIFT_METHODS = (BASELINE, *METHODS, "matching", "metalstm")


def checkpoint(out_dir: Path, modality: str, method: str) -> Path:
    """Where ``method``'s checkpoint for ``modality`` lies in ``out_dir``."""
    check_method(method)
    return Path(out_dir) / f"shift-{modality}-{method}.pt"


def check_method(method: str) -> None:
    """Raise :class:`ConfigError` for an unknown method name."""
    if method not in SHIFT_METHODS:
        raise ConfigError(f"unknown condition-shift method {method!r}: choose one of {', '.join(SHIFT_METHODS)}")


def train_method(setup: ShiftSetup, method: str, out_dir: Path, modality: str, seed: int = 0,
                 steps: int | None = None) -> Path:
    """Train ``method`` on ``setup`` (``steps``: outer steps, default each method's own); returns its checkpoint."""
    check_method(method)
    if method == "matching":
        from training.matching_train import MatchingOptions, train_matching

        options = MatchingOptions() if steps is None else replace(MatchingOptions(), train_steps=steps)
        return train_matching(setup, options, out_dir, modality, seed)
    if method == "metalstm":
        from training.meta_lstm_train import MetaLSTMOptions, train_meta_lstm

        options = MetaLSTMOptions() if steps is None else replace(MetaLSTMOptions(), train_steps=steps)
        return train_meta_lstm(setup, options, out_dir, modality, seed)
    from training.shift_train import ShiftOptions, train_shift_adapter

    options = ShiftOptions() if steps is None else replace(ShiftOptions(), meta_steps=steps)
    return train_shift_adapter(setup, method, options, out_dir, modality, seed)


def load_method(path: Path, method: str) -> UserScorer:
    """The :class:`UserScorer` of a checkpoint written by :func:`train_method` for ``method``."""
    check_method(method)
    if method == "matching":
        from training.matching_train import MatchingVerifier

        return MatchingVerifier.load(path)
    if method == "metalstm":
        from training.meta_lstm_train import LSTMAdapter

        return LSTMAdapter.load(path)
    from training.shift_train import AdapterScorer
    from verify.adaptation import Adapter

    return AdapterScorer(Adapter.load(path))
