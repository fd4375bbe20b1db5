"""neuraltext.training.loop: one entry per step in the history without a host synchronisation per step,
non-finite losses caught, mixed precision settings per device."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuraltext.training import amp_settings, train

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


# ------------------------------------------------- accumulation, schedule, evaluation, checkpoints
def _float64_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1)).double()


def _shuffled(n=12, seed=1):
    """A callable giving each epoch the regression batches in a new order drawn from torch's global
    generator (so an exact resume must restore the random state of the epoch's start)."""
    data = [(x.double(), y.double()) for x, y in _regression(n, seed)]
    return lambda: [data[i] for i in torch.randperm(n).tolist()]


def test_accumulation_equals_the_larger_batch():
    """accumulate=2 on batches of 8 takes the same SGD steps as batches of 16 (float64, 1e-12)."""
    small = [(x.double(), y.double()) for x, y in _regression(8)]
    large = [(torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]])) for a, b in zip(small[::2], small[1::2])]
    m1, m2 = nn.Linear(4, 1).double(), nn.Linear(4, 1).double()
    m2.load_state_dict(m1.state_dict())
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    h1 = train(m1, _mse, small, accumulate=2, optimizer=sgd(m1), device="cpu")
    h2 = train(m2, _mse, large, optimizer=sgd(m2), device="cpu")
    assert h1.steps == h2.steps == 4
    assert h1.loss == pytest.approx(h2.loss, rel=1e-12)
    for p, q in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_warmup_cosine_schedule_and_eval_every():
    """lr rises linearly over 4 steps then falls along a cosine to 0 at step 20; eval every 5 steps."""
    model = nn.Linear(4, 1)
    history = train(model, _mse, _regression(10), epochs=2, lr=0.1, warmup_steps=4, decay="cosine",
                    evaluate=lambda m: {"w": 0.0}, eval_every=5, device="cpu")
    expected = [0.1 * (t + 1) / 5 if t < 4 else 0.1 * 0.5 * (1 + math.cos(math.pi * (t - 4) / 16)) for t in range(20)]
    assert history.lr == pytest.approx(expected, rel=1e-9)
    assert [e.get("step", e.get("epoch")) for e in history.eval] == [5, 10, 1, 15, 20, 2]


def test_bad_schedule_and_checkpoint_arguments_are_named():
    with pytest.raises(ValueError, match="decay must be 'cosine', 'linear' or None, got 'exp'"):
        train(nn.Linear(4, 1), _mse, _regression(1), decay="exp", device="cpu")
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint"):
        train(nn.Linear(4, 1), _mse, _regression(1), checkpoint_every=2, device="cpu")
    with pytest.raises(ValueError, match="accumulate must be a positive integer, got 0"):
        train(nn.Linear(4, 1), _mse, _regression(1), accumulate=0, device="cpu")


def _run(tmp_path, model, stop_at=None, resume=False, amp=False):
    """2 epochs of 12 shuffled batches, dropout, AdamW, warm-up + cosine, accumulation 2, clipping,
    checkpoint every 2 steps; ``stop_at`` raises inside loss_fn on that (0-based) call."""
    calls = {"n": 0}

    def loss_fn(m, batch):
        if calls["n"] == stop_at:
            raise KeyboardInterrupt("simulated interruption")
        calls["n"] += 1
        return _mse(m, batch)

    return train(model, loss_fn, _shuffled(), epochs=2, lr=0.05, warmup_steps=2, decay="cosine", accumulate=2,
                 clip_norm=1.0, device="cpu", checkpoint=tmp_path / "run.pt", checkpoint_every=2, resume=resume,
                 sync_every=4, seed=3, amp=amp)


def test_resume_mid_epoch_equals_the_uninterrupted_run(tmp_path):
    """Interrupted on the 2nd epoch's 6th batch (last checkpoint after step 8 = 4 batches into epoch 2,
    mid-epoch), resumed into a fresh model: the same weights and losses, bit for bit, as a run that
    never stopped (random states, shuffle order, schedule and optimiser moments all restored)."""
    reference = _float64_model()
    ref_history = _run(tmp_path / "a", reference)
    interrupted = _float64_model()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", interrupted, stop_at=12 + 5)
    ckpt = torch.load(tmp_path / "b" / "run.pt", weights_only=True)
    assert ckpt["position"] == {"step": 8, "epoch": 1, "batch": 4}
    fresh = _float64_model(seed=99)  # different initial weights: all overwritten by the checkpoint
    history = _run(tmp_path / "b", fresh, resume=True)
    for p, q in zip(reference.parameters(), fresh.parameters()):
        assert torch.equal(p, q)
    assert history.loss == ref_history.loss and history.lr == ref_history.lr
    assert not list((tmp_path / "b").glob("*.tmp"))  # atomic writes leave no temporary file


def test_checkpoint_at_the_end_resumes_to_nothing_more(tmp_path):
    model = _float64_model()
    _run(tmp_path, model)
    before = [p.clone() for p in model.parameters()]
    history = _run(tmp_path, model, resume=True)
    assert history.steps == 12 and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_gradients_left_before_training_do_not_leak_into_the_first_step():
    batches = _regression(2)
    clean, dirty = nn.Linear(4, 1), nn.Linear(4, 1)
    dirty.load_state_dict(clean.state_dict())
    (dirty.weight.sum() * 1e3).backward()  # e.g. a demonstration cell called backward() earlier
    for m in (clean, dirty):
        train(m, _mse, batches, optimizer=torch.optim.SGD(m.parameters(), lr=0.1), device="cpu")
    assert torch.equal(clean.weight, dirty.weight) and torch.equal(clean.bias, dirty.bias)
