import random

import numpy as np
import pytest
import torch

from neuraltext.utils import DEVICE_ENV, get_device, progress, set_seed


@pytest.mark.parametrize("cuda,mps,expected", [
    (True, True, "cuda"),  # CUDA first, even on a machine that also has MPS
    (True, False, "cuda"),
    (False, True, "mps"),
    (False, False, "cpu"),
])
def test_device_defaults_to_best_available(monkeypatch, cuda, mps, expected):
    """The default device for each combination of available backends, written out (not recomputed
    with get_device's own logic)."""
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert get_device() == torch.device(expected)


def test_device_on_this_machine_without_gpu(monkeypatch):
    """This CPU-only test machine: nothing patched, the answer is the CPU."""
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("a GPU is present here")
    assert get_device() == torch.device("cpu")


def test_device_environment_variable_overrides(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cpu"


def test_argument_beats_environment(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    assert get_device("cpu").type == "cpu"


def test_unavailable_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device()
    with pytest.raises(RuntimeError, match="Unsupported device"):
        get_device("xla")


def _draw():
    return (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(),
            torch.nn.Linear(4, 2).weight.detach().flatten().tolist())


def test_same_seed_same_numbers():
    set_seed(123)
    first = _draw()
    set_seed(123)
    assert _draw() == first
    set_seed(124)
    assert _draw() != first


def test_seed_validation():
    with pytest.raises(ValueError):
        set_seed(-1)


def test_progress_iterates_and_can_be_disabled(monkeypatch):
    monkeypatch.setenv("NEURALTEXT_PROGRESS", "0")
    bar = progress(range(5), desc="x")
    assert bar.disable
    assert list(bar) == [0, 1, 2, 3, 4]
