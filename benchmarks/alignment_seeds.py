"""Chapter 9's SFT / PPO / DPO comparison over several seeds, with intervals.

    .venv/bin/python benchmarks/alignment_seeds.py [--seeds 5] [--jobs 1] [--out PATH]

Each seed runs the chapter's whole recipe at its default scale (:func:`neuraltext.align.seeds.run_seed`:
base model, SFT, reward model, PPO at beta = 0.2, the reward-hacking PPO settings, DPO at beta = 0.1)
on the CPU and evaluates every policy on the 19 held-out prompts x 4 samples and the 200 held-out
pairs. The summary (:func:`neuraltext.align.seeds.summarize`: mean, standard error, 95 % Student-t
interval over the seeds) and every seed's rows go to benchmarks/results/alignment_seeds.json, which
chapter 9 reads. ``--jobs J`` runs J seeds at a time, each in its own process on one thread (on a
loaded machine one-thread processes lose less to OpenMP's waiting than one two-thread process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from neuraltext.align.seeds import Recipe, run_seed, summarize

OUT = Path(__file__).resolve().parent / "results" / "alignment_seeds.json"


def _one_seed(seed: int) -> tuple[dict, float]:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = run_seed(seed, Recipe())
    print(f"seed {seed}: {time.perf_counter() - t0:.0f} s; good answers (oracle) "
          + ", ".join(f"{k} {v['good answers (oracle)']:.2f}" for k, v in rows.items()), flush=True)
    return rows, time.perf_counter() - t0


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ..., n - 1), >= 2")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at a time, one process and one thread each")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error(f"--seeds must be >= 2 (an interval needs a spread), got {args.seeds}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    recipe, seeds = Recipe(), list(range(args.seeds))
    with ProcessPoolExecutor(args.jobs) as pool:
        done = list(pool.map(_one_seed, seeds))  # in seed order
    runs, seconds = [rows for rows, _ in done], [s for _, s in done]
    result = {"command": f".venv/bin/python benchmarks/alignment_seeds.py --seeds {args.seeds} --jobs {args.jobs}",
              "seeds": list(range(args.seeds)), "summary": summarize(runs), "runs": runs,
              "recipe": {"ppo_beta": recipe.ppo.beta, "ppo_lr": recipe.ppo.lr, "dpo_beta": recipe.dpo_beta,
                         "ppo_steps": recipe.ppo_steps, "prompts_per_rollout": recipe.ppo.batch_size,
                         "samples_per_prompt": recipe.ppo.samples_per_prompt, "baseline": recipe.ppo.baseline,
                         "hacking": recipe.hacking, "eval_samples_per_prompt": recipe.samples_per_prompt},
              "machine": {"platform": platform.platform(), "torch": torch.__version__,
                          "threads_per_seed": 1, "jobs": args.jobs, "load_average": os.getloadavg(),
                          "seconds_per_seed": seconds, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", args.out)
    return result


if __name__ == "__main__":
    main()
