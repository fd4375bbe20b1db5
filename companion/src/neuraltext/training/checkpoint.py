"""Checkpoints for exact resume: the random states of a run, and a file write that cannot be torn.

A run stopped mid-epoch and resumed ends with the same weights as one that never stopped only if
everything a step depends on is saved and restored: the model, the optimiser (Adam's moments), the
learning-rate scheduler, the gradient scaler, the position in the data (epoch and batch) -- which
:func:`neuraltext.training.loop.train` collects -- and every random generator a step draws from (dropout
masks, shuffles, sampling): Python's ``random``, NumPy's global generator, torch's CPU generator and
each CUDA device's, which :func:`rng_state` collects here.

The file is written to a temporary name, flushed to disk and renamed (``os.replace`` is atomic on
POSIX and Windows): a run killed while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state", "save_checkpoint", "load_checkpoint"]


def rng_state() -> dict[str, Any]:
    """Every random generator a training step may draw from, as plain lists and tensors (so the
    checkpoint loads with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (kind, keys.tolist(), pos, has_gauss, gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically: to ``path.tmp``, flushed to disk, then renamed
    over ``path``. A reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`neuraltext.training.loop.train` (tensors and plain Python values
    only, no pickled code: ``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=device, weights_only=True)
