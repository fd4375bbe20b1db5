"""The appendix's exercises: a distributed sampler's shard, and where a bfloat16 sum stalls.

References: ``torch.utils.data.DistributedSampler`` without shuffling (what the shared loop uses under
``torchrun``), and a bfloat16 running sum computed by torch.
"""

from __future__ import annotations

import torch
from torch.utils.data import DistributedSampler

from neuraltext.labs.check import Case, Exercise


def _shard_reference(n: int, rank: int, world_size: int) -> list[int]:
    return list(DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False))


def _shard_cases() -> list[Case]:
    return [
        Case("12 examples, rank 1 of 4", (12, 1, 4)),
        Case("10 examples, rank 3 of 4 (padding)", (10, 3, 4)),
        Case("10 examples, rank 0 of 4", (10, 0, 4)),
        Case("one process", (7, 0, 1)),
        Case("fewer examples than processes", (2, 4, 5)),
    ]


def bf16_stall(step: float = 0.01, max_steps: int = 100_000) -> float:
    """The value at which ``s = s + step`` in bfloat16, from 0, stops changing."""
    s, x = torch.zeros((), dtype=torch.bfloat16), torch.tensor(step, dtype=torch.bfloat16)
    for _ in range(max_steps):
        t = s + x
        if t == s:
            return float(s)
        s = t
    raise RuntimeError(f"no stall within {max_steps} steps")


EXERCISES = [
    Exercise(
        id="A.shard",
        title="the examples one process gets from DistributedSampler",
        reference=_shard_reference,
        cases=_shard_cases,
        hint="pad the list 0..n-1 by repeating it from the start up to a multiple of world_size, then take "
             "every world_size-th element starting at rank.",
    ),
    Exercise(
        id="A.bf16_stall",
        title="where a bfloat16 running sum of 0.01 stops growing",
        reference=bf16_stall,
        rtol=0, atol=0,
    ),
]
