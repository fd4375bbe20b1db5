import os
import random
import warnings

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
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        set_seed(-1)
    with pytest.raises(ValueError, match="got 1.5"):
        set_seed(1.5)


@pytest.fixture
def restore_determinism(monkeypatch):
    """set_seed(deterministic=True) changes process-wide settings: put them back after the test."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


def test_seed_alone_leaves_the_global_settings_alone(restore_determinism):
    """The default only seeds: no deterministic algorithms switched on, no cuBLAS variable set."""
    set_seed(3)
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_deterministic_is_explicit(restore_determinism, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # CUDA not started: no warning
        set_seed(3, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_deterministic_after_cuda_started_warns(restore_determinism, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.warns(UserWarning, match="CUDA is already initialised.*before the first CUDA call"):
        set_seed(0, deterministic=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_deterministic_keeps_a_cublas_setting_already_made(restore_determinism, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # set before CUDA started, by the user: nothing to warn about
        set_seed(0, deterministic=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_progress_iterates_and_can_be_disabled(monkeypatch):
    monkeypatch.setenv("NEURALTEXT_PROGRESS", "0")
    bar = progress(range(5), desc="x")
    assert bar.disable
    assert list(bar) == [0, 1, 2, 3, 4]


def test_device_fixture_switches_onednn_off_and_back(request, device):
    """The shared ``device`` fixture: its ``cpu-no-onednn`` case really runs without oneDNN."""
    expected_off = request.node.callspec.params["device"] == "cpu-no-onednn"
    assert torch.backends.mkldnn.enabled is (not expected_off)


def test_onednn_is_back_on_after_the_fixture():
    assert torch.backends.mkldnn.enabled
