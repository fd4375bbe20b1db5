"""Shared pytest fixtures.

The network guard: tests must never touch the network (the course runs offline, and a test that
downloads is a test that breaks in CI). ``pytest-socket``, switched on in ``pytest.ini``
(``--disable-socket --allow-unix-socket --allow-hosts=127.0.0.1,::1,localhost``), refuses every
connection to anything but the loopback interface; the Hugging Face libraries run in offline mode.
Notebooks under nbval are not Python test functions: pytest-socket leaves them alone, and their
kernels talk to pytest over ZeroMQ on loopback in any case.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NEURALTEXT_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state."""
    from neuraltext.utils import set_seed

    set_seed(0)
    yield


# ------------------------------------------------------------------------------------ devices
def _device_names() -> list[str]:
    """Where the reference-equality tests run: the CPU always, the CPU with oneDNN (mkldnn) switched
    off (the plain ATen kernels, closer to what CUDA runs than the CPU's oneDNN fast path), and a GPU
    when there is one (the same tests must pass on a Colab GPU)."""
    names = ["cpu", "cpu-no-onednn"]
    if torch.cuda.is_available():
        names.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


@contextmanager
def _quiet_onednn_tf32():
    """torch's mkldnn.flags() also re-applies oneDNN's TF32 setting, and on this CPU build warns that
    there is no Intel GPU to use it on: true, and noise in every test that runs without oneDNN."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        yield


@pytest.fixture(params=_device_names())
def device(request):
    """A ``torch.device`` to run a test on; ``cpu-no-onednn`` runs on the CPU with oneDNN disabled."""
    if request.param == "cpu-no-onednn":
        flags = torch.backends.mkldnn.flags(enabled=False)
        with _quiet_onednn_tf32():
            flags.__enter__()
        try:
            yield torch.device("cpu")
        finally:
            with _quiet_onednn_tf32():
                flags.__exit__(None, None, None)
    else:
        yield torch.device(request.param)


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
