"""neuraltext.train: one entry per step in the history without a host synchronisation per step,
non-finite losses caught, mixed precision settings per device."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuraltext.train import amp_settings, train

SYNC_NAMES = {"item", "__bool__", "__float__", "__int__", "tolist", "cpu", "numpy"}


class SyncSpy(torch.Tensor):
    """A loss tensor that counts what would make the host wait for the device."""

    calls: list[str] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in SYNC_NAMES:
            cls.calls.append(func.__name__)
        return super().__torch_function__(func, types, args, kwargs or {})


def _regression(n_batches=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 1, generator=gen)
    batches = []
    for _ in range(n_batches):
        x = torch.randn(8, 4, generator=gen)
        batches.append((x, x @ w))
    return batches


def _mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def test_history_has_every_step_and_syncs_only_every_n_steps():
    """20 steps with sync_every=10: the history gets the 20 losses (the values loss_fn returned),
    and the host reads the device at most a few times per sync point -- the old loop read each
    loss twice per step (isfinite check and .item())."""
    model = nn.Linear(4, 1)
    seen = []

    def loss_fn(m, batch):
        loss = _mse(m, batch)
        seen.append(loss.detach().clone())
        return loss.as_subclass(SyncSpy)

    SyncSpy.calls = []
    history = train(model, loss_fn, _regression(), lr=0.05, device="cpu", sync_every=10)
    assert history.steps == 20 and len(history.grad_norm) == 20 and len(history.lr) == 20
    assert history.loss == pytest.approx([float(v) for v in seen], rel=1e-6)
    assert len(SyncSpy.calls) <= 3 * 2, SyncSpy.calls  # two sync points, at most 3 reads each


def test_grad_norm_is_the_norm_before_clipping():
    model = nn.Linear(4, 1)
    batches = _regression(1)
    expected = torch.autograd.grad(_mse(model, batches[0]), list(model.parameters()))
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in expected))
    history = train(model, _mse, batches, lr=0.0, clip_norm=1e-3, device="cpu")
    assert history.grad_norm == pytest.approx([norm], rel=1e-5)


@pytest.mark.parametrize("sync_every", [1, 4])
def test_non_finite_loss_names_its_step(sync_every):
    model = nn.Linear(4, 1)
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        loss = _mse(m, batch)
        return loss * float("nan") if calls["n"] == 3 else loss  # the 3rd step, index 2

    with pytest.raises(FloatingPointError, match="loss became nan at step 2"):
        train(model, loss_fn, _regression(10), device="cpu", sync_every=sync_every)
    assert calls["n"] == (3 if sync_every == 1 else 4)  # detected at the next sync point


def test_bad_sync_every_is_named():
    with pytest.raises(ValueError, match="sync_every must be a positive integer, got 0"):
        train(nn.Linear(4, 1), _mse, _regression(1), device="cpu", sync_every=0)


def test_amp_settings_per_device(monkeypatch):
    assert amp_settings(torch.device("cpu"), False) == (False, torch.float32, False)
    assert amp_settings(torch.device("cpu"), True) == (True, torch.bfloat16, False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_settings(torch.device("cuda"), True) == (True, torch.bfloat16, False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a T4
    assert amp_settings(torch.device("cuda"), True) == (True, torch.float16, True)
    with pytest.warns(UserWarning, match="not set up for device mps"):
        assert amp_settings(torch.device("mps"), True) == (False, torch.float32, False)
