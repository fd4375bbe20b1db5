"""Chapter 7's exercises: BERT's 80/10/10 masking, the masked-language-model loss, BERT's parameter
count from its configuration (BERT-Large's 340M among the cases), and mean pooling with a padding mask.

The masking is random, so it is checked by its statistics (a ``judge``): on tens of thousands of
tokens, drawn with a seeded generator, the proportions must be within five binomial standard
deviations of 15% chosen, then 80% ``[MASK]``, 10% random, 10% unchanged, and the structure must be
exact (specials never chosen, labels -100 elsewhere, random replacements ordinary tokens).
:func:`neuraltext.bert.pretraining.mask_tokens` passes it. The loss is compared with
:func:`neuraltext.bert.model.mlm_loss`, the count with :func:`neuraltext.bert.model.count_parameters`
(itself tested against the modules' and ``transformers``' own counts), mean pooling with
:func:`neuraltext.bert.finetune.pool`.
"""

from __future__ import annotations

import torch

from neuraltext.bert import BertConfig, count_parameters, mask_tokens, mlm_loss, pool
from neuraltext.bert.model import IGNORE_INDEX
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


# --------------------------------------------------------------------------- 07.mlm_loss
def _mlm_case(name: str, seed: int, B: int, T: int, V: int, p: float = 0.15, scale: float = 3.0,
              dtype=torch.float32, empty_rows: tuple[int, ...] = ()) -> Case:
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(B, T, V, generator=g, dtype=dtype)
    chosen = torch.rand(B, T, generator=g) < p
    chosen[:, 1] = True  # every row has a masked position unless it is meant to be empty
    chosen[list(empty_rows)] = False
    labels = torch.where(chosen, torch.randint(V, (B, T), generator=g), torch.full((B, T), IGNORE_INDEX))
    return Case(name, (logits, labels))


def _mlm_cases() -> list[Case]:
    return [
        _mlm_case("a batch of 4 x 12 tokens, |V| = 30", 0, 4, 12, 30),
        _mlm_case("float64 logits", 1, 3, 9, 17, dtype=torch.float64),
        _mlm_case("a row with no masked token (it adds nothing)", 2, 3, 10, 25, empty_rows=(1,)),
        _mlm_case("one masked position in all", 3, 1, 8, 40, p=0.0),
        _mlm_case("large logits (does your softmax overflow?)", 4, 2, 10, 50, scale=300.0),
        _mlm_case("every position masked", 5, 2, 6, 11, p=1.0),
    ]


# --------------------------------------------------------------------------- 07.bert_parameters
BERT_LARGE = BertConfig(hidden_size=1024, n_layers=24, n_heads=16, intermediate_size=4096)  # 30,522 tokens, 512 positions


def _parameter_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    cases = [Case("BERT-base", (BertConfig(),)), Case("BERT-Large", (BERT_LARGE,)),
             Case("multilingual-e5-small's sizes", (BertConfig(vocab_size=250_037, hidden_size=384, n_heads=12,
                                                                intermediate_size=1536),))]
    for k in range(3):  # seeded small configurations: every size differs from BERT-base's
        H = 16 * int(torch.randint(1, 9, (1,), generator=g))
        cases.append(Case(f"a random small configuration ({k + 1})", (BertConfig(
            vocab_size=int(torch.randint(50, 5000, (1,), generator=g)), hidden_size=H, n_heads=4,
            n_layers=int(torch.randint(1, 7, (1,), generator=g)),
            intermediate_size=int(torch.randint(8, 300, (1,), generator=g)),
            max_position=int(torch.randint(16, 600, (1,), generator=g)),
            type_vocab_size=int(torch.randint(1, 4, (1,), generator=g))),)))
    return cases


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
        id="07.mlm_loss",
        title="the masked-language-model loss",
        reference=mlm_loss,
        cases=_mlm_cases,
        hint="log-softmax over the vocabulary (torch.log_softmax is stable), pick the label's entry at the "
             "positions whose label is not -100, and average minus those over the masked positions only.",
    ),
    Exercise(
        id="07.bert_parameters",
        title="BERT's parameter count from its configuration",
        reference=count_parameters,
        cases=_parameter_cases,
        rtol=0.0, atol=0.0,
        hint="embeddings (V + max_position + type_vocab_size) H + 2H (their layer norm); per block 4(H^2 + H) "
             "for Q, K, V and the output, 2 H F + F + H for the feed-forward network, 4H for two layer norms; "
             "the pooler H^2 + H.",
    ),
]
