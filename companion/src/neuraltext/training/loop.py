"""One small training loop, shared by the chapters that train a network.

It does what every chapter needs and nothing more: move batches to the device, compute the loss,
back-propagate, clip the gradient norm (the fix for exploding gradients in recurrent networks), step
the optimiser, and record what happened so a loss curve can be drawn. The chapter-specific part is
the ``loss_fn(model, batch) -> loss`` callable: the loop does not know whether the model is a
word2vec, an LSTM or a transformer.

For speed, so that the same loop is right on a GPU:

* **No host synchronisation per step.** Reading a loss with ``.item()`` (or ``float(...)``, or
  ``if not torch.isfinite(loss)``) makes the CPU wait for the GPU to finish every queued kernel,
  so the GPU idles while Python prepares the next batch. The losses and gradient norms stay on the
  device and are copied to :class:`TrainHistory` every ``sync_every`` steps (and at the end of
  each epoch); a non-finite loss is detected there, and the error names the step it happened at.
* **Mixed precision** (``amp=True``): the forward pass runs under ``torch.autocast`` in bfloat16
  on the CPU and on GPUs that support it, in float16 otherwise (with a ``GradScaler``, since
  float16 gradients underflow). The weights and the optimiser stay in float32.

For longer runs:

* **Gradient accumulation** (``accumulate=k``): one optimiser step per ``k`` batches, on the mean of
  their gradients, i.e. the gradient of a batch ``k`` times larger,
  ``g = (1/k) sum_i grad L_i`` -- a large effective batch that fits in a small memory.
* **A learning-rate schedule** (``warmup_steps``, ``decay``): linear warm-up from 0, then cosine or
  linear decay to 0 over the run, ``lr_t = lr * t / W`` for ``t < W``, then
  ``lr * (1 + cos(pi (t - W) / (T - W))) / 2`` (cosine), see :func:`warmup_schedule`.
* **Checkpoints and exact resume** (``checkpoint=path``, ``checkpoint_every=N``, ``resume=True``):
  model, optimiser, scheduler, scaler, the random states and the position in the data (epoch and
  batch), so that a run stopped mid-epoch and resumed ends with the same weights as one that never
  stopped; written atomically (see :mod:`neuraltext.training.checkpoint`).
* **Several processes** (``torchrun``): when ``torch.distributed`` is initialised (see
  :mod:`neuraltext.training.distributed`), the model is wrapped in ``DistributedDataParallel``, which averages
  the gradients over the processes; only rank 0 shows a progress bar, evaluates and writes files.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuraltext.training import distributed as dist_utils
from neuraltext.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from neuraltext.training.history import Recorder, TrainHistory
from neuraltext.utils import get_device, progress, set_seed

__all__ = ["train", "to_device", "amp_settings", "warmup_schedule"]


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or tensors nested in tuples/lists/dicts, to ``device``. The copy overlaps with the
    GPU's work only from pinned memory (``distributed.shard_loader`` pins on CUDA machines)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


def amp_settings(device: torch.device, amp: bool) -> tuple[bool, torch.dtype, bool]:
    """``(autocast enabled, autocast dtype, use a GradScaler)`` for ``train(amp=...)`` on ``device``:
    bfloat16 on the CPU and on CUDA GPUs that support it (no scaler needed: bfloat16 has float32's
    range), float16 + ``GradScaler`` on older CUDA GPUs; elsewhere (MPS) AMP is off, with a warning."""
    if not amp:
        return False, torch.float32, False
    if device.type == "cpu":
        return True, torch.bfloat16, False
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return True, torch.bfloat16, False
        return True, torch.float16, True
    warnings.warn(f"train(amp=True): mixed precision is not set up for device {device}; training in float32",
                  stacklevel=3)
    return False, torch.float32, False


def warmup_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                    decay: str | None = "cosine") -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then ``decay`` ("cosine", "linear" or None = constant)
    to 0 at ``total_steps``: a factor on each parameter group's learning rate, stepped per step."""
    if decay not in ("cosine", "linear", None):
        raise ValueError(f"decay must be 'cosine', 'linear' or None, got {decay!r}")
    if warmup_steps < 0 or total_steps < 1:
        raise ValueError(f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps} and {total_steps}")

    def factor(t: int) -> float:
        if t < warmup_steps:
            return (t + 1) / (warmup_steps + 1)  # never exactly 0: the first step already learns
        if decay is None:
            return 1.0
        progress_ = min(1.0, (t - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1 + math.cos(math.pi * progress_)) if decay == "cosine" else 1.0 - progress_

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class _Loop:
    """Everything one training run carries from step to step (and saves in a checkpoint)."""

    model: nn.Module  # the user's module (saved, evaluated)
    net: nn.Module  # what loss_fn receives: the model, or its DistributedDataParallel wrapper
    loss_fn: Callable[[nn.Module, Any], torch.Tensor]
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]  # the model's trainable parameters (clipped together)
    scheduler: Any
    scaler: torch.amp.GradScaler
    device: torch.device
    autocast: tuple[bool, torch.dtype]
    max_norm: float
    history: TrainHistory
    recorder: Recorder
    step: int = 0  # optimiser steps done
    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # batches of the current epoch consumed
    epoch_rng: dict[str, Any] | None = None  # this process's random state at the start of the epoch
    resume_rng: dict[str, Any] | None = None  # set by load(): the state to continue from

    def state(self) -> dict[str, Any]:
        self.recorder.sync()
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(), "history": asdict(self.history),
            "position": {"step": self.step, "epoch": self.epoch, "batch": self.batch},
            "rng": dist_utils.gather_objects({"now": rng_state(), "epoch_start": self.epoch_rng}),
        }

    def load(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        h = ckpt["history"]
        self.history.__init__(**{k: list(v) if isinstance(v, list) else v for k, v in h.items()})
        self.step, self.epoch, self.batch = (ckpt["position"][k] for k in ("step", "epoch", "batch"))
        rng = ckpt["rng"][dist_utils.rank()]
        self.epoch_rng = rng["epoch_start"]
        self.resume_rng = rng["now"]


# ------------------------------------------------------------------------------- the loop itself
def _optimizer_step(loop: _Loop, micro_batches: list[Any]) -> None:
    """One optimiser step on the mean gradient of ``micro_batches`` (gradient accumulation)."""
    k = len(micro_batches)
    total = None
    loop.optimizer.zero_grad(set_to_none=True)  # (gradients left by code outside the loop too)
    for i, batch in enumerate(micro_batches):
        # under DDP, only the last micro-batch all-reduces the gradients (the others just accumulate)
        no_sync = getattr(loop.net, "no_sync", None)
        sync_ctx = no_sync() if no_sync is not None and i < k - 1 else contextlib.nullcontext()
        with sync_ctx:
            with torch.autocast(loop.device.type, dtype=loop.autocast[1], enabled=loop.autocast[0]):
                loss = loop.loss_fn(loop.net, to_device(batch, loop.device))
            loop.scaler.scale(loss / k if k > 1 else loss).backward()
        total = loss.detach() if total is None else total + loss.detach()
    loop.scaler.unscale_(loop.optimizer)
    norm = torch.nn.utils.clip_grad_norm_(loop.params, loop.max_norm)  # a device tensor: no sync
    lr = loop.optimizer.param_groups[0]["lr"]
    loop.scaler.step(loop.optimizer)  # (with float16's GradScaler this step synchronises, unavoidably)
    loop.scaler.update()
    if loop.scheduler is not None:
        loop.scheduler.step()
    loop.step += 1
    loop.recorder.add(total / k if k > 1 else total, norm, lr)


def _evaluate(loop: _Loop, evaluate: Callable | None, key: str, value: int) -> None:
    if evaluate is None or not dist_utils.is_main():
        return
    loop.recorder.sync()
    was_training = loop.model.training
    loop.model.eval()
    with torch.no_grad():
        loop.history.eval.append({key: value, **evaluate(loop.model)})
    loop.model.train(was_training)


def _epoch_iterator(loop: _Loop, batches: Any) -> tuple[Iterable[Any], int | None]:
    """The batches of epoch ``loop.epoch``, skipping those a resumed checkpoint already consumed.
    The random state of the epoch's start is restored first (so a shuffle repeats), then the
    state of the moment the checkpoint was taken (so dropout draws the same masks)."""
    resuming = getattr(loop, "resume_rng", None)
    if resuming is not None and loop.batch > 0:
        set_rng_state(loop.epoch_rng)
    else:
        if resuming is not None:
            set_rng_state(resuming)
            resuming = loop.resume_rng = None
        loop.epoch_rng = rng_state()
    epoch_batches = batches() if callable(batches) else batches
    sampler = getattr(epoch_batches, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle per epoch, the same on every rank
        sampler.set_epoch(loop.epoch)
    total = len(epoch_batches) if hasattr(epoch_batches, "__len__") else None
    iterator = iter(epoch_batches)
    if resuming is not None:  # mid-epoch: skip what was consumed, then continue from the saved moment
        iterator = itertools.islice(iterator, loop.batch, None)
        set_rng_state(resuming)
        loop.resume_rng = None
    return iterator, total


def _run_epoch(loop: _Loop, batches: Any, *, epochs: int, accumulate: int, max_steps: int | None,
               evaluate: Callable | None, eval_every: int | None, checkpoint: Path | None,
               checkpoint_every: int | None, desc: str) -> bool:
    """Train one epoch (or its rest, when resuming); returns True when ``max_steps`` was reached."""
    loop.net.train()
    iterator, total = _epoch_iterator(loop, batches)
    quiet = {} if dist_utils.is_main() else {"disable": True}  # one progress bar, rank 0's
    bar = progress(total=total, initial=loop.batch, desc=f"{desc} {loop.epoch + 1}/{epochs}", leave=False, **quiet)
    while max_steps is None or loop.step < max_steps:
        micro = list(itertools.islice(iterator, accumulate))
        if not micro:
            break
        loop.batch += len(micro)
        _optimizer_step(loop, micro)
        bar.update(len(micro))
        if not bar.disable and not loop.recorder.losses and loop.history.loss:
            bar.set_postfix(loss=f"{loop.history.loss[-1]:.3f}")  # only when the recorder just synced
        if eval_every and loop.step % eval_every == 0:
            _evaluate(loop, evaluate, "step", loop.step)
        if checkpoint is not None and checkpoint_every and loop.step % checkpoint_every == 0:
            _save(loop, checkpoint)
    bar.close()
    loop.recorder.sync()
    return max_steps is not None and loop.step >= max_steps


def _save(loop: _Loop, path: Path) -> None:
    state = loop.state()  # every rank takes part (random states are gathered from all of them)
    if dist_utils.is_main():
        save_checkpoint(path, state)


def _check(epochs: int, clip_norm: float | None, sync_every: int, accumulate: int, eval_every: int | None,
           checkpoint_every: int | None, checkpoint: Any, resume: Any) -> None:
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if clip_norm is not None and clip_norm <= 0:
        raise ValueError(f"clip_norm must be positive or None, got {clip_norm}")
    for name, value in (("sync_every", sync_every), ("accumulate", accumulate)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    if checkpoint_every is not None and checkpoint is None:
        raise ValueError("checkpoint_every needs checkpoint=<path> (where to write)")
    if resume is True and checkpoint is None:
        raise ValueError("resume=True resumes from checkpoint=<path>: give the path (or resume=<path>)")


def _total_steps(batches: Any, epochs: int, accumulate: int, max_steps: int | None) -> int:
    if max_steps is not None:
        return max_steps
    sized = batches() if callable(batches) else batches
    if not hasattr(sized, "__len__"):
        raise ValueError("a decaying schedule needs the number of steps: give max_steps, or batches with a len()")
    return epochs * math.ceil(len(sized) / accumulate)


def train(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor],
          batches: Iterable[Any] | Callable[[], Iterable[Any]], *, epochs: int = 1, lr: float = 1e-3,
          optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, warmup_steps: int = 0,
          decay: str | None = None, clip_norm: float | None = None, accumulate: int = 1,
          device: str | torch.device | None = None, amp: bool = False,
          evaluate: Callable[[nn.Module], dict[str, float]] | None = None, eval_every: int | None = None,
          max_steps: int | None = None, desc: str = "train", history: TrainHistory | None = None,
          sync_every: int = 50, checkpoint: str | Path | None = None, checkpoint_every: int | None = None,
          resume: bool | str | Path = False, seed: int | None = None) -> TrainHistory:
    """Train ``model`` by gradient descent on ``loss_fn(model, batch)``.

    Each step: ``loss = loss_fn(model, batch)`` for ``accumulate`` batches; ``(loss / accumulate)
    .backward()`` for each; if ``clip_norm`` is set, rescale the gradient ``g`` to
    ``g * min(1, clip_norm / ||g||)`` (``clip_grad_norm_``); optimiser step; scheduler step.
    The module docstring says more on each option (syncing, mixed precision, schedules, resume, DDP).

    Args:
        model: moved to ``device`` (default :func:`neuraltext.utils.get_device`); under ``torchrun``
            ``loss_fn`` receives its ``DistributedDataParallel`` wrapper: call ``model(...)`` in it.
        loss_fn: ``(model, batch) -> scalar tensor``; the batch arrives already on the device.
        batches: an iterable of batches, or a zero-argument callable returning a fresh iterable for
            each epoch (generators are exhausted after one pass); a ``DataLoader`` whose sampler has
            ``set_epoch`` (``DistributedSampler``) gets it called.
        epochs, lr: passes over ``batches``; the learning rate of the default optimiser (AdamW, no
            weight decay) when ``optimizer`` is None.
        scheduler: stepped after every optimiser step; or built from ``warmup_steps``/``decay``
            (:func:`warmup_schedule`, over ``max_steps`` or ``epochs`` x steps per epoch).
        clip_norm: maximum global gradient norm, or None. ``accumulate``: batches per optimiser step.
        amp: mixed precision (:func:`amp_settings`).
        evaluate: ``model -> dict`` called under ``no_grad`` in eval mode on rank 0 after each epoch
            (``{"epoch": e, ...}`` in ``history.eval``) and every ``eval_every`` steps (``{"step": s, ...}``).
        max_steps: stop after this many optimiser steps in total (counting those of a resumed run).
        history: continue an earlier history (to train in several calls and keep one curve).
        sync_every: copy the losses from the device every this many steps (1: a non-finite loss stops
            training before its update is applied; otherwise up to ``sync_every - 1`` steps later).
        checkpoint, checkpoint_every: file saved (rank 0, atomically) every ``checkpoint_every``
            steps, at the end of each epoch and at the end.
        resume: True (from ``checkpoint``, if it exists) or a path: continue that run exactly (a
            callable ``batches`` keeping its own generator in a closure restarts its first epoch).
        seed: if given, :func:`neuraltext.utils.set_seed` first (Python, NumPy, torch).

    Returns the :class:`TrainHistory` (losses, gradient norms before clipping, learning rates, evals),
    one entry per step.
    """
    _check(epochs, clip_norm, sync_every, accumulate, eval_every, checkpoint_every, checkpoint, resume)
    if seed is not None:
        set_seed(seed)
    loop = _setup(model, loss_fn, batches, epochs=epochs, lr=lr, optimizer=optimizer, scheduler=scheduler,
                  warmup_steps=warmup_steps, decay=decay, clip_norm=clip_norm, accumulate=accumulate,
                  device=device, amp=amp, max_steps=max_steps, history=history, sync_every=sync_every)
    _resume(loop, checkpoint, resume)
    start = time.perf_counter()
    _run_epochs(loop, batches, epochs=epochs, accumulate=accumulate, max_steps=max_steps, evaluate=evaluate,
                eval_every=eval_every, checkpoint=Path(checkpoint) if checkpoint is not None else None,
                checkpoint_every=checkpoint_every, desc=desc)
    model.eval()
    loop.history.seconds += time.perf_counter() - start
    return loop.history


def _resume(loop: _Loop, checkpoint: str | Path | None, resume: bool | str | Path) -> None:
    """Load the checkpoint to resume from: ``checkpoint`` when ``resume is True`` and it exists, or ``resume``."""
    resume_from = Path(checkpoint) if resume is True else Path(resume) if resume else None
    if resume_from is not None and (resume is not True or resume_from.is_file()):
        loop.load(load_checkpoint(resume_from, loop.device))


def _run_epochs(loop: _Loop, batches: Any, *, epochs: int, checkpoint: Path | None, evaluate: Callable | None,
                **epoch_kw: Any) -> None:
    """Epochs from ``loop.epoch`` to ``epochs``, each followed by an evaluation and a checkpoint;
    stops early when ``max_steps`` (in ``epoch_kw``) is reached."""
    while loop.epoch < epochs:
        stopped = _run_epoch(loop, batches, epochs=epochs, evaluate=evaluate, checkpoint=checkpoint, **epoch_kw)
        if not stopped:
            loop.epoch, loop.batch = loop.epoch + 1, 0
        _evaluate(loop, evaluate, "epoch", loop.epoch + stopped)
        if checkpoint is not None:
            _save(loop, checkpoint)
        if stopped:
            break


def _setup(model: nn.Module, loss_fn: Callable, batches: Any, *, epochs: int, lr: float, optimizer: Any,
           scheduler: Any, warmup_steps: int, decay: str | None, clip_norm: float | None, accumulate: int,
           device: Any, amp: bool, max_steps: int | None, history: TrainHistory | None,
           sync_every: int) -> _Loop:
    """Device, optimiser, schedule, scaler, DDP wrapper: the parts of a run that are not the loop."""
    device = get_device(device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    if scheduler is None and (warmup_steps or decay is not None):
        scheduler = warmup_schedule(optimizer, warmup_steps, _total_steps(batches, epochs, accumulate, max_steps),
                                    decay)
    autocast, amp_dtype, use_scaler = amp_settings(device, amp)
    history = history if history is not None else TrainHistory()
    return _Loop(model=model, net=dist_utils.wrap(model, device), loss_fn=loss_fn, optimizer=optimizer, params=params,
                 scheduler=scheduler, scaler=torch.amp.GradScaler(device.type, enabled=use_scaler),
                 device=device, autocast=(autocast, amp_dtype),
                 max_norm=clip_norm if clip_norm is not None else math.inf,
                 history=history, recorder=Recorder(history, sync_every))
