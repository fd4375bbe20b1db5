"""Writes the appendix's exercises section (labs form). Run: .venv/bin/python tools/exercises/chA.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1 and 2 are", "Exercises 3 and 4 are experiments with the appendix's runs."),
    code("""import torch
from neuraltext import labs"""),
    exercise("ex-A-shard", "One process's share of the data", r"""
Under `torchrun`, the shared loop gives each process its part of every epoch through
`torch.utils.data.DistributedSampler`. Write `shard(n, rank, world_size)` returning the list of example
indices that process `rank` of `world_size` gets from a data set of `n` examples, without shuffling:
the sampler pads the list $0, \dots, n-1$ by repeating it from its start until its length is a multiple
of `world_size` (so that every process takes the same number of steps), then gives process $r$ the
positions $r, r + w, r + 2w, \dots$ The check compares you with the sampler itself."""),
    solution_start("ex-A-shard", "Pad, then stride:"),
    code('''def shard(n, rank, world_size):
    """The indices DistributedSampler(shuffle=False) gives process `rank` of `world_size`."""
    ### BEGIN SOLUTION
    per_process = -(-n // world_size)                # ceil(n / world_size)
    total = per_process * world_size
    indices = list(range(n))
    while len(indices) < total:                      # repeat from the start (n may be < world_size)
        indices += list(range(n))[: total - len(indices)]
    return indices[rank:total:world_size]
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("A.shard", shard)'),
    exercise("ex-A-bf16", "Where a bfloat16 sum stalls", r"""
Start from $s = 0$ and add $0.01$ again and again, every number stored in bfloat16 (8 significant
bits). At which value does $s$ stop changing? Work it out from the spacing of bfloat16 numbers
($2^{e-7}$ between $2^e$ and $2^{e+1}$) and assign it to `stall`; you may check your reasoning with a
few lines of torch."""),
    solution_start("ex-A-bf16", r"""
Adding $x$ to $s$ changes nothing once $x$ is less than half the spacing of the numbers near $s$.
Between 2 and 4 the spacing is $2^{-6} = 0.0156$: 0.01 is more than half of it, so each addition rounds
*up* by a full 0.0156 (the sum runs ahead of the true one); from 4 on the spacing is $2^{-5} = 0.031$ and
0.01 is less than half of it: the sum stays at 4. Accumulate in float32 (as autocast does for
reductions) to avoid this."""),
    code('''### BEGIN SOLUTION
s = torch.zeros((), dtype=torch.bfloat16)
while (t := s + torch.tensor(0.01, dtype=torch.bfloat16)) != s:
    s = t
stall = float(s)
### END SOLUTION'''),
    solution_end(),
    code('labs.check("A.bf16_stall", stall)'),
    exercise("ex-A-nproc", "Four processes", r"""
Run `launch(...)` above with `--nproc_per_node=4` and batches of 8. Do the weights still agree with the
one-process run with batches of 32? Why?"""),
    solution("ex-A-nproc", r"""
Yes, to ~1e-12: four shards of 8 are the same 32 examples (`DistributedSampler` gives process $r$ the
positions $r, r + 4, \dots$ of the same shuffle), and the all-reduce averages the four mean gradients,
which is the mean over the 32."""),
    exercise("ex-A-accumulate", "Gradient accumulation", r"""
Train the small GPT above with `accumulate=2` and batches half as large. Compare its losses with the
original run."""),
    solution("ex-A-accumulate", r"""
The losses agree up to rounding: `accumulate=2` divides each half-batch loss by 2 and adds the
gradients before the step, which is the gradient of the mean over the full batch when the two halves
hold as many tokens each (`tests/test_train.py` checks this in float64)."""),
]

if __name__ == "__main__":
    replace_exercises(Path(__file__).resolve().parents[2] / "book" / "A_performance.ipynb", CELLS)
