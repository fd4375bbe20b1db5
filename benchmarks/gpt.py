"""neuraltext.gpt.llama against transformers' LlamaForCausalLM on the packaged SmolLM2-135M-Instruct.

    .venv/bin/python benchmarks/gpt.py [--quick] [--threads 1,2] [--rounds 5] [--no-memory] [--no-steps]

Same weights (the GGUF converted once by neuraltext.weights.registry), float32, batch 1, in one process,
the contenders alternated round-robin (the machine is shared and noisy; the starting contender
rotates every round), at each thread count (``torch.set_num_threads``):

* prefill 128 / 512: one forward over a prompt of that many tokens that builds the KV cache and
  gives the last position's logits (what generation needs: transformers' ``generate`` asks for
  ``logits_to_keep=1``, and so do we);
* decode: greedy tokens/s with the KV cache, prompt of 128 tokens, 64 new tokens: ``63 / (t_64 - t_1)``
  with ``t_n`` the time of a whole greedy generation of n tokens, so the prefill cancels out
  (ours: ``neuraltext.gpt.sampling.generate(temperature=0)``; transformers: ``generate(do_sample=False)``);
* peak memory: each contender in its own subprocess (load the model, generate 2 tokens so that every
  weight page is resident, then prefill 512 and decode 64): the process's peak resident set
  (``VmHWM`` in /proc/self/status, reset by writing 5 to ``/proc/self/clear_refs`` after the
  warm-up) minus the resident set at that moment: the memory the run itself adds (activations,
  cache, temporaries); and that peak in all (Python, torch, the weights, the run). tracemalloc would
  not see torch's allocations.

Reported: median time per contender and the median of the per-round ratios ours / transformers
(< 1: ours faster), against transformers' eager attention and its SDPA path, with the
smallest and largest per-round ratio (their spread is the noise: a miss inside it reads as a tie). Then the step table
(at the first thread count): each refinement of ours undone in turn (the variants are defined
below, sharing our weights), timed right after the final model on the prefill of 512 tokens and on
16 cached one-token forwards; median of the per-round ratios (> 1: the refinement helped). Results
go to benchmarks/results/gpt.json (``--quick``: gpt_quick.json, which ``make bench`` reads).

Measured 2026-11-30 (AMD EPYC, 2 cores shared with other jobs: load average 14-18 during the run,
so +-7% is noise; 3 rounds; ``--threads 1,2 --rounds 3``), time ratio ours / transformers:

  line (1 thread)        ours      tf eager    tf SDPA    x eager   x SDPA
  prefill 128            1.73 s    1.77 s      1.82 s     1.00x     1.03x
  prefill 512            6.66 s    7.16 s      6.68 s     1.00x     1.02x
  decode 64 tokens       3.6 t/s   3.4 t/s     3.3 t/s    0.92x     0.95x

  2 threads: not measurable in that run. With ~16 runnable processes on 2 cores, two OpenMP threads
  collapse (prefill 512 took 22-37 s against 6.7 s on one thread), and the collapse hits the
  contenders unevenly (ours 0.59-0.83x, decode 0.23-0.73x): those figures are in the JSON but
  say nothing about the implementations. Re-run ``--threads 2`` on a quiet machine.

  peak memory, before the cache fix below     ours      tf eager   tf SDPA
  added by prefill 512 + decode 64            137 MB    112 MB     41 MB
  peak resident set of the process            1065 MB   1061 MB    991 MB

  (after loading: ours 927 MB, transformers 949 MB; ``from_pretrained`` also built a second tokenizer
  in our process, discarded.)

Where our extra memory went (2026-12-05, profile of one prefill of 512 tokens, 1 thread:
``torch.profiler`` with ``profile_memory=True``, and the bytes of the storages the returned cache
keeps alive): the cache's k and v were *views* of the fused projections (k a slice of the rotated
(B, T, h+g, d) q/k tensor, v a slice of the (B, T, h+2g, d) qkv product), so the 30 layers' cache
kept 101.2 MB alive for 22.5 MB of keys and values (4.5x: 12 and 15 heads held for 3). The
transients (``aten::mm`` 304 MB over 121 calls, ``aten::mul`` 317 MB over RoPE and RMSNorm,
``aten::silu`` 90 MB) are freed within each layer and barely move the peak. Fixed in
``GroupedQueryAttention.forward``: the prefill copies k and v out (``contiguous``; the cached
steps' ``torch.cat`` copies anyway); tests/test_llama.py checks that the cache owns only its bytes.
After the fix (``--memory-only --new-tokens 16``, load average 19):

  peak memory (1 thread, own process each)    ours      tf eager   tf SDPA
  added by prefill 512 + decode 16            22 MB     133 MB     41 MB
  peak resident set of the process            979 MB    1105 MB    1013 MB

Timed after the cache fix (2026-12-05 00:47 UTC, load average 19 on 2 cores: far from idle;
``--rounds 3 --new-tokens 16 --threads 1,2 --no-steps --no-memory``), median ratio (min-max over rounds):

  line (1 thread)        ours      tf eager    tf SDPA    x eager             x SDPA
  prefill 128            3.57 s    3.53 s      3.40 s     1.03x (1.01-1.03)   1.05x (1.02-1.08)
  prefill 512            7.47 s    8.90 s      7.53 s     0.85x (0.84-0.97)   1.21x (0.91-1.63)
  decode 16 tokens       3.9 t/s   3.4 t/s     3.1 t/s    0.87x (0.83-0.89)   0.87x (0.81-0.87)

  line (2 threads)       ours      tf eager    tf SDPA    x eager             x SDPA
  prefill 128            13.7 s    18.3 s      10.6 s     0.75x (0.72-0.92)   1.05x (0.87-1.75)
  prefill 512            21.7 s    33.3 s      37.7 s     0.84x (0.65-1.51)   0.86x (0.58-0.88)
  decode 16 tokens       1.7 t/s   1.3 t/s     1.2 t/s    0.74x (0.23-1.27)   0.67x (0.47-0.80)

  (2 threads collapsed again under the load, 2-5x slower than 1 thread: those spreads say nothing
  about the implementations.)
  Under this load the prefill lines' spread spans 1.0 (prefill 512 vs SDPA: 0.91-1.63): a tie, not
  a measured loss; only decode is ahead beyond the noise (the idle run below settles it).

Prefill is matrix-product bound (the same MKL sgemm calls on both sides, ~109 GFLOP at 512 tokens)
and decode at batch 1 is bound by reading the 540 MB of weights once per token: the two
implementations do the same arithmetic, so prefill can at best tie, and decode gains a few percent from our
shorter Python path (transformers' generate adds its cache object, mask builders and logits
processors to every step).

Idle machine, 2026-12-05 (``--threads 1,2 --rounds 5``; load average 1.0 at the start, the end of the
2-thread rounds and the memory runs overlapped other jobs: load 6 at the end, hence the 2.1-2.3 highs),
after the last two changes below (W_gate and W_up as two matrices; SiLU's output multiplied in place):

  line (1 thread)        ours      tf eager    tf SDPA    x eager             x SDPA
  prefill 128            351 ms    371 ms      367 ms     0.95x (0.91-0.96)   0.95x (0.93-0.98)
  prefill 512            1435 ms   1584 ms     1448 ms    0.91x (0.81-0.94)   0.99x (0.98-1.02)
  decode 64 tokens       17.9 t/s  16.1 t/s    16.2 t/s   0.91x (0.81-0.93)   0.90x (0.88-0.97)

  line (2 threads)       ours      tf eager    tf SDPA    x eager             x SDPA
  prefill 128            238 ms    248 ms      250 ms     0.95x (0.89-1.21)   0.97x (0.89-1.19)
  prefill 512            801 ms    918 ms      839 ms     0.88x (0.87-0.90)   0.98x (0.84-1.01)
  decode 64 tokens       17.6 t/s  15.9 t/s    16.4 t/s   0.91x (0.90-2.25)   0.94x (0.93-2.12)

  peak memory (own process each)              ours      tf eager   tf SDPA
  added by prefill 512 + decode 64            15 MB     40 MB      59 MB

The same run ten minutes earlier, before the change to two matrices (the in-place product already in;
load 1.0 throughout), had prefill 512 against
SDPA at 1.01x (0.99-1.04) at 1 thread and 1.01x (1.00-1.02) at 2: a profile of that prefill (torch.profiler,
3 passes) put the difference in ``aten::silu``, 30 ms for ours against 16 ms, because SiLU read a
column half of the fused (B, T, 2 d_ff) gate/up product, a strided view; with two matrices it reads a
contiguous one, and the products cost the same. Every line is now at or below transformers' time, at 1
and at 2 threads; prefill 512 against SDPA is the closest (a tie within the spread).

The refinements, each undone against the final model (1 thread, same idle run):

  refinement undone                          prefill 512   decode (16 steps)
  q/k/v as three matrices                       0.99x         1.03x
  (tried) gate/up as one fused matrix           1.01x         1.02x
  q, k turned apart, after the transpose        1.01x         1.01x
  k/v repeated per head (no enable_gqa)         1.04x         1.04x
  cos/sin recomputed each forward               1.00x         0.99x
  (tried) preallocated k/v buffer, not cat      1.00x         1.00x

Only ``enable_gqa`` is clearly outside the noise: on one attention layer alone (200 interleaved
repeats) turning q and k in the (B, T, heads, d) layout was 5% faster at 512 tokens, and
``enable_gqa`` 12% faster than ``repeat_interleave`` at 512 tokens and 26% at decode, but the layer
products and the de-embedding dominate the whole model. The cache grows by ``torch.cat``: a
preallocated buffer bought nothing measurable (the cat copies ~7 MB per token against 540 MB of
weights read) and would let two continuations of one ``past`` overwrite each other.
Tried and not kept: oneDNN products with pre-packed weights
(``torch.ops.mkldnn._linear_pointwise``) ran the large products 1.1-1.3x faster than MKL on this
AMD CPU (whole model, 3 rounds: prefill 512 1.06x, decode 1.13x faster) but change the logits by
1.8e-4 and would put an optimised path in the course's model file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402

from neuraltext.weights import registry as pretrained  # noqa: E402
from neuraltext.gpt import generate
from neuraltext.gpt import GroupedQueryAttention, Llama, RotaryEmbedding, SwiGLU, from_pretrained

NAME = "smollm2-135m-instruct"
TEXT = ("The river rose slowly through the spring, and by May the lower fields were under water. "
        "Farmers moved their animals to the hills, the school closed for a week, and the town's "
        "engineers argued about whether the old dam would hold. It held, but the debate changed how "
        "the valley thought about floods, and a new plan for the river was written that summer. ")
RESULTS = Path(__file__).parent / "results" / "gpt.json"


# ------------------------------------------------------------------------------ loading
def load_ours():
    return from_pretrained(NAME)  # (model, tokenizer)


def load_reference():
    folder = pretrained._converted(pretrained.resolve(NAME)).path
    return transformers.LlamaForCausalLM.from_pretrained(folder, attn_implementation="sdpa").eval()


def prompt(tok, n: int) -> torch.Tensor:
    ids = tok(TEXT * (1 + 4 * n // len(TEXT.split())), return_tensors="pt").input_ids[:, :n]
    assert ids.shape[1] == n
    return ids


# ------------------------------------------------------------------------------ the contenders
def ours_prefill(model, ids):
    return model(ids, logits_to_keep=1)


def ref_prefill(ref, impl, ids):
    ref.set_attn_implementation(impl)
    return ref(ids, logits_to_keep=1, use_cache=True)


def ours_generate(model, ids, n):
    out = generate(model, ids, max_new_tokens=n, temperature=0.0)
    assert out.shape[1] == ids.shape[1] + n
    return out


def ref_generate(ref, impl, ids, n):
    ref.set_attn_implementation(impl)
    out = ref.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                       min_new_tokens=n, pad_token_id=2)
    assert out.shape[1] == ids.shape[1] + n
    return out


# ------------------------------------------------------------------------------ steps undone
def _attend(self, q, k, v, mask, past, T, repeat_kv=False):
    """The end of GroupedQueryAttention.forward, shared by the variants below."""
    if past is not None:
        k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
    if repeat_kv:  # k and v copied h/g times, as transformers' eager path does
        r = self.h // self.g
        y = F.scaled_dot_product_attention(q, k.repeat_interleave(r, 1), v.repeat_interleave(r, 1),
                                           attn_mask=mask, is_causal=mask is None and T > 1)
    else:
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and T > 1,
                                           enable_gqa=self.g != self.h)
    B = q.shape[0]
    return self.W_o(y.transpose(1, 2).reshape(B, T, self.h * self.d)), (k, v)


class UnfusedAttention(GroupedQueryAttention):
    """Step undone: W_q, W_k, W_v as three matrices (views of our fused one: no copy)."""

    def forward(self, x, cos, sin, mask, past=None):
        B, T, _ = x.shape
        h, g, d = self.h, self.g, self.d
        W_q, W_k, W_v = self.W_qkv.weight.split((h * d, g * d, g * d))
        q = RotaryEmbedding.rotate(F.linear(x, W_q).view(B, T, h, d), cos, sin).transpose(1, 2)
        k = RotaryEmbedding.rotate(F.linear(x, W_k).view(B, T, g, d), cos, sin).transpose(1, 2)
        v = F.linear(x, W_v).view(B, T, g, d).transpose(1, 2)
        return _attend(self, q, k, v, mask, past, T)


class RopeAfterTransposeAttention(GroupedQueryAttention):
    """Step undone: q and k turned separately, after the transpose to (B, heads, T, d) (a strided
    layout that the broadcast products read slowly)."""

    def forward(self, x, cos, sin, mask, past=None):
        B, T, _ = x.shape
        qkv = self.W_qkv(x).view(B, T, self.h + 2 * self.g, self.d).transpose(1, 2)
        q, k, v = qkv.split((self.h, self.g, self.g), dim=1)
        cos, sin = cos.transpose(1, 2), sin.transpose(1, 2)  # (B, 1, T, d)
        q, k = RotaryEmbedding.rotate(q, cos, sin), RotaryEmbedding.rotate(k, cos, sin)
        return _attend(self, q, k, v, mask, past, T)


class RepeatKVAttention(GroupedQueryAttention):
    """Step undone: k and v copied once per query head (``repeat_interleave``) instead of ``enable_gqa``."""

    def forward(self, x, cos, sin, mask, past=None):
        B, T, _ = x.shape
        h, g = self.h, self.g
        qkv = self.W_qkv(x).view(B, T, h + 2 * g, self.d)
        qk = RotaryEmbedding.rotate(qkv[:, :, : h + g], cos, sin)
        q, k, v = qk[:, :, :h].transpose(1, 2), qk[:, :, h:].transpose(1, 2), qkv[:, :, h + g:].transpose(1, 2)
        return _attend(self, q, k, v, mask, past, T, repeat_kv=True)


def _append(cache, new, room: int = 256):
    """cache (B, g, S, d), a view into a buffer with room for more tokens: write ``new`` (B, g, T, d)
    after it and return the longer view, without copying the cached part (a new buffer when full)."""
    B, g, T, d = new.shape
    if cache is None:
        buf = new.new_empty(B, g, T + room, d)
        buf[:, :, :T] = new
        return buf[:, :, :T]
    S, capacity = cache.shape[2], cache.stride(1) // d
    if cache.stride(2) != d or cache.stride(3) != 1 or S + T > capacity:
        buf = new.new_empty(B, g, S + T + room, d)
        buf[:, :, :S] = cache
        cache = buf[:, :, :S]
    full = cache.as_strided((B, g, S + T, d), cache.stride(), cache.storage_offset())
    full[:, :, S:] = new
    return full


class PreallocatedCacheAttention(GroupedQueryAttention):
    """Alternative tried (not kept): k and v written into preallocated buffers (room for 256 more
    tokens) instead of ``torch.cat`` at each step. Not kept: extending a cache then overwrites the slot
    after it in the shared buffer, so two continuations of one ``past`` would corrupt each other."""

    def forward(self, x, cos, sin, mask, past=None):
        B, T, _ = x.shape
        h, g = self.h, self.g
        qkv = self.W_qkv(x).view(B, T, h + 2 * g, self.d)
        qk = RotaryEmbedding.rotate(qkv[:, :, : h + g], cos, sin)
        q, k, v = qk[:, :, :h].transpose(1, 2), qk[:, :, h:].transpose(1, 2), qkv[:, :, h + g:].transpose(1, 2)
        k = _append(None if past is None else past[0], k)
        v = _append(None if past is None else past[1], v)
        return _attend(self, q, k, v, mask, None, T)


class FusedSwiGLU(SwiGLU):
    """Tried and not kept: W_gate and W_up as one (2 d_ff, D) product (as W_q, W_k, W_v are); SiLU then
    reads a strided half of its output. The fused matrix is a concatenation of ours (a copy, made once)."""

    def forward(self, x):
        if getattr(self, "_W_gate_up", None) is None:
            self._W_gate_up = torch.cat((self.W_gate.weight, self.W_up.weight))
        gate, up = F.linear(x, self._W_gate_up).chunk(2, dim=-1)
        return self.W_down(F.silu(gate).mul_(up))


class RecomputedRope(RotaryEmbedding):
    """Step undone: cos and sin computed from the positions at every forward (as transformers does)."""

    def tables(self, position_ids, dtype, length=0):
        angles = position_ids[..., None].float() * self.inv_freq  # (B, T, d/2)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos()[:, :, None].to(dtype), angles.sin()[:, :, None].to(dtype)


def swap_class(modules, cls):
    """Change the class of modules in place (same parameters); returns a function that undoes it."""
    old = [(m, m.__class__) for m in modules]
    for m in modules:
        m.__class__ = cls
    return lambda: [setattr(m, "__class__", c) for m, c in old]


def steps_undone(ours: Llama):
    """name -> (apply, which tasks it concerns). apply() changes ours in place and returns undo."""
    attn = [b.attn for b in ours.blocks]
    ffn = [b.ffn for b in ours.blocks]
    return {
        "q/k/v as three matrices": lambda: swap_class(attn, UnfusedAttention),
        "(tried) gate/up as one fused matrix": lambda: swap_class(ffn, FusedSwiGLU),
        "q, k turned apart, after the transpose": lambda: swap_class(attn, RopeAfterTransposeAttention),
        "k/v repeated per head (no enable_gqa)": lambda: swap_class(attn, RepeatKVAttention),
        "cos/sin recomputed each forward": lambda: swap_class([ours.rope], RecomputedRope),
        "(tried) preallocated k/v buffer, not cat": lambda: swap_class(attn, PreallocatedCacheAttention),
    }


# ------------------------------------------------------------------------------ timing
def timed(fn) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - start


def run_threads(n_threads: int, ours, tok, ref, rounds: int, new_tokens: int, do_steps: bool) -> dict:
    torch.set_num_threads(n_threads)
    ids = {n: prompt(tok, n) for n in (128, 512)}
    impls = ["ours", "eager", "sdpa"]
    tasks = {
        "prefill 128": {"ours": lambda: ours_prefill(ours, ids[128]),
                        "eager": lambda: ref_prefill(ref, "eager", ids[128]),
                        "sdpa": lambda: ref_prefill(ref, "sdpa", ids[128])},
        "prefill 512": {"ours": lambda: ours_prefill(ours, ids[512]),
                        "eager": lambda: ref_prefill(ref, "eager", ids[512]),
                        "sdpa": lambda: ref_prefill(ref, "sdpa", ids[512])},
    }

    def decode(gen):  # tokens/s over new_tokens - 1 decode steps (the prefill cancels out)
        t1 = timed(lambda: gen(1))
        tn = timed(lambda: gen(new_tokens))
        return (new_tokens - 1) / max(tn - t1, 1e-9)

    decoders = {"ours": lambda: decode(lambda n: ours_generate(ours, ids[128], n)),
                "eager": lambda: decode(lambda n: ref_generate(ref, "eager", ids[128], n)),
                "sdpa": lambda: decode(lambda n: ref_generate(ref, "sdpa", ids[128], n))}
    steps = steps_undone(ours) if do_steps else {}

    def decode_loop(n: int = 16) -> float:  # the steps' decode time: n cached one-token forwards
        with torch.no_grad():
            _, past = ours(ids[128])
            start = time.perf_counter()
            for i in range(n):
                _, past = ours(ids[512][:, 128 + i: 129 + i], past=past)
        return time.perf_counter() - start

    # warm-up, and a check that all contenders compute the same next token
    with torch.no_grad():
        a = ours_prefill(ours, ids[128])[0][0, -1]
        for impl in ("eager", "sdpa"):
            b = ref_prefill(ref, impl, ids[128]).logits[0, -1]
            assert (a - b).abs().max() < 1e-3, f"logits differ from transformers ({impl})"
        for name, apply in steps.items():
            undo = apply()
            try:
                c = ours_prefill(ours, ids[128])[0][0, -1]
                assert (a - c).abs().max() < 1e-3, name
            finally:
                undo()
    times = {t: {i: [] for i in impls} for t in tasks}
    rates = {i: [] for i in impls}
    step_tasks = {"prefill 512": tasks["prefill 512"]["ours"], "decode": decode_loop}
    step_ratios = {s: {t: [] for t in step_tasks} for s in steps}
    for r in range(rounds):
        order = impls[r % 3:] + impls[: r % 3]
        for task, fns in tasks.items():
            for impl in order:
                times[task][impl].append(timed(fns[impl]))
        for impl in order:
            rates[impl].append(decoders[impl]())
        for name, apply in steps.items():  # each refinement undone, timed beside the final model
            for task, fn in step_tasks.items():
                base = timed(fn)
                undo = apply()
                try:
                    step_ratios[name][task].append(timed(fn) / base)
                finally:
                    undo()
        print(f"  [{n_threads} thread(s)] round {r + 1}/{rounds} done", file=sys.stderr, flush=True)

    out = {"threads": n_threads, "rounds": rounds, "lines": {}, "steps": {}}
    for task in tasks:
        line = {f"{i}_median_s": statistics.median(times[task][i]) for i in impls}
        for ref_impl in ("eager", "sdpa"):  # the per-round ratios kept: their spread is the noise
            per_round = [a / b for a, b in zip(times[task]["ours"], times[task][ref_impl])]
            line[f"ratio_vs_{ref_impl}"] = statistics.median(per_round)
            line[f"ratio_vs_{ref_impl}_rounds"] = per_round
        out["lines"][task] = line
    line = {f"{i}_tokens_per_s": statistics.median(rates[i]) for i in impls}
    for ref_impl in ("eager", "sdpa"):  # time ratio (per token), ours / theirs
        per_round = [b / a for a, b in zip(rates["ours"], rates[ref_impl])]
        line[f"ratio_vs_{ref_impl}"] = statistics.median(per_round)
        line[f"ratio_vs_{ref_impl}_rounds"] = per_round
    out["lines"][f"decode {new_tokens} tokens"] = line
    for name in steps:
        out["steps"][name] = {task: statistics.median(r) for task, r in step_ratios[name].items()}
    return out


def print_tables(res: dict) -> None:
    print(f"\nSmolLM2-135M-Instruct, float32, batch 1, {res['threads']} thread(s), {res['rounds']} alternating "
          f"rounds (time ratio ours / transformers: < 1 = ours faster)")
    print(f"{'line':22s} {'ours':>10s} {'tf eager':>10s} {'tf sdpa':>10s} {'x eager (min-max)':>18s} "
          f"{'x sdpa (min-max)':>18s}")
    for task, line in res["lines"].items():
        if task.startswith("prefill"):
            vals = [f"{1e3 * line[f'{i}_median_s']:8.0f}ms" for i in ("ours", "eager", "sdpa")]
        else:
            vals = [f"{line[f'{i}_tokens_per_s']:7.1f}t/s" for i in ("ours", "eager", "sdpa")]
        spread = [f"{line[f'ratio_vs_{i}']:5.2f}x ({min(line[f'ratio_vs_{i}_rounds']):.2f}-"
                  f"{max(line[f'ratio_vs_{i}_rounds']):.2f})" for i in ("eager", "sdpa")]
        print(f"{task:22s} {vals[0]:>10s} {vals[1]:>10s} {vals[2]:>10s} {spread[0]:>18s} {spread[1]:>18s}")
    if res["steps"]:
        print(f"\nwhat each refinement bought ({res['threads']} thread(s)): time with it undone / time of the final "
              f"model, same rounds (> 1: the refinement helps)")
        print(f"{'refinement undone':42s} {'prefill 512':>12s} {'decode (16 steps)':>18s}")
        for name, r in res["steps"].items():
            print(f"{name:42s} {r['prefill 512']:11.2f}x {r['decode']:17.2f}x")


# ------------------------------------------------------------------------------ memory
MEMORY_CHILD = r"""
import json, os, sys, torch
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import gpt as bench
impl, new_tokens = sys.argv[2], int(sys.argv[3])
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
tok = bench.transformers.AutoTokenizer.from_pretrained(bench.pretrained._converted(bench.pretrained.resolve(bench.NAME)).path)
model = bench.load_ours()[0] if impl == "ours" else bench.load_reference()  # only the one measured
with torch.no_grad():  # touch every weight once (transformers maps the file: pages load on first use)
    if impl == "ours":
        bench.ours_generate(model, bench.prompt(tok, 8), 2)
    else:
        bench.ref_generate(model, impl, bench.prompt(tok, 8), 2)
def status(key):
    return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) * 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM, the peak resident set, to the current resident set
base = status("VmRSS")
with torch.no_grad():
    if impl == "ours":
        bench.ours_prefill(model, bench.prompt(tok, 512))
        bench.ours_generate(model, bench.prompt(tok, 128), new_tokens)
    else:
        bench.ref_prefill(model, impl, bench.prompt(tok, 512))
        bench.ref_generate(model, impl, bench.prompt(tok, 128), new_tokens)
print(json.dumps({"after_load_bytes": base, "peak_bytes": status("VmHWM"), "added_bytes": status("VmHWM") - base}))
"""


def measure_memory(new_tokens: int, repeats: int = 3) -> dict:
    """Each contender ``repeats`` times, alternated, each time in a fresh process; per contender the run
    with the median added bytes (the resident set moves by tens of MB from one process to the next, so
    one process per contender can flip a ratio), and every run's added bytes in ``added_bytes_runs``."""
    runs: dict[str, list[dict]] = {"ours": [], "eager": [], "sdpa": []}
    for _ in range(repeats):
        for impl in runs:
            proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, __file__, impl, str(new_tokens)],
                                  capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode != 0:
                raise RuntimeError(f"memory run for {impl} failed:\n{proc.stderr[-2000:]}")
            runs[impl].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out = {}
    for impl, ms in runs.items():
        median = sorted(ms, key=lambda m: m["added_bytes"])[len(ms) // 2]
        out[impl] = {**median, "added_bytes_runs": [m["added_bytes"] for m in ms]}  # in run order
    print(f"\npeak memory (own subprocess each, median of {repeats}; model loaded, then prefill 512 + decode "
          f"{new_tokens}): MB added by the run / peak RSS")
    for impl, m in out.items():
        spread = "-".join(f"{b / 2**20:.0f}" for b in (min(m["added_bytes_runs"]), max(m["added_bytes_runs"])))
        print(f"  {impl:6s} {m['added_bytes'] / 2**20:8.0f} MB added ({spread})   {m['peak_bytes'] / 2**20:8.0f} MB peak   "
              f"({m['after_load_bytes'] / 2**20:.0f} MB after loading)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="4 rounds, 16 new tokens, 1 and 2 threads, no step table")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help="only the memory table (no timing)")
    parser.add_argument("--no-steps", action="store_true")
    parser.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/gpt.json")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.new_tokens, args.threads, args.no_steps = 4, 16, "1,2", True
    ours, tok = load_ours()
    ref = load_reference()
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"platform": platform.platform(), "processor": _cpu_name(), "cores": os.cpu_count(),
                    "load_average_at_start": os.getloadavg()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "model": NAME, "dtype": "float32", "batch": 1, "new_tokens": args.new_tokens,
        "command": " ".join(sys.argv[1:]), "by_threads": [],
    }
    threads = [] if args.memory_only else [int(t) for t in args.threads.split(",")]
    for n in threads:  # the step table at the first thread count only (it is the slow part)
        res = run_threads(n, ours, tok, ref, args.rounds, args.new_tokens, not args.no_steps and n == threads[0])
        print_tables(res)
        results["by_threads"].append(res)
    del ours, ref
    if not args.no_memory:
        results["memory"] = measure_memory(args.new_tokens)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    if not args.no_save:  # the quick run (make bench) keeps its own file: it must not replace the full-size run
        out = RESULTS.with_name("gpt_quick.json") if args.quick else RESULTS
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwritten {out}")


def _cpu_name() -> str:
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
