"""`make gpu-check`: the GPU path of the course in one command, on a CUDA machine (~8 minutes).

    .venv/bin/python tools/gpu_check.py            # every step
    .venv/bin/python tools/gpu_check.py --only amp ddp

The steps are the ones the test suite already parametrises, run on ``cuda``:

1. ``tests``: the device-parametrised reference tests (the ``device`` fixture of tests/conftest.py
   adds a ``cuda`` parameter when a GPU is present) and the tests marked ``cuda``: ``pytest -k cuda``;
2. ``amp``: each model family of ``test_bf16_autocast_trains_every_chapter_model``
   (tests/test_distributed.py, same builders and ids) trained a few steps through the shared loop
   (:func:`neuraltext.training.train`, ``amp=True``) in bfloat16 and in float16 (the loop's float16
   path with its GradScaler: the one older GPUs take, chosen here by reporting no bfloat16 support);
   the loss must be finite at every step and lower at the end than at the start;
3. ``ddp``: the script of tests/test_distributed.py launched by torchrun with 2 processes when 2 GPUs
   exist (1 otherwise; nccl), its weights compared with the same script in one process on the
   global batch;
4. ``bench``: the GPU side of ``make bench``: ``benchmarks/attention.py --quick --device cuda``.

It prints one table (step, result, seconds, detail) and exits 0 when every step passed, 1 otherwise.
On a machine without CUDA it prints that it needs CUDA and exits 2 before running anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
BUDGET_S = {"tests": 300, "amp": 60, "ddp": 90, "bench": 90}   # 9 min at most, ~5 expected
AMP_STEPS = 12
NO_CUDA = "make gpu-check needs a CUDA GPU: torch.cuda.is_available() is False on this machine"


def cuda_message() -> str | None:
    """None when CUDA is usable, else the message saying why the check cannot run."""
    import torch

    if torch.cuda.is_available():
        return None
    build = f"torch {torch.__version__}, " + ("built with CUDA " + torch.version.cuda if torch.version.cuda
                                              else "a CPU-only build")
    return f"{NO_CUDA} ({build}). Run it on a GPU machine (e.g. Colab with a GPU runtime)."


def _subprocess(cmd: list[str], timeout: float, env: dict | None = None) -> tuple[bool, str]:
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return False, f"no result within {timeout:.0f} s"
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode == 0, (tail[-1] if tail else f"exit {proc.returncode}")


# ------------------------------------------------------------------------------------ the steps
# the `cuda` parameters of the device fixture (tests/conftest.py) and the tests marked `cuda`
TESTS_COMMAND = ["-m", "pytest", "tests", "-k", "cuda", "-q", "-p", "no:cacheprovider"]


def step_tests() -> tuple[bool, str]:
    """The reference tests on cuda (``TESTS_COMMAND``)."""
    return _subprocess([sys.executable, *TESTS_COMMAND], BUDGET_S["tests"])


def amp_families() -> list[tuple[str, Callable]]:
    """(id, builder) of the model families the AMP test parametrises, read from that test."""
    sys.path.insert(0, str(TESTS))
    try:
        import test_distributed
    finally:
        sys.path.remove(str(TESTS))
    mark = next(m for m in test_distributed.test_bf16_autocast_trains_every_chapter_model.pytestmark
                if m.name == "parametrize")
    return list(zip(mark.kwargs["ids"], mark.args[1]))


@contextmanager
def float16_amp():
    """The shared loop takes float16 + GradScaler on a GPU without bfloat16: report none."""
    import torch

    with mock.patch.object(torch.cuda, "is_bf16_supported", lambda *a, **k: False):
        yield


def train_family(build: Callable, dtype_name: str, device: str = "cuda") -> str:
    """Train one family ``AMP_STEPS`` steps on its batch; raise unless the loss is finite and falls."""
    import torch

    from neuraltext.training import train

    torch.manual_seed(0)
    model, loss_fn, batches = build()
    with float16_amp() if dtype_name == "float16" else nullcontext():
        history = train(model, loss_fn, batches * AMP_STEPS, amp=True, device=device, lr=1e-2, sync_every=1)
    loss = torch.tensor(history.loss)
    if not torch.isfinite(loss).all():
        raise AssertionError(f"non-finite loss in {dtype_name}: {history.loss}")
    if not loss[-3:].mean() < loss[:3].mean():
        raise AssertionError(f"loss did not fall in {dtype_name}: {loss[0]:.4f} -> {loss[-1]:.4f}")
    return f"{loss[0]:.3f} -> {loss[-1]:.3f}"


def step_amp() -> tuple[bool, str]:
    done, failed = [], []
    for name, build in amp_families():
        for dtype_name in ("bfloat16", "float16"):
            try:
                train_family(build, dtype_name)
                done.append(f"{name}/{dtype_name[:4]}")
            except Exception as err:  # noqa: BLE001 - reported in the table, the other families still run
                failed.append(f"{name}/{dtype_name}: {type(err).__name__}: {str(err)[:120]}")
    return not failed, "; ".join(failed) if failed else f"{len(done)} runs of {AMP_STEPS} steps, loss finite and falling"


def step_ddp() -> tuple[bool, str]:
    """tests/test_distributed.py's script under torchrun (2 processes if 2 GPUs, else 1) against the
    same script in one process on the global batch: the same weights."""
    import torch

    sys.path.insert(0, str(TESTS))
    try:
        import test_distributed as td
    finally:
        sys.path.remove(str(TESTS))
    nproc = min(2, torch.cuda.device_count())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        proc = td._launch(tmp, tmp / "many", 8 * 2 // nproc, nproc)
        try:
            out, _ = proc.communicate(timeout=BUDGET_S["ddp"])
        except subprocess.TimeoutExpired:
            td._kill(proc, tmp / "many")
            return False, f"torchrun: no result within {BUDGET_S['ddp']} s"
        if proc.returncode != 0:
            return False, f"torchrun exit {proc.returncode}: {out.strip().splitlines()[-1] if out.strip() else ''}"
        td._run_in_process(tmp, tmp / "one", 16)
        many, one = torch.load(tmp / "many" / "final.pt"), torch.load(tmp / "one" / "final.pt")
        worst = max((many["model"][k] - v).abs().max().item() for k, v in one["model"].items())
    ok = worst < 1e-10 and many["loss"][-1] < 0.5 * many["loss"][0]
    return ok, f"{nproc} process(es) (nccl) vs 1: max |weight diff| {worst:.1e}, loss {many['loss'][0]:.3f} -> {many['loss'][-1]:.3f}"


def step_bench() -> tuple[bool, str]:
    return _subprocess([sys.executable, "benchmarks/attention.py", "--quick", "--device", "cuda"], BUDGET_S["bench"])


STEPS: dict[str, tuple[str, Callable[[], tuple[bool, str]]]] = {
    "tests": ("reference tests on cuda (pytest -k cuda)", step_tests),
    "amp": ("AMP bf16 + fp16 steps of each model family (shared loop)", step_amp),
    "ddp": ("DDP through torchrun (2 processes with 2 GPUs, else 1)", step_ddp),
    "bench": ("GPU side of make bench (attention --device cuda)", step_bench),
}


def format_table(results: list[tuple[str, bool, float, str]]) -> str:
    lines = ["| step | result | seconds | detail |", "|---|---|---:|---|"]
    lines += [f"| {name} | {'passed' if ok else 'FAILED'} | {secs:.0f} | {detail} |" for name, ok, secs, detail in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(STEPS), help="steps to run (default: all)")
    args = parser.parse_args(argv)
    message = cuda_message()
    if message is not None:
        print(message, file=sys.stderr)
        return 2
    import torch

    print(f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}, torch {torch.__version__}", flush=True)
    results = []
    for key in args.only or STEPS:
        name, run = STEPS[key]
        start = time.perf_counter()
        try:
            ok, detail = run()
        except Exception as err:  # noqa: BLE001 - one broken step must not hide the others
            ok, detail = False, f"{type(err).__name__}: {str(err)[:200]}"
        results.append((name, ok, time.perf_counter() - start, detail))
        print(f"-- {name}: {'passed' if ok else 'FAILED'} ({results[-1][2]:.0f} s)", flush=True)
    print()
    print(format_table(results))
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
