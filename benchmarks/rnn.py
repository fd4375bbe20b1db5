"""Our LSTM against torch.nn.LSTM: forward + backward, batch 32, 50 steps, hidden 256 (ENVIRONMENT.md).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/rnn.py [--repeats 20] [--quick] [--threads 1,2]

Times, in one process and alternating round-robin (the machine is shared and noisy), the steps
that lead from the course's equations to ``neuraltext.rnn.LSTM``:

  1. naive      the course form: four gates, each ``W_gate [h_{t-1}, x_t] + b`` (four matmuls a step)
  2. fused      the four gates stacked into one (4H, H+I) matrix: one matmul a step
  3. precompute ``W_xh x_t + b`` for all T steps in one matmul; only ``W_hh h_{t-1}`` in the loop,
               autograd through ``LSTMCell.step`` (``neuraltext.rnn.LSTM(..., manual_bptt=False)``)
  4. scripted  step 3 with the loop compiled by ``torch.jit.script`` (no Python per step)
  5. manual    step 3 with BPTT written out (``neuraltext.fast.bptt.LSTMLayerBPTT``): no autograd graph per step, and
               dL/dW_hh as one product over all steps (``neuraltext.rnn.LSTM``, the default)

(``torch.compile`` was tried too: ~2 minutes of compilation on this CPU and no gain over step 3.)

Step 5 also does its matrix products with oneDNN (``torch.ops.mkldnn._linear_pointwise``, the
library behind ``torch.nn.LSTM`` on CPUs) instead of the default BLAS, with ``W_hh`` pre-arranged once
per sequence in oneDNN's blocked layout (``_reorder_linear_weight``) rather than at each of the T
products: on the course machines (AMD EPYC) MKL's float32 GEMM is about half as fast as oneDNN's, and
once the Python overhead is gone the LSTM is GEMM-bound. ``--threads 1,2`` prints one table per thread
count: on a busy shared machine the one-thread table is the steadier one.

and prints each one's median time and its ratio to ``torch.nn.LSTM`` (the ATen C++ loop).

What each refinement of step 5 bought, measured in one process against the version before it
(alternating with ``torch.nn.LSTM``, median of the per-round ratios, 15-20 rounds; x torch.nn.LSTM's
time; a markdown table, which the performance appendix prints from here):

| refinement of LSTMLayerBPTT | 1 thread | 2 threads |
|---|---:|---:|
| oneDNN products, W_hh pre-arranged once per sequence (the start) | 1.24x | 1.52-1.55x |
| + tanh as 2 sigmoid(2z) - 1 (one sigmoid for all four gates), transposed operands read as views | 1.16x | 1.42x |
| + in place: the gates computed over the buffer holding W_xh x + b, one large temporary, not ~9 | 1.08x | 1.30x |

(Second line: the CPU sigmoid is ~3x faster than tanh on (32, 256), and the operands of the weight
products are read as transposed views instead of copied. Third line: the backward factors and
dL/dpre share one buffer too.)

At two threads most of what remains is GEMM time (the four (1600 x 256 x 1024) products and the
100 per-step ones take ~13 ms, about torch.nn.LSTM's whole run) plus ~3-4 ms of per-step small
operations, which do not split over threads; the full table above varies by +-0.1x from run to run.

Tried for the two-thread gap (2026-11-30; profile: at two threads ~75% of our time is oneDNN's
products, the rest small per-step operations): the constants of the per-step tanh (``2 sigmoid(2z)
- 1``, five in-place ops a step with a Python number) as 0-dim tensors, since an in-place op given a
Python number first converts it to a tensor (~3.9 us against ~1.3 us a call, 250 calls a sequence).
Same-process A/B against the previous ``rnn_fast.py``, bit-identical outputs, busy machine: new/old
median per-round ratio 0.975 and 0.945 at 1 thread (30 rounds each, load 5.9 and 2.8; 1.09x vs 1.12x
and 0.96x vs 1.10x torch.nn.LSTM) and 1.01 and 1.02 at 2 threads (40 and 30 rounds, load 6.8 and 3.6,
where torch.nn.LSTM itself ran 15-50x slower than on an idle machine: threads waiting for each
other more than the code). Kept for the one-thread gain; no gain seen at two threads.
This script after the change (15 rounds, load 4.2-4.8): 1.02x at 2 threads, 1.10x at 1 thread; the
busy machine slows torch.nn.LSTM's two threads as well (the autograd path read 1.50x instead of ~2.2x),
so the two-thread ratio still needs a run on a quiet machine.

Moving the fast path into ``neuraltext/rnn_fast.py`` and making it autocast-aware (2026-11-30) changed
no number: same-process A/B against the previous ``rnn.py``, 1 thread, 25 rounds, bit-identical outputs,
new/old median per-round ratio 0.98 (1.12x vs 1.14x torch.nn.LSTM).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from neuraltext.rnn import LSTM


class NaiveLSTM(nn.Module):
    """The course's LSTM verbatim: each gate multiplies the concatenation [h_{t-1}, x_t]."""

    def __init__(self, ours: LSTM):
        super().__init__()
        cell = ours.cells[0]
        W = torch.cat([cell.W_hh, cell.W_xh], dim=1).detach()  # (4H, H + I) acting on [h, x]
        self.W = nn.ParameterList(nn.Parameter(w.clone()) for w in W.chunk(4))  # W_f, W_i, W_C, W_o
        self.b = nn.ParameterList(nn.Parameter(b.clone()) for b in cell.b.detach().chunk(4))

    def forward(self, x: Tensor) -> Tensor:  # x (B, T, I)
        B, T, _ = x.shape
        H = self.W[0].size(0)
        h = c = x.new_zeros(B, H)
        outs = []
        for t in range(T):
            hx = torch.cat([h, x[:, t]], dim=1)
            f = torch.sigmoid(hx @ self.W[0].t() + self.b[0])
            i = torch.sigmoid(hx @ self.W[1].t() + self.b[1])
            g = torch.tanh(hx @ self.W[2].t() + self.b[2])
            o = torch.sigmoid(hx @ self.W[3].t() + self.b[3])
            c = f * c + i * g
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, 1)


class FusedLSTM(nn.Module):
    """Step 2: the four gate matrices stacked, one matmul per step, still on [h_{t-1}, x_t]."""

    def __init__(self, ours: LSTM):
        super().__init__()
        cell = ours.cells[0]
        self.W = nn.Parameter(torch.cat([cell.W_hh, cell.W_xh], dim=1).detach().clone())  # (4H, H+I)
        self.b = nn.Parameter(cell.b.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        H = self.W.size(0) // 4
        h = c = x.new_zeros(B, H)
        outs = []
        for t in range(T):
            gates = torch.addmm(self.b, torch.cat([h, x[:, t]], dim=1), self.W.t())
            f, i, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, 1)


@torch.jit.script
def _lstm_loop(xw: Tensor, W_hh: Tensor, h: Tensor, c: Tensor) -> Tensor:
    """The loop of step 3 (same equations as LSTMCell.step), compiled to TorchScript."""
    outs: list[Tensor] = []
    for t in range(xw.size(0)):
        gates = torch.addmm(xw[t], h, W_hh.t())
        f, i, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1)


class ScriptedLSTM(nn.Module):
    """Step 4: our module's parameters, the time loop in TorchScript."""

    def __init__(self, ours: LSTM):
        super().__init__()
        self.cell = ours.cells[0]

    def forward(self, x: Tensor) -> Tensor:
        xw = self.cell.project_input(x.transpose(0, 1))  # (T, B, 4H)
        h = x.new_zeros(x.size(0), self.cell.hidden_size)
        return _lstm_loop(xw, self.cell.W_hh, h, h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--input", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 repeats (smoke test)")
    parser.add_argument("--threads", default=os.environ.get("OMP_NUM_THREADS", "2"),
                        help="comma-separated thread counts, one table each (default: $OMP_NUM_THREADS or 2)")
    args = parser.parse_args()
    for n in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(n)
        run(args)
        print()


def run(args) -> None:
    repeats = 5 if args.quick else args.repeats
    torch.manual_seed(0)

    ref = nn.LSTM(args.input, args.hidden, batch_first=True)
    ours = LSTM.from_torch(ref)  # manual_bptt=True
    readable = LSTM.from_torch(ref)
    readable.manual_bptt = False
    x = torch.randn(args.batch, args.steps, args.input)

    contenders = {
        "torch.nn.LSTM": lambda: ref(x)[0],
        "1 naive (4 matmuls/step)": NaiveLSTM(ours),
        "2 fused gates (1 matmul/step)": FusedLSTM(ours),
        "3 + precomputed W_xh x (autograd)": lambda: readable(x)[0],
        "4 + torch.jit.script loop": ScriptedLSTM(ours),
        "5 + hand-written BPTT (neuraltext.rnn.LSTM)": lambda: ours(x)[0],
    }
    fns = {k: (v if not isinstance(v, nn.Module) else (lambda m=v: m(x))) for k, v in contenders.items()}

    # all compute the same thing
    expected = ref(x)[0]
    for name, fn in fns.items():
        err = (fn() - expected).abs().max().item()
        assert err < 1e-5, f"{name} differs from torch.nn.LSTM by {err}"

    def once(fn) -> float:
        start = time.perf_counter()
        out = fn()
        out.sum().backward()
        return time.perf_counter() - start

    for fn in fns.values():  # warm-up (TorchScript profiles its first runs)
        for _ in range(3):
            once(fn)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):  # alternate: each round times every contender once
        for name, fn in fns.items():
            times[name].append(once(fn))

    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    # per-round ratios: both sides timed back to back, so a slow moment affects both
    ratios = {k: statistics.median(a / b for a, b in zip(v, times["torch.nn.LSTM"])) for k, v in times.items()}
    print(f"LSTM fwd+bwd, batch {args.batch}, {args.steps} steps, input {args.input}, hidden {args.hidden}, "
          f"{torch.get_num_threads()} threads, {repeats} alternating rounds")
    print(f"{'implementation':46s} {'median ms':>10s} {'best ms':>8s} {'x torch.nn (median of per-round ratios)':>40s}")
    for name in times:
        print(f"{name:46s} {1e3 * med[name]:10.1f} {1e3 * best[name]:8.1f} {ratios[name]:10.2f}x")
    ratio = ratios["5 + hand-written BPTT (neuraltext.rnn.LSTM)"]
    print(f"ratio neuraltext.rnn.LSTM / torch.nn.LSTM = {ratio:.2f} (target <= 1.25); "
          f"readable autograd path: {ratios['3 + precomputed W_xh x (autograd)']:.2f}")
    # each round's ratio, for the spread (the same ROUNDS line as the other scripts print)
    per_round = [a / b for a, b in zip(times["5 + hand-written BPTT (neuraltext.rnn.LSTM)"], times["torch.nn.LSTM"])]
    n = torch.get_num_threads()  # the label run_all.py reads: "(1 thread)", "(2 threads)"
    print(f"ROUNDS rnn ours/torch.nn.LSTM ({n} thread{'s' * (n > 1)}): {' '.join(f'{x:.3f}' for x in per_round)}")


if __name__ == "__main__":
    main()
