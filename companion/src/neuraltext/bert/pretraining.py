"""BERT's pre-training data: masked tokens (MLM) and sentence pairs (NSP), and the training loss.

Masked language model, as BERT does it: among the tokens that are not special and not padding,
each is **chosen** with probability 15%; a chosen token becomes the prediction target (its label is
the original id; every other label is -100, skipped by the loss) and its input is replaced by

* ``[MASK]`` with probability 80%,
* a random ordinary token with probability 10%,
* itself (unchanged) with probability 10%,

so that the model cannot learn that only ``[MASK]`` positions matter (at fine-tuning time there is no
``[MASK]``). The choice is a Bernoulli draw per token, as in transformers' data collator, so "15%"
holds in expectation. Masks are drawn again for every batch (dynamic masking, RoBERTa's choice).

Next sentence prediction: from documents (lists of sentences), a pair (A, B) takes A = sentence i and,
with probability 1/2, B = sentence i + 1 of the same document (IsNext, y = 1), otherwise a random
sentence of another document (NotNext, y = 0). The input is ``[CLS] A [SEP] B [SEP]`` with segment 0
for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.

The word-level tiny BERT of chapter 7 uses the course's :class:`neuraltext.tokenize.Vocab`; its
``<s>`` plays ``[CLS]``, ``</s>`` plays ``[SEP]`` and ``<mask>`` plays ``[MASK]``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import torch

from neuraltext.bert.model import IGNORE_INDEX, BertForPreTraining, mlm_loss, nsp_loss

__all__ = ["mask_tokens", "NspPair", "nsp_pairs", "topic_documents", "encode_pair", "pretraining_batches",
           "pretraining_loss", "fill_masks"]


def mask_tokens(input_ids: torch.Tensor, mask_id: int, special_ids: Sequence[int], vocab_size: int,
                p: float = 0.15, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking. Returns ``(inputs, labels)``, both ``(B, T)``: ``labels`` holds the
    original id where a token was chosen and -100 elsewhere. ``special_ids`` (padding, [CLS], [SEP],
    [MASK], unknown ...) are never chosen, nor drawn as random replacements.

    Everything is drawn on the generator's device (the ids' device without a generator) and nothing is
    read back to the host: no per-step wait on a GPU. A CPU generator gives the same masks everywhere."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (B, T), got {tuple(input_ids.shape)}")
    device = input_ids.device
    draw_on = generator.device if generator is not None else device
    special = sorted({int(i) for i in special_ids} | {int(mask_id)})  # Python ints: no device reads
    eligible = ~torch.isin(input_ids, torch.tensor(special, dtype=input_ids.dtype, device=device))  # (B, T)

    def uniform():
        return torch.rand(input_ids.shape, generator=generator, device=draw_on).to(device)

    chosen = eligible & (uniform() < p)  # (B, T): the prediction targets, 15% of ordinary tokens
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    u = uniform()  # one draw decides between the three fates of a chosen token
    to_mask = chosen & (u < 0.8)
    to_random = chosen & (u >= 0.8) & (u < 0.9)  # the remaining 10% (u >= 0.9) stay unchanged
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    inputs = torch.where(to_random, _random_ordinary(input_ids.shape, special, vocab_size, generator, draw_on)
                         .to(device, input_ids.dtype), inputs)
    return inputs, labels


def _random_ordinary(shape, special: list[int], vocab_size: int, generator, device) -> torch.Tensor:
    """Uniform draws among the ordinary ids ``[0, V) minus special`` (sorted): ``r`` uniform in
    ``[0, V - |special|)``, then the r-th ordinary id is ``r + #{j : special[j] - j <= r}`` (each
    special at or below it shifts it by one), found with ``searchsorted`` on the device."""
    special = [s for s in special if 0 <= s < vocab_size]
    r = torch.randint(vocab_size - len(special), shape, generator=generator, device=device)
    return _nth_ordinary(r, special)


def _nth_ordinary(r: torch.Tensor, special: list[int]) -> torch.Tensor:
    """The ``r``-th id (0-based) that is not in ``special`` (sorted, in range): ``r + #{j : special[j] - j <= r}``."""
    shift = torch.tensor([s - j for j, s in enumerate(special)], dtype=torch.long, device=r.device)
    return r + torch.searchsorted(shift, r, right=True)


class NspPair(NamedTuple):
    a: list[str]
    b: list[str]
    is_next: bool


def nsp_pairs(documents: Sequence[Sequence[Sequence[str]]], p_next: float = 0.5, seed: int = 0) -> list[NspPair]:
    """One pair per sentence that has a successor: B is the true next sentence with probability
    ``p_next``, else a random sentence from another document."""
    if len(documents) < 2:
        raise ValueError(f"NSP needs at least two documents (random B comes from another one), got {len(documents)}")
    rng = random.Random(seed)
    pairs = []
    for d, doc in enumerate(documents):
        for i in range(len(doc) - 1):
            if rng.random() < p_next:
                pairs.append(NspPair(list(doc[i]), list(doc[i + 1]), True))
            else:
                other = rng.randrange(len(documents) - 1)
                other += other >= d  # any document but this one
                pairs.append(NspPair(list(doc[i]), list(rng.choice(documents[other])), False))
    return pairs


def topic_documents(corpus, sentences_per_doc: int = 4) -> list[list[list[str]]]:
    """Group a :class:`neuraltext.data.SyntheticCorpus`'s sentences into short "documents" of one
    topic each (medicine, family, everyday life), in corpus order. The synthetic sentences are drawn
    independently, so a true "next sentence" is only recognisable by its topic."""
    medical = set().union(*(corpus.groups.get(g, []) for g in ("organ", "specialist", "treatment", "drug", "symptom")))
    family = set(corpus.groups.get("masculine", [])) | set(corpus.groups.get("feminine", []))
    buckets: dict[str, list[list[str]]] = {"medical": [], "family": [], "everyday": []}
    for s in corpus.sentences:
        words = set(s)
        topic = "medical" if words & medical else "family" if words & family else "everyday"
        buckets[topic].append(s)
    return [b[i:i + sentences_per_doc] for b in buckets.values() for i in range(0, len(b) - 1, sentences_per_doc)
            if len(b[i:i + sentences_per_doc]) > 1]


def encode_pair(vocab, a: Sequence[str], b: Sequence[str] | None, max_len: int) -> tuple[list[int], list[int]]:
    """``[CLS] A [SEP] B [SEP]`` as ids and segment ids; the longer sentence is cut first."""
    a, b = list(a), list(b or [])
    budget = max_len - (3 if b else 2)
    while len(a) + len(b) > budget:
        (a if len(a) >= len(b) else b).pop()
    ids = [vocab.bos_id, *vocab.encode(a), vocab.eos_id]
    segments = [0] * len(ids)
    if b:
        ids += [*vocab.encode(b), vocab.eos_id]
        segments += [1] * (len(b) + 1)
    return ids, segments


def pretraining_batches(pairs: Sequence[NspPair], vocab, batch_size: int = 32, max_len: int = 48, p: float = 0.15,
                        seed: int = 0) -> Callable[[], Iterator[dict[str, torch.Tensor]]]:
    """A callable giving, at each call (epoch), shuffled padded batches with fresh masks: dicts of
    ``input_ids``, ``attention_mask``, ``token_type_ids`` (B, T), ``mlm_labels`` (B, T), ``is_next`` (B,)
    and ``n_masked`` (an int: the number of chosen positions, so that the loss need not ask the device)."""
    encoded = [encode_pair(vocab, pr.a, pr.b, max_len) for pr in pairs]
    is_next = torch.tensor([pr.is_next for pr in pairs])
    specials = [vocab.stoi[t] for t in vocab.specials]
    generator = torch.Generator().manual_seed(seed)
    epoch = [0]

    def batches() -> Iterator[dict[str, torch.Tensor]]:
        order = torch.randperm(len(encoded), generator=generator).tolist()
        epoch[0] += 1
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            T = max(len(encoded[i][0]) for i in idx)
            ids = torch.full((len(idx), T), vocab.pad_id, dtype=torch.long)
            seg = torch.zeros((len(idx), T), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, :len(encoded[i][0])] = torch.tensor(encoded[i][0])
                seg[r, :len(encoded[i][1])] = torch.tensor(encoded[i][1])
            inputs, labels = mask_tokens(ids, vocab.mask_id, specials, len(vocab), p, generator)
            yield {"input_ids": inputs, "attention_mask": (ids != vocab.pad_id).long(), "token_type_ids": seg,
                   "mlm_labels": labels, "is_next": is_next[idx],
                   "n_masked": int((labels != IGNORE_INDEX).sum())}  # counted here, on the CPU

    return batches


def pretraining_loss(model: BertForPreTraining, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """L = L_MLM + L_NSP on one batch of :func:`pretraining_batches` (the loss for ``neuraltext.training.loop``).

    The MLM head runs on the chosen positions only (as BERT's own code gathers them): the same loss
    as ``mlm_loss(model(...)[0], labels)`` without computing V logits at the other 85% of positions.
    Their number comes with the batch (``n_masked``), so gathering them needs no host wait: a stable
    sort puts the chosen positions first. Without it, a boolean index (one wait) finds them. A batch
    with no chosen position has L_MLM = 0 (see :func:`~neuraltext.bert.model.mlm_loss`)."""
    out = model.bert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    h, labels = out.last_hidden_state.flatten(0, 1), batch["mlm_labels"].flatten()  # (B T, H), (B T,)
    chosen = labels != IGNORE_INDEX
    if "n_masked" in batch:
        where = torch.argsort(chosen.to(torch.uint8), descending=True, stable=True)[:int(batch["n_masked"])]
    else:
        where = chosen.nonzero().squeeze(1)
    mlm_logits = model.mlm(h[where])  # (M, V): M chosen positions
    return mlm_loss(mlm_logits, labels[where]) + nsp_loss(model.nsp(out.pooler_output), batch["is_next"])


@torch.no_grad()
def fill_masks(model: BertForPreTraining, vocab, sentence: str, k: int = 3) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable words at each ``<mask>`` of a space-separated sentence."""
    tokens = sentence.split()
    ids, seg = encode_pair(vocab, tokens, None, model.cfg.max_position)
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    was_training = model.training
    model.eval()
    logits, _ = model(x, torch.ones_like(x), torch.tensor([seg], device=device))
    model.train(was_training)
    probs = logits[0].softmax(-1)  # (T, V)
    out = []
    for t in (x[0] == vocab.mask_id).nonzero().squeeze(1).tolist():
        top = probs[t].topk(k)
        out.append([(vocab.itos[i], round(float(v), 3)) for v, i in zip(top.values, top.indices)])
    return out
