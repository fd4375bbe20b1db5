"""Data parallelism with PyTorch's own engine: ``torch.distributed`` launched by ``torchrun``.

Data-parallel training runs one copy of the model per process (one per GPU, or a few CPU processes);
each process takes a different slice of every global batch, and after the backward pass the
gradients are averaged over the ``P`` processes (an *all-reduce*):

    g = (1/P) sum_p g_p,    g_p = grad of the mean loss on process p's B examples,

which is the gradient of the mean loss over the global batch of ``P * B`` examples: every process
then takes the same optimiser step and the copies stay identical. ``DistributedDataParallel`` does
the all-reduce during the backward pass (bucket by bucket, overlapping communication and
computation); ``DistributedSampler`` gives each process its own ``1/P`` of a shuffled dataset.

A script becomes distributed with three calls, and runs unchanged as one plain process::

    from neuraltext.training import distributed
    device = distributed.setup()                       # reads torchrun's RANK, WORLD_SIZE ...
    loader = distributed.shard_loader(dataset, batch_size=32, seed=0)
    train(model, loss_fn, loader, device=device, checkpoint="run.pt")  # wraps the model in DDP
    distributed.cleanup()

launched with ``torchrun --nproc_per_node=2 script.py`` (``gloo`` on the CPU, ``nccl`` on GPUs).
Only rank 0 prints, evaluates and writes files (:func:`is_main`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["setup", "cleanup", "is_distributed", "rank", "world_size", "is_main", "wrap", "shard_loader",
           "gather_objects"]


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0, or the only process: the one that logs and saves."""
    return rank() == 0


def setup(backend: str | None = None) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and return this process's device: ``cuda:<LOCAL_RANK>``
    with the ``nccl`` backend when there are GPUs, else the CPU with ``gloo``. Without torchrun's
    variables it does nothing and returns the default device (a plain single-process run).

    Each process on a machine needs a GPU of its own: ``LOCAL_RANK`` must be below the number of
    visible GPUs (``--nproc_per_node`` at most that number), else a ``RuntimeError`` says so."""
    from neuraltext.utils import get_device

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return get_device()
    use_cuda = torch.cuda.is_available()
    backend = backend or ("nccl" if use_cuda else "gloo")
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
    if use_cuda:
        local_rank, n_gpus = int(os.environ.get("LOCAL_RANK", 0)), torch.cuda.device_count()
        if local_rank >= n_gpus:
            raise RuntimeError(
                f"LOCAL_RANK={local_rank} but this machine shows {n_gpus} GPU(s) (cuda:0..cuda:{n_gpus - 1}): "
                f"start at most {n_gpus} process(es) per node (torchrun --nproc_per_node={n_gpus}), or hide "
                f"the GPUs (CUDA_VISIBLE_DEVICES=\"\") to run every process on the CPU with gloo")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return device


def cleanup() -> None:
    """Leave the process group (call once at the end of a distributed script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` inside a process group, else ``model`` itself."""
    if not is_distributed() or isinstance(model, nn.parallel.DistributedDataParallel):
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard_loader(dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = False, collate_fn: Any = None, pin_memory: bool | None = None) -> DataLoader:
    """A ``DataLoader`` over this process's share of a map-style ``dataset`` (a ``DistributedSampler``
    seeded with ``seed``; :func:`neuraltext.training.loop.train` calls its ``set_epoch`` each epoch). With
    one process it is an ordinary loader over the whole dataset, shuffled the same way.

    ``batch_size`` is per process: the global batch is ``batch_size * world_size()``. ``pin_memory``
    (default: whether CUDA is available, as :func:`setup` then trains there) puts batches in page-locked
    memory: only from there does the training loop's ``.to(device, non_blocking=True)`` copy overlap
    with the GPU's work; from ordinary memory it is a plain blocking copy."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    sampler = DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle, seed=seed,
                                 drop_last=drop_last)
    pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn, pin_memory=pin_memory)


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
