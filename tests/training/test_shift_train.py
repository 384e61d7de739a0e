"""Every condition-shift method learns on synthetic episodes, checkpoints and scores as a per-user scorer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shift_samples import shift_samples

from training.episodes import IdentitySplit
from training.maml import MetaConfig, MetaLearner, meta_gradient
from training.matching_train import MatchingVerifier, task_loss
from training.meta_lstm_train import LSTMAdapter, query_loss
from training.nets.matching import MatchingNetwork
from training.nets.meta_lstm import MetaLSTM
from training.shift_episodes import ShiftShape, ShiftTaskSampler
from training.shift_methods import SHIFT_METHODS, checkpoint, load_method, train_method
from training.shift_setup import TrialList, build_setup, copy_table, score_trials, validation_people
from training.shift_train import LinearUsers, shift_losses
from verify.adaptation import AugmentConfig, flatten_params, initial_params, scores
from verify.errors import ConfigError, WeightsError

AUGMENT = AugmentConfig(count=6, holdout=2)


@pytest.fixture(scope="module")
def setup():
    names = [f"p{i:02d}" for i in range(40)]
    return build_setup(shift_samples(), "face", IdentitySplit(tuple(names[:30]), tuple(names[30:]), ()),
                       cohort_size=48, guard_cohort_size=24)


def sampler(setup, seed: int = 0) -> ShiftTaskSampler:
    return ShiftTaskSampler(setup.tasks, setup.cohort_fit, AUGMENT, ShiftShape(3, 12), seed)


def test_folded_linear_users_score_like_the_adapted_params():
    rng = np.random.default_rng(0)
    templates = rng.standard_normal((3, 16)).astype(np.float32)
    flat = np.stack([flatten_params(initial_params(16, threshold=t)) for t in (0.1, 0.3, 0.5)])
    flat[:, 16:32] = 0.01 * rng.standard_normal((3, 16))
    probes = rng.standard_normal((3, 16)).astype(np.float32)
    users = LinearUsers.of(flat, templates)
    units = torch.nn.functional.normalize(torch.from_numpy(templates), dim=1)
    expected = [float(scores({"gain": torch.from_numpy(row[:16]), "offset": torch.from_numpy(row[16:32]),
                              "log_scale": torch.tensor(row[32]), "bias": torch.tensor(row[33])},
                             units[i], torch.from_numpy(probes[i : i + 1]))[0]) for i, row in enumerate(flat)]
    np.testing.assert_allclose(users.score(np.arange(3), probes), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile", "metasgd"])
def test_meta_steps_lower_the_degraded_query_loss(setup, method):
    torch.manual_seed(0)
    support, query, entropy = shift_losses(setup.cohort_fit)
    learner = MetaLearner(initial_params(setup.dim, threshold=setup.threshold), support, query,
                          MetaConfig(method, inner_steps=2, inner_lr=0.05, meta_lr=0.02), entropy,
                          frozen_init=("offset",))
    held = sampler(setup, seed=99).sample(64)

    # Reptile never reads the queries: it moves the start towards the adapted support fits, so what
    # it lowers is the support loss after adaptation (it cannot aim at the condition shift itself).
    measured = support if method == "reptile" else query

    def held_loss() -> float:
        return float(meta_gradient(learner.meta_params, held, support, measured, learner.config, entropy)[0])

    before, tasks = held_loss(), sampler(setup)
    for _ in range(30):
        learner.meta_step(tasks.sample(16))
    assert held_loss() < before


def test_matching_network_training_lowers_the_task_loss(setup):
    torch.manual_seed(0)
    net = MatchingNetwork(setup.dim, hidden=16, steps=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    tasks = sampler(setup)
    fixed = sampler(setup, seed=5).sample(32)
    with torch.no_grad():
        before = float(task_loss(net, fixed, setup.cohort_fit, 16, torch.Generator().manual_seed(1)))
    for _ in range(20):
        loss = task_loss(net, tasks.sample(8), setup.cohort_fit, 16, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(task_loss(net, fixed, setup.cohort_fit, 16, torch.Generator().manual_seed(1)))
    assert after < before


def test_learned_optimiser_training_lowers_the_query_loss(setup):
    torch.manual_seed(0)
    theta = torch.from_numpy(flatten_params(initial_params(setup.dim, threshold=setup.threshold))).requires_grad_(True)
    adapter = LSTMAdapter(MetaLSTM(8), theta, 3, setup.cohort_fit, setup.cohort_guard, AUGMENT, setup.tasks.copy_count)
    optimizer = torch.optim.Adam([*adapter.optimizer.parameters(), theta], lr=1e-2)
    tasks = sampler(setup)
    fixed = sampler(setup, seed=5).sample(32)
    before = float(query_loss(adapter, theta, fixed).detach())
    for _ in range(30):
        loss = query_loss(adapter, theta, tasks.sample(16))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(query_loss(adapter, theta, fixed).detach()) < before


@pytest.mark.parametrize("method", SHIFT_METHODS)
def test_every_method_trains_checkpoints_and_scores_unseen_people(setup, tmp_path, method):
    path = train_method(setup, method, tmp_path, "face", steps=4)
    assert path == checkpoint(tmp_path, "face", method) and path.is_file()
    scorer = load_method(path, method)
    samples = setup.samples
    names = [f"p{i:02d}" for i in range(40)]
    trials = TrialList.of_people(samples, validation_people(samples, IdentitySplit((), tuple(names[30:]), ()), "face"))
    values = score_trials(scorer, samples, copy_table(samples), trials)
    assert values.shape == (len(trials),) and np.all(np.isfinite(values))
    assert values[trials.labels].mean() > values[~trials.labels].mean()
    again = score_trials(load_method(path, method), samples, copy_table(samples), trials)
    np.testing.assert_allclose(values, again, rtol=1e-5, atol=1e-5)


def test_unknown_method_and_foreign_checkpoints_are_rejected(setup, tmp_path):
    with pytest.raises(ConfigError, match="unknown condition-shift method 'prototypical'"):
        checkpoint(tmp_path, "face", "prototypical")
    torch.save({"format": "other"}, tmp_path / "x.pt")
    for loader in (MatchingVerifier.load, LSTMAdapter.load):
        with pytest.raises(WeightsError, match="format 'other'"):
            loader(tmp_path / "x.pt")
