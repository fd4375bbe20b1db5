"""Attention: the from-scratch path vs the fused kernel vs our default path, 128 to 4,096 tokens.

    .venv/bin/python benchmarks/attention.py            # 1-2 minutes on 2 CPU cores
    .venv/bin/python benchmarks/attention.py --quick    # 128..1,024 only
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attention.py   # stable timings on a busy machine

Threads: ``OMP_NUM_THREADS`` (default 2). On a shared machine whose cores are busy with other work,
two OpenMP threads spend most of their time waiting for each other (a 0.5 ms call can take 25 ms),
and the timings become noise; one thread gives reproducible ratios there.

What is timed: forward + backward of causal self-attention on ``(B=1, h=4, T, d_k=32)`` float32
queries, keys and values (the core of one multi-head layer), for

* ``readable``: :func:`neuraltext.transformer.multihead.scaled_dot_product_attention` (the formula step by step),
* ``fused``:    ``torch.nn.functional.scaled_dot_product_attention`` called directly (the anchor),
* ``default``:  :func:`neuraltext.transformer.multihead.attention` with its default backend, i.e. what
  :class:`neuraltext.transformer.multihead.MultiHeadAttention` runs unless told otherwise.

All three run in one process, alternating (the order rotates each round), on the same tensors;
the median over rounds is reported. Target: ``default / fused <= 1.10`` at every length.

Memory, two measures:

* **peak** -- the growth of the process's peak resident set size during one forward + backward,
  in MiB: ``/proc/self/clear_refs`` (``5``) resets the kernel's high-water mark ``VmHWM``, then
  ``VmHWM - VmRSS(before)``. This counts every byte the step touches (temporaries included). glibc is
  told (``mallopt``) to ``mmap`` every block of 64 KiB or more and to unmap it on free, so resident
  memory follows the tensors' allocations; the smallest lengths stay below that resolution (their
  blocks come from already-resident heap). Linux only (elsewhere: n/a).
  (``tracemalloc`` does not see PyTorch's allocations; on CUDA ``torch.cuda.max_memory_allocated``
  is used instead.)
* **saved** -- the bytes of the distinct tensors autograd keeps for the backward pass
  (``torch.autograd.graph.saved_tensors_hooks``): exact and noise-free. It is where the readable
  path stores the ``T x T`` weights (quadratic) and the fused kernel only its output and one
  log-sum-exp per row (linear).

Writes ``benchmarks/out/attention.png`` (time and memory against length, log-log).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from neuraltext.transformer import attention, scaled_dot_product_attention

OUT = Path(__file__).resolve().parent / "out"
B, H, D = 1, 4, 32


def paths():
    return {
        "readable": lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
        "fused": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "default": lambda q, k, v: attention(q, k, v, is_causal=True),
    }


def step(fn, q, k, v, grad):
    out = fn(q, k, v)
    out.backward(grad)
    q.grad = k.grad = v.grad = None


# ------------------------------------------------------------------------------------ memory
def _status(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"{field}:\s+(\d+) kB", text)
    return int(m.group(1)) * 1024 if m else None


def _malloc_returns_large_blocks() -> None:
    """Make glibc serve every block >= 64 KiB with its own mmap and unmap it on free (fixed
    thresholds: by default glibc raises them after the first large free and then recycles freed
    memory that stays resident, hiding later peaks). After this, resident memory follows tensors."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):
        pass


def peak_bytes(fn, q, k, v, grad) -> float | None:
    """Growth of peak memory during one forward + backward (see the module docstring)."""
    gc.collect()
    if q.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(fn, q, k, v, grad)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    before = _status("VmRSS")
    step(fn, q, k, v, grad)
    hwm = _status("VmHWM")
    return None if before is None or hwm is None else max(hwm - before, 0)


def saved_bytes(fn, q, k, v) -> int:
    """Bytes of the distinct storages autograd saves for backward."""
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[(s.data_ptr(), t.device)] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(q, k, v)
    del out
    return sum(storages.values())


# -------------------------------------------------------------------------------------- timing
def rounds_for(T: int) -> int:
    return {128: 60, 256: 40, 512: 24, 1024: 14, 2048: 8}.get(T, 5)


def bench(lengths, device):
    fns = paths()
    names = list(fns)
    rows = []
    for T in lengths:
        g = torch.Generator(device="cpu").manual_seed(T)
        q, k, v = (torch.randn(B, H, T, D, generator=g).to(device).requires_grad_(True) for _ in range(3))
        grad = torch.randn(B, H, T, D, generator=g).to(device)
        with torch.no_grad():  # the paths compute the same thing (checked here, not only in the tests)
            ref = fns["fused"](q, k, v)
            for name in names:
                err = (fns[name](q, k, v) - ref).abs().max().item()
                assert err < 1e-4, f"{name} differs from F.sdpa by {err} at T={T}"
        for name in names:  # warm-up
            step(fns[name], q, k, v, grad)
        times = {n: [] for n in names}
        for r in range(rounds_for(T)):
            order = names[r % 3:] + names[: r % 3]  # rotate who goes first
            for name in order:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                step(fns[name], q, k, v, grad)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - t0)
        row = {"T": T}
        for name in names:
            row[f"{name}_ms"] = 1e3 * statistics.median(times[name])
            peaks = [peak_bytes(fns[name], q, k, v, grad) for _ in range(2)]
            row[f"{name}_peak"] = None if peaks[0] is None else min(peaks) / 2**20
            row[f"{name}_saved"] = saved_bytes(fns[name], q, k, v) / 2**20
        rows.append(row)
        print_row(row)
        del q, k, v, grad
    return rows


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


HEADER = (f"{'T':>5} | {'readable ms':>11} {'fused ms':>9} {'default ms':>10} | {'readable/fused':>14} "
          f"{'default/fused':>13} | {'peak MiB r/f/d':>20} | {'saved MiB r/f/d':>20}")


def print_row(r):
    peaks = "/".join(fmt(r[f"{n}_peak"], ".1f") for n in ("readable", "fused", "default"))
    saved = "/".join(fmt(r[f"{n}_saved"], ".1f") for n in ("readable", "fused", "default"))
    print(f"{r['T']:>5} | {r['readable_ms']:>11.1f} {r['fused_ms']:>9.1f} {r['default_ms']:>10.1f} | "
          f"{r['readable_ms'] / r['fused_ms']:>14.2f} {r['default_ms'] / r['fused_ms']:>13.2f} | "
          f"{peaks:>20} | {saved:>20}", flush=True)


def growth(rows, key):
    """Exponent p in memory ~ T^p between the two longest lengths (1 = linear, 2 = quadratic)."""
    import math

    a, b = rows[-2], rows[-1]
    if a[key] in (None, 0) or b[key] in (None, 0):
        return None
    return math.log(b[key] / a[key]) / math.log(b["T"] / a["T"])


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = [r["T"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=100)
    for name, style in (("readable", "o-"), ("fused", "s-"), ("default", "x--")):
        axes[0].plot(T, [r[f"{name}_ms"] for r in rows], style, label=name)
        if rows[0][f"{name}_peak"] is not None:
            axes[1].plot(T, [max(r[f"{name}_peak"], 1e-2) for r in rows], style, label=name)
        axes[2].plot(T, [r[f"{name}_saved"] for r in rows], style, label=name)
    titles = ("time, forward + backward (ms)", "peak memory growth (MiB)", "saved for backward (MiB)")
    for ax, title in zip(axes, titles):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"causal self-attention, B={B}, h={H}, d_k={D}, threads: {torch.get_num_threads()}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot: {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="lengths 128..1024 only")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    _malloc_returns_large_blocks()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    lengths = [128, 256, 512, 1024] if args.quick else [128, 256, 512, 1024, 2048, 4096]
    print(f"torch {torch.__version__}, device {device}, threads: {torch.get_num_threads()}; "
          f"causal self-attention (B={B}, h={H}, d_k={D}), forward + backward, median of alternating rounds")
    print(HEADER)
    start = time.perf_counter()
    rows = bench(lengths, device)
    worst = max(r["default_ms"] / r["fused_ms"] for r in rows)
    print(f"\nworst default/fused time ratio: {worst:.2f} (target <= 1.10) -> "
          f"{'OK' if worst <= 1.10 else 'MISSED'}")
    for name in ("readable", "fused", "default"):
        p_saved, p_peak = growth(rows, f"{name}_saved"), growth(rows, f"{name}_peak")
        print(f"memory growth exponent between T={rows[-2]['T']} and {rows[-1]['T']} ({name}): "
              f"saved T^{fmt(p_saved, '.2f')}, peak T^{fmt(p_peak, '.2f')}")
    plot(rows, OUT / "attention.png")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0 if worst <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
