"""Writes chapter 8's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch08.py

Also tags `solution` the hidden body cell that computes only the numbers solution 5 quotes (the
`ex_greedy_*` glue names), so the student notebook drops it.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import (code, exercise, exercises_intro, md, replace_exercises, solution, solution_end,  # noqa: E402
                solution_start, tag_solution_cell)

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "08_gpt.ipynb"
HIDDEN = "# The numbers quoted in solution 5"

CELLS = [
    exercises_intro("Exercises 1 to 4 are", "Exercise 5 is an experiment with the chapter's tiny GPT."),
    code("""import torch
from neuraltext import labs
from neuraltext.gpt import GPTConfig, LlamaConfig"""),
    exercise("ex-08-top-p", "Top-p by hand", r"""
Write `my_top_p(logits, p)` for a 1-D tensor of logits without looking at `neuraltext.gpt.sampling`: return
the logits with `-inf` outside the nucleus, the smallest set of most probable tokens whose mass reaches
$p$. Sorted by decreasing probability $\pi_{(1)} \ge \pi_{(2)} \ge \dots$, token $(i)$ is kept when
$\sum_{j<i} \pi_{(j)} < p$, so the most probable token always stays. Two boundary rules: a mass within
$8\varepsilon$ of $p$ counts as reaching it ($\varepsilon$ = `torch.finfo(dtype).eps`: in float32,
$0.5 + 0.3$ is not exactly $0.8$), and the tokens tied with the least probable kept token are all kept.
The kept logits are returned unchanged, in the input's dtype. The check compares your function with
`top_p_filter` on random logits and on the boundary cases (mass exactly $p$, ties, $p = 1$, logits
already `-inf`)."""),
    solution_start("ex-08-top-p", """Sort the probabilities in decreasing order, count the tokens whose preceding mass is
still below $p$ (at least one), then keep every token whose logit is at least the last kept one's, which
keeps its ties:"""),
    code('''def my_top_p(logits, p):
    """logits (V,) -> the same logits with -inf outside the nucleus of mass p."""
    ### BEGIN SOLUTION
    probs = torch.softmax(logits, dim=-1)
    sorted_p, order = probs.sort(descending=True)
    before = sorted_p.cumsum(-1) - sorted_p                 # the mass of the tokens before each one
    tol = 8 * torch.finfo(probs.dtype).eps                  # float error of the cumulative sum
    n = max(1, int((before < p - tol).sum()))               # the argmax always stays
    last = logits[order[n - 1]]                             # the smallest kept logit
    return logits.masked_fill(logits < last, float("-inf"))  # its ties stay
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("08.top_p", my_top_p)'),
    exercise("ex-08-top-k", "Top-k", r"""
Write `my_top_k(logits, k)` for logits of shape `(..., V)`: in each row (the last dimension), keep the
logits at least as large as the row's $k$-th largest and set the others to `-inf`. Tokens tied with the
$k$-th largest are all kept (the choice must not depend on token ids, so a row may keep more than $k$),
and $k \ge V$ keeps everything. The check compares it with `top_k_filter`."""),
    solution_start("ex-08-top-k", "The $k$-th largest value of each row is the threshold; comparing with it keeps the ties:"),
    code('''def my_top_k(logits, k):
    """logits (..., V) -> the same logits with -inf below the k-th largest of each row."""
    ### BEGIN SOLUTION
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]   # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("08.top_k", my_top_k)'),
    exercise("ex-08-kv-cache", "The cost of a long conversation", r"""
With the formula of the KV-cache section, $2 \times \text{layers} \times \text{kv heads} \times d_\text{head}$
numbers per token, how many MiB ($2^{20}$ bytes) does SmolLM2-135M's cache take for a batch of 8
conversations of 4,096 tokens, in float32? And a multi-head model of the same sizes, where each of the 9
query heads has its own key/value head? Read the shapes from `LlamaConfig()` (its defaults are
SmolLM2-135M's) and set `gqa_mib` and `mha_mib`; the check compares the pair with the formula."""),
    solution_start("ex-08-kv-cache", """Keys and values, in every block, for every key/value head: per token, then times the
batch and the length. Without grouped-query attention the cache is `n_heads / n_kv_heads` times larger,
more than the model's own weights in float32 (its parameter count is in the table above, 4 bytes each):"""),
    code('''### BEGIN SOLUTION
cfg = LlamaConfig()
per_token = 2 * cfg.n_layers * cfg.n_kv_heads * cfg.d_head * 4     # bytes, float32
gqa_mib = per_token * 8 * 4096 / 2**20
mha_mib = gqa_mib * cfg.n_heads / cfg.n_kv_heads
print(f"{per_token:,} bytes per token; {gqa_mib:,.0f} MiB with {cfg.n_kv_heads} key/value heads, "
      f"{mha_mib:,.0f} MiB with {cfg.n_heads}")
### END SOLUTION'''),
    solution_end(),
    code('labs.check("08.kv_cache", (gqa_mib, mha_mib))'),
    exercise("ex-08-gpt3", "GPT-3's 175 billion parameters", r"""
Write `my_gpt_parameters(cfg)`, the number of parameters of the chapter's `GPT` built from a `GPTConfig`
`cfg`, from its sizes only: `vocab_size` $V$, `max_len` (the learned positions), `d_model` $d$, `n_layers`
and `d_ff` (the feed-forward width, $4d$ unless given). Every linear layer and layer norm has a bias,
and the de-embedding $D$ is the token embedding (tied). Then check GPT-3's count:
`GPTConfig(vocab_size=50257, max_len=2048, d_model=12288, n_heads=96, n_layers=96)`. The check compares
you with the model's own count (built on the `meta` device) on GPT-2 small, GPT-3, the chapter's tiny
GPT, a feed-forward width other than $4d$ and seeded small configurations."""),
    solution_start("ex-08-gpt3", r"""
Per block: two layer norms, the four attention matrices with their biases, the two layers of the
feed-forward network; around the blocks: the two embedding tables and the final layer norm. With
$d_{ff} = 4d$ a block holds $12d^2 + 13d$; GPT-3 gives {glue:text}`n_gpt3:,`, the paper's "175B":"""),
    code('''def my_gpt_parameters(cfg):
    """Parameters of the chapter's GPT with the sizes of cfg (tied de-embedding)."""
    ### BEGIN SOLUTION
    d, f = cfg.d_model, cfg.d_ff
    block = 2 * 2 * d + 4 * (d * d + d) + (d * f + f) + (f * d + d)   # 2 layer norms, W_q W_k W_v W_o, FFN
    return (cfg.vocab_size + cfg.max_len) * d + cfg.n_layers * block + 2 * d   # embeddings, blocks, final norm
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("08.gpt_parameters", my_gpt_parameters)'),
    exercise("ex-08-greedy", "Greedy decoding repeats itself", r"""
Generate 60 tokens greedily from the tiny GPT after `"mon grand-père"`, then with $T = 1$ and top-p
$0.9$ (seed 0). Count the repeated 3-grams of tokens in each. Which decoding loops, and why does a
model trained on varied sentences loop at all?"""),
    solution("ex-08-greedy", r"""
Count with `collections.Counter(zip(ids, ids[1:], ids[2:]))`: a 3-gram seen $n > 1$ times repeats $n - 1$
times. In the run saved here, the 60 greedy tokens repeat {glue:text}`ex_greedy_greedy` 3-grams, the 60
sampled ones {glue:text}`ex_greedy_sampled`. Greedy decoding always takes the most probable token, so
once a context recurs the same continuation follows, and the text cycles through the few sentences
the model finds most probable; sampling can leave the cycle, since a less probable token changes the
context. This repetition is the "degeneration" that motivated top-p sampling."""),
    md("""What the chapter used from the package: `neuraltext.gpt.model` (`GPTConfig`, `GPT`, `gpt_loss`,
`GPT.from_hf_gpt2`), `neuraltext.gpt.sampling` (`generate`, `next_token_distribution`, `top_p_filter`,
`top_k_filter`, `pad_left`), `neuraltext.gpt.llama.from_pretrained`, `neuraltext.bert.count_parameters`
and `neuraltext.diagrams`."""),
]

if __name__ == "__main__":
    replace_exercises(NOTEBOOK, CELLS)
    tag_solution_cell(NOTEBOOK, HIDDEN)
