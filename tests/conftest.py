"""Shared pytest fixtures.

The network guard: tests must never touch the network (the course runs offline, and a test that
downloads is a test that breaks in CI). Every test runs with outgoing connections to anything but
the loopback interface refused, and with the Hugging Face libraries in offline mode.
"""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NEURALTEXT_PROGRESS", "0")


class NetworkAccessError(RuntimeError):
    """Raised when a test tries to reach the network."""


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Refuse any outgoing connection that is not to loopback (a test-only guard)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self, address):
        if not _is_local(address):
            raise NetworkAccessError(f"test tried to connect to {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self, address):
        if not _is_local(address):
            raise NetworkAccessError(f"test tried to connect to {address!r}")
        return real_connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost") and not _is_local((host,)):
            raise NetworkAccessError(f"test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield


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
