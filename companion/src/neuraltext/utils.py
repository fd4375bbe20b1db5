"""Small helpers every chapter uses: which device to run on, seeding, progress bars.

Nothing here is specific to a model; it is the plumbing that keeps the notebooks short.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["DEVICE_ENV", "CUBLAS_WORKSPACE", "get_device", "set_seed", "progress", "describe_environment",
           "cpu_threads"]

#: Environment variable that overrides the automatic device choice, e.g. ``NEURALTEXT_DEVICE=cpu``.
DEVICE_ENV = "NEURALTEXT_DEVICE"

T = TypeVar("T")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Order of precedence: the ``preferred`` argument, then the ``NEURALTEXT_DEVICE`` environment
    variable, then the first available of CUDA, Apple's MPS and the CPU. Asking for a device that is
    not available raises a ``RuntimeError`` that says what is available, rather than failing later
    inside a kernel.
    """
    choice = preferred if preferred is not None else os.environ.get(DEVICE_ENV, "").strip() or None
    if choice is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")

    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"Device {str(choice)!r} was requested (argument or ${DEVICE_ENV}) but CUDA is not "
            f"available here; available: {', '.join(_available())}."
        )
    if device.type == "mps" and not _mps_available():
        raise RuntimeError(
            f"Device {str(choice)!r} was requested but MPS is not available here; "
            f"available: {', '.join(_available())}."
        )
    if device.type not in {"cpu", "cuda", "mps"}:
        raise RuntimeError(f"Unsupported device {str(choice)!r}; use one of: {', '.join(_available())}.")
    return device


def _available() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names.insert(0, "cuda")
    if _mps_available():
        names.insert(0, "mps")
    return names


#: cuBLAS's workspace setting for deterministic matrix products (CUDA >= 10.2); see PyTorch's notes
#: on reproducibility. cuBLAS reads it when CUDA starts, so it must be set before the first CUDA call.
CUBLAS_WORKSPACE = ":4096:8"


def set_seed(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (every device).

    The same seed then gives the same numbers on the same machine and PyTorch version for the CPU
    code of this course. Some GPU kernels (atomic additions in scatter/index_add backward, cuBLAS's
    split reductions) differ from run to run even with the same seed; ``deterministic=True`` asks
    for deterministic versions, which can be slower:

    * ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an operation without a
      deterministic version warns rather than raises), cuDNN's deterministic mode, no benchmarking;
    * ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless already set. cuBLAS reads it when CUDA starts: if
      CUDA is already initialised in this process, a warning says so (set the variable before the
      first CUDA call, or restart the kernel and call ``set_seed(..., deterministic=True)`` first).

    ``deterministic=False`` (the default) leaves these global settings as they are: it only seeds.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA device (lazily, without starting CUDA)
    if deterministic:
        if "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
            if torch.cuda.is_initialized():
                warnings.warn(
                    "set_seed(deterministic=True): CUDA is already initialised, so setting "
                    f"CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE} now may not reach cuBLAS and matrix "
                    "products may stay non-deterministic; set it before the first CUDA call",
                    stacklevel=2,
                )
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def progress(iterable: Iterable[T] | None = None, **kwargs: Any):
    """A progress bar (``tqdm.auto``: a widget in Jupyter, text in a terminal).

    Disabled when the environment variable ``NEURALTEXT_PROGRESS=0`` is set, which keeps logs of
    CI runs short. Keyword arguments go to ``tqdm`` (``total``, ``desc``, ``leave`` ...).
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", os.environ.get("NEURALTEXT_PROGRESS", "1") == "0")
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def describe_environment() -> dict[str, str]:
    """Versions and device in one dict, for the getting-started chapter and bug reports."""
    import platform

    import neuraltext

    info = {
        "python": platform.python_version(),
        "neuraltext": neuraltext.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(get_device()),
        "cpu threads": str(torch.get_num_threads()),
    }
    for name in ("transformers", "tokenizers", "sklearn", "gensim", "scipy"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            info[name] = "not installed"
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` CPU threads (``None``: leave the settings alone), restored afterwards.

    ``threadpoolctl`` limits the OpenMP pool PyTorch uses (and NumPy's BLAS); PyTorch's own
    intra-op setting is applied too, in case its build uses another pool. Small sequential models
    (a character-level RNN, word2vec's Hogwild workers, a rank-100 SVD) run faster on one thread than
    on two busy cores; callers pass ``None`` on a GPU, where the CPU only launches kernels.
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer or None, got {n!r}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        old = torch.get_num_threads()
        if old != n:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if old != n:
                torch.set_num_threads(old)
