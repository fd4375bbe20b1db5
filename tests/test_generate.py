"""neuraltext.gpt.sampling: the filters' exact boundaries, the sampling contract, the loop with a toy model.

The filters are checked against hand-worked nuclei (probabilities chosen so the boundary is exact);
the loop is checked with a tiny causal model that follows the same contract as the GPT and Llama
models (mean of the real tokens so far + a position vector), so cache, padding and stop handling are
tested independently of any transformer. The GPT-specific generation tests are in test_gpt.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuraltext.gpt import (apply_temperature, default_position_ids, filter_logits, generate,
                            next_token_distribution, pad_left, sample_next, top_k_filter, top_p_filter,
                            top_tokens)


def _kept(logits: torch.Tensor) -> list[int]:
    return torch.isfinite(logits).nonzero().flatten().tolist()


def _logits(probs, dtype=torch.float64):
    return torch.tensor([math.log(p) if p > 0 else float("-inf") for p in probs], dtype=dtype)


# ------------------------------------------------------------------------------------ top-p
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "probs,p,expected",
    [
        ([0.5, 0.3, 0.2], 0.8, [0, 1]),  # mass exactly p: stop there
        ([0.5, 0.3, 0.2], 0.81, [0, 1, 2]),  # just above: one more token
        ([0.5, 0.3, 0.2], 0.5, [0]),  # the argmax alone holds exactly p
        ([0.5, 0.3, 0.2], 0.79, [0, 1]),
        ([0.2, 0.5, 0.3], 0.6, [1, 2]),  # order of ids does not matter
        ([0.9, 0.05, 0.05], 0.7, [0]),  # one token above p is the whole nucleus
        ([0.9, 0.05, 0.05], 1.0, [0, 1, 2]),  # p = 1 keeps everything
        ([0.4, 0.2, 0.2, 0.2], 0.6, [0, 1, 2, 3]),  # ties with the last kept token are all kept
        ([0.4, 0.2, 0.2, 0.2], 0.4, [0]),
        ([0.3, 0.3, 0.4], 0.4, [2]),
        ([0.3, 0.3, 0.4], 0.5, [0, 1, 2]),  # 0.4 then a tie of two 0.3s
        ([0.25, 0.25, 0.25, 0.25], 0.1, [0, 1, 2, 3]),  # all tied: all kept
        ([0.6, 0.3, 0.1, 0.0], 1.0, [0, 1, 2]),  # a -inf logit stays out even at p = 1
    ],
)
def test_top_p_keeps_exactly_the_nucleus(probs, p, expected, dtype):
    assert _kept(top_p_filter(_logits(probs, dtype), p)) == expected


def test_top_p_tiny_p_is_the_argmax_and_batched_rows_are_independent():
    torch.manual_seed(0)
    logits = torch.randn(5, 50)
    out = top_p_filter(logits, 1e-9)
    for row, full in zip(out, logits):
        assert _kept(row) == [int(full.argmax())]
    # rows filtered together = rows filtered one by one; kept logits are unchanged
    out = top_p_filter(logits, 0.7)
    for row, full in zip(out, logits):
        assert torch.equal(row, top_p_filter(full, 0.7))
        keep = torch.isfinite(row)
        assert torch.equal(row[keep], full[keep])


def test_top_p_matches_a_brute_force_smallest_set():
    """Random distributions without ties: the kept set is the smallest prefix with mass >= p."""
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        logits = torch.randn(20, generator=g, dtype=torch.float64) * 2
        p = float(torch.rand(1, generator=g)) * 0.98 + 0.01
        probs = torch.softmax(logits, -1)
        order = probs.argsort(descending=True)
        n = next(i + 1 for i in range(20) if probs[order[: i + 1]].sum() >= p)
        assert sorted(_kept(top_p_filter(logits, p))) == sorted(order[:n].tolist())


# ------------------------------------------------------------------------------------ top-k
def test_top_k_boundaries():
    logits = torch.tensor([1.0, 3.0, 2.0, 3.0, 0.0])
    assert _kept(top_k_filter(logits, 1)) == [1, 3]  # a tie for the largest: both kept
    assert _kept(top_k_filter(logits, 3)) == [1, 2, 3]
    assert _kept(top_k_filter(logits, 5)) == [0, 1, 2, 3, 4]
    assert _kept(top_k_filter(logits, 99)) == [0, 1, 2, 3, 4]
    assert _kept(top_k_filter(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 1).flatten()) == [1, 2]


# ------------------------------------------------------------------------------ temperature
def test_temperature_divides_and_zero_is_the_argmax():
    logits = torch.tensor([[1.0, 4.0, 2.0, 4.0]])
    assert torch.equal(apply_temperature(logits, 2.0), logits / 2)
    assert _kept(apply_temperature(logits, 0.0)[0]) == [1]  # first of the tied maxima
    probs = torch.softmax(apply_temperature(torch.tensor([1.0, 1.5, 0.5]), 1e-4), -1)
    assert torch.allclose(probs, torch.tensor([0.0, 1.0, 0.0]))


def test_sampling_with_temperature_near_zero_is_greedy():
    torch.manual_seed(0)
    logits = torch.randn(64, 100)
    greedy = sample_next(logits, temperature=0)
    assert torch.equal(greedy, logits.argmax(-1))
    assert torch.equal(sample_next(logits, temperature=1e-5, generator=3), greedy)


def test_sampling_follows_the_filtered_distribution():
    """10,000 draws from softmax([log .5, log .3, log .2]) with top-p 0.8: only tokens 0 and 1,
    in the ratio 5:3."""
    logits = _logits([0.5, 0.3, 0.2], torch.float32).expand(10_000, 3)
    draws = sample_next(logits, top_p=0.8, generator=0)
    counts = torch.bincount(draws, minlength=3).tolist()
    assert counts[2] == 0
    assert abs(counts[0] / 10_000 - 0.625) < 0.02


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": -0.5}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": float("nan")}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
    ],
)
def test_bad_sampling_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        filter_logits(torch.zeros(1, 4), **kwargs)
    with pytest.raises(ValueError, match=name):
        generate(_Toy(), torch.zeros(1, 2, dtype=torch.long), max_new_tokens=1, **kwargs)


def test_bad_generate_inputs_are_named():
    model = _Toy()
    ids = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, ids, max_new_tokens=-1)
    with pytest.raises(ValueError, match="input_ids"):
        generate(model, ids.float(), max_new_tokens=1)
    with pytest.raises(ValueError, match="attention_mask"):
        generate(model, ids, torch.ones(2, 4), max_new_tokens=1)
    with pytest.raises(ValueError, match="LEFT"):
        generate(model, ids, torch.tensor([[1, 1, 0], [1, 1, 1]]), max_new_tokens=1)
    with pytest.raises(ValueError, match="pad_id"):
        generate(model, ids, max_new_tokens=1, pad_id=-1)
    with pytest.raises(TypeError, match="generator"):
        generate(model, ids, max_new_tokens=1, generator="seed")


# ------------------------------------------------------------------------- a toy causal model
class _Toy(nn.Module):
    """Follows the generation contract: the state of position t is the mean of the embeddings of
    the real tokens 0..t plus a vector for position t; its 'cache' keeps the embeddings (as k) and
    the mask-weighted embeddings (as v), (B, 1, S, d)."""

    def __init__(self, V=11, d=8, max_len=64):
        super().__init__()
        self.emb, self.pos, self.out = nn.Embedding(V, d), nn.Embedding(max_len, d), nn.Linear(d, V)

    def forward(self, input_ids, *, attention_mask=None, position_ids=None, past=None):
        B, T = input_ids.shape
        S_past = 0 if past is None else past[0][0].shape[2]
        mask = torch.ones(B, S_past + T) if attention_mask is None else attention_mask.float()
        if position_ids is None:
            position_ids = default_position_ids(mask)[:, S_past:]
        k = self.emb(input_ids)[:, None]  # (B, 1, T, d)
        v = k * mask[:, None, S_past:, None]
        if past is not None:
            k, v = torch.cat([past[0][0], k], 2), torch.cat([past[0][1], v], 2)
        summed = v.cumsum(2)[:, 0, S_past:]  # (B, T, d)
        count = mask.cumsum(1)[:, S_past:, None].clamp(min=1)
        return self.out(summed / count + self.pos(position_ids)), [(k, v)]


@pytest.fixture
def toy():
    torch.manual_seed(0)
    return _Toy().eval()


def test_cache_gives_the_same_tokens_and_logits(toy):
    ids = torch.randint(1, 11, (3, 4))
    for kw in ({"temperature": 0}, {"temperature": 0.9, "top_k": 5, "top_p": 0.9, "generator": 7}):
        a, la = generate(toy, ids, max_new_tokens=12, use_cache=True, return_logits=True, **kw)
        b, lb = generate(toy, ids, max_new_tokens=12, use_cache=False, return_logits=True, **kw)
        assert torch.equal(a, b)
        assert (la - lb).abs().max() < 1e-5


def test_left_padded_batch_equals_each_prompt_alone(toy):
    prompts = [[3, 4, 5, 6, 7], [2], [9, 8, 1]]
    ids, mask = pad_left(prompts, pad_id=0)
    assert mask.tolist()[1] == [False] * 4 + [True]
    assert default_position_ids(mask)[2].tolist() == [0, 0, 0, 1, 2]
    for use_cache in (True, False):
        batch, lb = generate(toy, ids, mask, max_new_tokens=10, temperature=0, use_cache=use_cache, return_logits=True)
        for i, p in enumerate(prompts):
            alone, la = generate(toy, torch.tensor([p]), max_new_tokens=10, temperature=0, return_logits=True)
            assert batch[i, ids.shape[1]:].tolist() == alone[0, len(p):].tolist()
            assert (lb[i] - la[0]).abs().max() < 1e-5


def test_a_fixed_seed_gives_the_same_sample(toy):
    ids = torch.randint(1, 11, (2, 3))
    a = generate(toy, ids, max_new_tokens=20, temperature=1.5, generator=123)
    b = generate(toy, ids, max_new_tokens=20, temperature=1.5, generator=123)
    c = generate(toy, ids, max_new_tokens=20, temperature=1.5, generator=124)
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(generate(toy, ids, max_new_tokens=8, generator=g1), generate(toy, ids, max_new_tokens=8, generator=g2))


def test_temperature_near_zero_generation_is_greedy(toy):
    ids = torch.randint(1, 11, (4, 3))
    greedy = generate(toy, ids, max_new_tokens=10, temperature=0)
    assert torch.equal(generate(toy, ids, max_new_tokens=10, temperature=1e-6, generator=0), greedy)


def test_stop_ids_finish_rows_and_pad_them(toy):
    ids = torch.randint(1, 11, (4, 3))
    free = generate(toy, ids, max_new_tokens=15, temperature=2.0, generator=0)
    stop = int(free[0, 3])  # row 0 produces it first, so it stops at once
    out = generate(toy, ids, max_new_tokens=15, temperature=2.0, generator=0, stop_ids=[stop], pad_id=0)
    for row_free, row in zip(free[:, 3:].tolist(), out[:, 3:].tolist()):
        if stop in row_free:
            n = row_free.index(stop) + 1
            assert row[:n] == row_free[:n] and all(t == 0 for t in row[n:])
        else:
            assert row == row_free[: len(row)]
    assert out.shape[1] <= free.shape[1]
    assert generate(toy, ids, max_new_tokens=0).tolist() == ids.tolist()


def test_next_token_distribution_and_top_tokens(toy):
    ids = torch.tensor([[1, 2, 3]])
    probs = next_token_distribution(toy, ids)
    logits, _ = toy(ids)
    assert torch.allclose(probs, torch.softmax(logits[:, -1], -1))
    assert torch.allclose(next_token_distribution(toy, ids, temperature=2.0), torch.softmax(logits[:, -1] / 2, -1))
    top = top_tokens(probs[0], 3)
    assert [i for i, _ in top] == probs[0].argsort(descending=True)[:3].tolist()
    assert abs(sum(p for _, p in top_tokens(probs[0], 100)) - 1) < 1e-6


class _ToyKeep(_Toy):
    """The same toy with ``logits_to_keep`` (as neuraltext.gpt.llama has): only the last logits."""

    def forward(self, input_ids, *, attention_mask=None, position_ids=None, past=None, logits_to_keep=0):
        logits, present = super().forward(input_ids, attention_mask=attention_mask, position_ids=position_ids, past=past)
        return (logits[:, -logits_to_keep:] if logits_to_keep else logits), present


def test_logits_to_keep_is_used_and_changes_nothing():
    torch.manual_seed(0)
    plain, keep = _Toy().eval(), _ToyKeep().eval()
    keep.load_state_dict(plain.state_dict())
    ids, mask = pad_left([[1, 2, 3, 4], [5, 6]])
    for use_cache in (True, False):
        a, la = generate(plain, ids, mask, max_new_tokens=6, temperature=0, use_cache=use_cache, return_logits=True)
        b, lb = generate(keep, ids, mask, max_new_tokens=6, temperature=0, use_cache=use_cache, return_logits=True)
        assert torch.equal(a, b) and torch.allclose(la, lb)
