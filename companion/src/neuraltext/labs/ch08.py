"""Chapter 8's exercises: top-p and top-k filtering, the size of SmolLM2's KV cache, a GPT's parameter
count from its configuration (GPT-3's 175 billion among the cases).

The references are the package's own filters (``neuraltext.gpt.sampling.top_p_filter`` and
``top_k_filter``, which the chapter samples with) and the KV-cache formula of the chapter applied to
SmolLM2-135M's shapes, read from ``neuraltext.gpt.llama.LlamaConfig`` (its defaults are SmolLM2's; the
chapter checks the formula against the cache of the loaded model). The parameter count's reference is
the model itself: :class:`neuraltext.gpt.model.GPT` built on PyTorch's ``meta`` device (shapes, no
memory), its parameters counted.
"""

from __future__ import annotations

import torch

from neuraltext.gpt import top_k_filter, top_p_filter
from neuraltext.labs.check import Case, Exercise
from neuraltext.gpt import GPT, GPTConfig, LlamaConfig


def _logits(seed: int, *shape: int, scale: float = 3.0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=dtype)


def _top_p_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    ps = [round(float(p), 4) for p in torch.rand(4, generator=g) * 0.9 + 0.05]
    with_inf = _logits(5, 12)
    with_inf[with_inf < with_inf.topk(5).values[-1]] = float("-inf")     # as after top-k
    return [
        Case("30 random logits", (_logits(1, 30), ps[0])),
        Case("50 random logits, float64", (_logits(2, 50, dtype=torch.float64), ps[1])),
        Case("100 flat logits (many tokens needed)", (_logits(3, 100, scale=0.3), ps[2])),
        Case("a peaked distribution", (_logits(4, 20, scale=8.0), ps[3])),
        Case("mass exactly p: probabilities 0.5, 0.3, 0.2 and p = 0.8", (torch.tensor([0.5, 0.3, 0.2]).log(), 0.8)),
        Case("just above that mass: p = 0.81", (torch.tensor([0.5, 0.3, 0.2]).log(), 0.81)),
        Case("mass exactly p, float64: 0.7 + 0.2 = 0.9", (torch.tensor([0.2, 0.7, 0.1], dtype=torch.float64).log(), 0.9)),
        Case("one token holds exactly p", (torch.tensor([0.4, 0.1, 0.5]).log(), 0.5)),
        Case("one token holds more than p", (torch.tensor([0.9, 0.05, 0.05]).log(), 0.7)),
        Case("ties with the last kept token", (torch.tensor([0.4, 0.2, 0.2, 0.2]).log(), 0.6)),
        Case("all logits equal", (torch.zeros(7), 0.3)),
        Case("p = 1 keeps every token", (_logits(6, 15), 1.0)),
        Case("a tiny p is greedy", (_logits(7, 15), 1e-4)),
        Case("one token", (torch.tensor([1.5]), 0.5)),
        Case("large logits (does your softmax overflow?)", (_logits(8, 25, scale=500.0), 0.9)),
        Case("logits already -inf outside a top-5", (with_inf, 0.95)),
    ]


def _top_k_cases() -> list[Case]:
    ties = torch.tensor([[3.0, 1.0, 2.0, 2.0, 0.5, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    return [
        Case("30 random logits, k = 5", (_logits(10, 30), 5)),
        Case("a batch of 4 rows, k = 3", (_logits(11, 4, 40), 3)),
        Case("(batch, time, vocabulary) logits, float64, k = 7", (_logits(12, 2, 3, 20, dtype=torch.float64), 7)),
        Case("k = 1 is greedy", (_logits(13, 3, 10), 1)),
        Case("ties with the k-th largest are all kept", (ties, 2)),
        Case("k equal to the vocabulary size", (_logits(14, 12), 12)),
        Case("k larger than the vocabulary", (_logits(15, 2, 8), 50)),
    ]


def kv_cache_mib(batch: int = 8, tokens: int = 4096, bytes_per_number: int = 4) -> tuple[float, float]:
    """SmolLM2-135M's KV cache in MiB: (with its 3 key/value heads, if all 9 heads had their own)."""
    cfg = LlamaConfig()                                   # SmolLM2-135M's shapes
    per_token = 2 * cfg.n_layers * cfg.n_kv_heads * cfg.d_head * bytes_per_number   # k and v, every block
    gqa = per_token * batch * tokens / 2**20
    return gqa, gqa * cfg.n_heads / cfg.n_kv_heads


def gpt_parameters(cfg: GPTConfig) -> int:
    """The parameters of our GPT with this configuration, counted on the ``meta`` device (no memory)."""
    with torch.device("meta"):
        return GPT(cfg).num_parameters()


GPT3 = GPTConfig(vocab_size=50257, max_len=2048, d_model=12288, n_heads=96, n_layers=96)  # GPT-3 175B's sizes


def _gpt_parameter_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    cases = [Case("GPT-2 small", (GPTConfig(vocab_size=50257, max_len=1024, d_model=768, n_heads=12, n_layers=12),)),
             Case("GPT-3 (175B)", (GPT3,)),
             Case("the chapter's tiny GPT", (GPTConfig(vocab_size=1000, max_len=64, d_model=96, n_heads=4, n_layers=3),)),
             Case("a feed-forward width that is not 4 d_model", (GPTConfig(vocab_size=300, max_len=40, d_model=32,
                                                                            n_heads=2, n_layers=2, d_ff=72),))]
    for k in range(2):  # seeded small configurations
        cases.append(Case(f"a random small configuration ({k + 1})", (GPTConfig(
            vocab_size=int(torch.randint(20, 3000, (1,), generator=g)),
            max_len=int(torch.randint(8, 500, (1,), generator=g)),
            d_model=8 * int(torch.randint(1, 12, (1,), generator=g)), n_heads=2,
            n_layers=int(torch.randint(1, 6, (1,), generator=g))),)))
    return cases


EXERCISES = [
    Exercise(
        id="08.top_p",
        title="top-p (nucleus) filtering",
        reference=top_p_filter,
        cases=_top_p_cases,
        rtol=0.0, atol=0.0,
        hint="sort by decreasing probability; keep a token while the mass of the tokens before it is below p "
             "(allow a few float ulps); keep the ties of the last kept token; return the logits themselves.",
    ),
    Exercise(
        id="08.top_k",
        title="top-k filtering",
        reference=top_k_filter,
        cases=_top_k_cases,
        rtol=0.0, atol=0.0,
        hint="compare each logit with the k-th largest of its row (the last dimension); ties with it stay.",
    ),
    Exercise(
        id="08.kv_cache",
        title="the size of SmolLM2's KV cache",
        reference=kv_cache_mib,
        rtol=1e-6, atol=0.0,
        hint="2 (keys and values) x blocks x key/value heads x d_head numbers per token, 4 bytes each in float32; "
             "1 MiB = 2**20 bytes.",
    ),    Exercise(
        id="08.gpt_parameters",
        title="a GPT's parameter count from its configuration",
        reference=gpt_parameters,
        cases=_gpt_parameter_cases,
        rtol=0.0, atol=0.0,
        hint="token and position embeddings (V + max_len) d; per block two layer norms (4d), Q, K, V and the output "
             "(4(d^2 + d)), the feed-forward network (2 d d_ff + d_ff + d); a final layer norm (2d); the "
             "de-embedding is the token embedding (tied), so it adds nothing.",
    ),
]
