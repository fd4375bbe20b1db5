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


@pytest.fixture(params=_device_names())
def device(request):
    """A ``torch.device`` to run a test on; ``cpu-no-onednn`` runs on the CPU with oneDNN disabled."""
    if request.param == "cpu-no-onednn":
        with torch.backends.mkldnn.flags(enabled=False):
            yield torch.device("cpu")
    else:
        yield torch.device(request.param)


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
