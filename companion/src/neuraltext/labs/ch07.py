"""Chapter 7's exercises: BERT's 80/10/10 masking, mean pooling with a padding mask, and the
attention mask turned into an additive bias.

The masking is random, so it is checked by its statistics (a ``judge``): on tens of thousands of
tokens, drawn with a seeded generator, the proportions must be within five binomial standard
deviations of 15% chosen, then 80% ``[MASK]``, 10% random, 10% unchanged, and the structure must be
exact (specials never chosen, labels -100 elsewhere, random replacements ordinary tokens).
:func:`neuraltext.bert.pretraining.mask_tokens` passes it. Mean pooling is compared with
:func:`neuraltext.bert.finetune.pool`. The additive bias is judged by what it is for: added to
attention scores, the softmax must give the weights of the boolean mask (0 on padding), and the bias
must be 0 on real tokens.
"""

from __future__ import annotations

import torch

from neuraltext.bert import pool
from neuraltext.bert.model import IGNORE_INDEX
from neuraltext.bert import mask_tokens
from neuraltext.labs.check import Case, Exercise, compare

SD_LIMIT = 5.0  # binomial standard deviations allowed (a right answer fails with probability ~1e-6 per statistic)


# --------------------------------------------------------------------------- 07.mask_tokens
def _masking_case(name: str, seed: int, rows: int, length: int, vocab_size: int, special_ids: list[int],
                  mask_id: int, p: float, scatter_specials: float = 0.0) -> Case:
    g = torch.Generator().manual_seed(seed)
    specials = torch.tensor(special_ids)
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in special_ids])
    ids = ordinary[torch.randint(len(ordinary), (rows, length), generator=g)]
    ids[:, 0] = special_ids[min(2, len(special_ids) - 1)]  # a [CLS]-like token first
    ids[::2, length * 3 // 4:] = special_ids[0]  # padding at the end of every other row
    if scatter_specials:
        where = torch.rand(rows, length, generator=g) < scatter_specials
        ids[where] = specials[torch.randint(len(specials), (int(where.sum()),), generator=g)]
    return Case(name, (ids, mask_id, special_ids, vocab_size, p),
                {"generator": torch.Generator().manual_seed(seed + 100)})


def _masking_cases() -> list[Case]:
    return [
        _masking_case("256 x 128 tokens, vocabulary 1000, p = 0.15", 0, 256, 128, 1000, [0, 1, 2, 3, 4], 4, 0.15),
        _masking_case("a vocabulary of 50 (random tokens often equal the original), p = 0.3",
                      1, 128, 128, 50, [0, 1, 2, 3, 4], 4, 0.3),
        _masking_case("special ids in the middle of the vocabulary, scattered through the text",
                      2, 200, 100, 300, [0, 100, 101, 102, 103], 103, 0.15, scatter_specials=0.1),
    ]


def _binomial(name: str, count: int, total: int, prob: float, of: str) -> str | None:
    sd = (total * prob * (1 - prob)) ** 0.5
    if abs(count - total * prob) > SD_LIMIT * sd:
        return (f"{count / max(total, 1):.4f} of {of} are {name}, expected {prob:.4f} "
                f"(more than {SD_LIMIT:g} binomial standard deviations away, on {total} draws)")
    return None


def _judge_masking(got, case: Case) -> str | None:
    ids, mask_id, special_ids, vocab_size, p = case.args
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return "the result should be a pair (inputs, labels)"
    for name, t in zip(("inputs", "labels"), got):
        if not isinstance(t, torch.Tensor):
            return f"{name} should be a torch.Tensor, got a {type(t).__name__}"
        message = compare(t.shape, ids.shape, where=f"{name}'s shape") or (
            None if t.dtype == ids.dtype else f"{name} should have dtype {ids.dtype}, got {t.dtype}")
        if message:
            return message
    inputs, labels = got
    specials = torch.tensor(sorted(set(special_ids) | {mask_id}))
    special = torch.isin(ids, specials)
    chosen = labels != IGNORE_INDEX
    if (chosen & special).any():
        return f"{int((chosen & special).sum())} special tokens (padding, [CLS], ...) were chosen"
    if (labels[chosen] != ids[chosen]).any():
        return "labels should hold the original id at the chosen positions (and -100 elsewhere)"
    if (inputs[~chosen] != ids[~chosen]).any():
        return f"{int((inputs[~chosen] != ids[~chosen]).sum())} tokens that were not chosen were changed in inputs"
    to_mask = chosen & (inputs == mask_id)
    replaced = chosen & (inputs != mask_id) & (inputs != ids)
    bad = replaced & (torch.isin(inputs, specials) | (inputs < 0) | (inputs >= vocab_size))
    if bad.any():
        return f"{int(bad.sum())} random replacements are special tokens or outside [0, vocab_size)"
    n, k = int((~special).sum()), int(chosen.sum())
    q = 1.0 / (vocab_size - len(specials))  # a random ordinary token equals the original with probability q
    for args in (("chosen", k, n, p, "the ordinary tokens"),
                 ("[MASK]", int(to_mask.sum()), k, 0.8, "the chosen tokens"),
                 ("replaced by another token", int(replaced.sum()), k, 0.1 * (1 - q), "the chosen tokens"),
                 ("unchanged", int((chosen & (inputs == ids)).sum()), k, 0.1 + 0.1 * q, "the chosen tokens")):
        message = _binomial(*args)
        if message:
            return message
    return None


# --------------------------------------------------------------------------- 07.mean_pooling
def _mean_reference(last_hidden_state, attention_mask):
    return pool(last_hidden_state, attention_mask, "mean")


def _pooling_case(name: str, seed: int, lengths, H: int, dtype=torch.float32, bool_mask: bool = False) -> Case:
    g = torch.Generator().manual_seed(seed)
    T = max(max(lengths), 1)
    h = torch.randn(len(lengths), T, H, generator=g, dtype=dtype) * 2 + 0.5
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return Case(name, (h, mask if bool_mask else mask.long()))


def _pooling_cases() -> list[Case]:
    return [
        _pooling_case("padded batch, 0/1 mask as a tokenizer returns it", 0, [7, 4, 1, 6], 8),
        _pooling_case("a boolean mask", 1, [5, 2, 5], 6, bool_mask=True),
        _pooling_case("no padding", 2, [4, 4], 3),
        _pooling_case("one token", 3, [1], 5),
        _pooling_case("a row of padding only (its vector is 0)", 4, [3, 0, 2], 4),
        _pooling_case("float64 in, float64 out", 5, [6, 3], 7, dtype=torch.float64),
    ]


# --------------------------------------------------------------------------- 07.attention_bias
def _bias_reference(attention_mask, dtype):
    keep = attention_mask.to(dtype)[:, None, None, :]  # (B, 1, 1, T)
    return (1.0 - keep) * torch.finfo(dtype).min  # 0 on tokens, the most negative number on padding


def _bias_cases() -> list[Case]:
    def mask(lengths, T, as_bool=False):
        m = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
        return m if as_bool else m.long()
    return [
        Case("padded batch, 0/1 mask, float32", (mask([5, 3, 1], 5), torch.float32)),
        Case("a boolean mask", (mask([4, 2], 6, as_bool=True), torch.float32)),
        Case("no padding", (mask([3, 3], 3), torch.float32)),
        Case("float64 scores", (mask([7, 4, 6], 7), torch.float64)),
    ]


def _judge_bias(got, case: Case) -> str | None:
    attention_mask, dtype = case.args
    B, T = attention_mask.shape
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, got a {type(got).__name__}"
    if tuple(got.shape) != (B, 1, 1, T):
        return f"the result should have shape (B, 1, 1, T) = {(B, 1, 1, T)}, got {tuple(got.shape)}"
    if got.dtype != dtype:
        return f"the result should have dtype {dtype}, got {got.dtype}"
    keep = attention_mask.bool()[:, None, None, :]
    if (got.masked_select(keep) != 0).any():
        return "the bias should be 0 on real tokens"
    g = torch.Generator().manual_seed(B * 1000 + T)
    scores = 3 * torch.randn(B, 2, T, T, generator=g, dtype=dtype)  # (B, heads, queries, keys)
    expected = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
    message = compare(torch.softmax(scores + got, dim=-1), expected, rtol=1e-5, atol=1e-7,
                      where="softmax(scores + your bias)")
    return message


EXERCISES = [
    Exercise(
        id="07.mask_tokens",
        title="BERT's 80/10/10 masking",
        reference=mask_tokens,
        cases=_masking_cases,
        judge=_judge_masking,
        hint="choose ordinary tokens with probability p; then one more uniform number per token: "
             "< 0.8 [MASK], [0.8, 0.9) a random ordinary token, else unchanged; labels -100 where not chosen.",
    ),
    Exercise(
        id="07.mean_pooling",
        title="mean pooling with a padding mask",
        reference=_mean_reference,
        cases=_pooling_cases,
        hint="sum the vectors of the real tokens and divide by their number, clamped at 1e-9 "
             "(a row with no token gives 0).",
    ),
    Exercise(
        id="07.attention_bias",
        title="the attention mask as an additive bias",
        reference=_bias_reference,
        cases=_bias_cases,
        judge=_judge_bias,
        hint="0 where attention_mask is 1, a very negative number (torch.finfo(dtype).min) where it is 0, "
             "shape (B, 1, 1, T) so that it broadcasts over heads and queries.",
    ),
]
