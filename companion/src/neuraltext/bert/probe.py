"""Small studies of a pre-trained encoder (chapter 7): how well its contextual vectors separate the
senses of a word, layer by layer, and a sentence classifier fine-tuned on part of it.

Sense separation. A word ``w`` occurs in sentences ``s_1 .. s_n`` with senses ``c_1 .. c_n``; its
contextual vectors at layer ``k`` are ``v_1 .. v_n`` (:func:`~neuraltext.bert.finetune.word_vectors`).
With ``cos_ij`` the cosine of ``v_i`` and ``v_j``:

    same      = mean of cos_ij over the pairs i != j with c_i = c_j
    different = mean of cos_ij over the pairs with c_i != c_j
    gap       = same - different        (> 0: occurrences of one sense are closer to each other)

Fine-tuning a classifier on part of the encoder: :func:`freeze_below` keeps the token, segment and
position embeddings and every block but the top ``trainable_blocks`` as pre-trained (their
``requires_grad`` is off), :func:`labelled_batches` feeds ``neuraltext.training.train`` one epoch of
tokenised ``(text, label)`` batches in a fresh order each time, :func:`accuracy` scores the classifier on
held-out texts, and :func:`majority_baseline` is the accuracy of always answering the most frequent
label, the landmark a classifier has to beat.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neuraltext.bert.finetune import BertClassifier, word_vectors
from neuraltext.bert.model import BertModel

__all__ = ["sense_cosines", "sense_separation", "separation_by_layer", "freeze_below", "labelled_batches",
           "accuracy", "majority_baseline"]


def sense_cosines(model: BertModel, sentences: Sequence[str], word: str, layer: int = -1) -> np.ndarray:
    """Cosines ``(n, n)`` between the contextual vectors of ``word`` in the ``n`` sentences, at ``layer``
    (0 = the input embeddings, -1 = the last block)."""
    v = F.normalize(word_vectors(model, list(sentences), word, layer=layer), dim=-1)  # (n, H)
    return (v @ v.T).numpy()


def sense_separation(cosines: np.ndarray, senses: Sequence[str]) -> dict[str, float]:
    """``same``, ``different`` and ``gap = same - different`` (module docstring) of a cosine matrix whose
    rows are the occurrences labelled ``senses``, and its ``lowest`` entry."""
    c = np.asarray(cosines, dtype=np.float64)
    n = len(senses)
    if c.shape != (n, n):
        raise ValueError(f"cosines must be ({n}, {n}) for {n} senses, got shape {c.shape}")
    label = np.asarray(senses)
    same_sense = (label[:, None] == label[None, :]) & ~np.eye(n, dtype=bool)
    different = label[:, None] != label[None, :]
    if not same_sense.any() or not different.any():
        raise ValueError(f"senses must hold at least two senses and one of them twice, got {list(senses)}")
    same, diff = float(c[same_sense].mean()), float(c[different].mean())
    return {"same": same, "different": diff, "gap": same - diff, "lowest": float(c.min())}


def separation_by_layer(model: BertModel, examples: Mapping[str, Sequence[tuple[str, str]]],
                        layers: Sequence[int]) -> dict[str, list[dict[str, float]]]:
    """For each word of ``examples`` (word -> ``[(sense, sentence), ...]``), :func:`sense_separation` at
    each of ``layers``: ``{word: [separation at layers[0], ...]}``."""
    out: dict[str, list[dict[str, float]]] = {}
    for word, items in examples.items():
        senses, sentences = [s for s, _ in items], [t for _, t in items]
        out[word] = [sense_separation(sense_cosines(model, sentences, word, layer=k), senses) for k in layers]
    return out


def freeze_below(classifier: BertClassifier, trainable_blocks: int) -> list[torch.nn.Parameter]:
    """Freeze the embeddings and every encoder block but the top ``trainable_blocks``; return the encoder's
    parameters that stay trainable (for their own learning rate). The head is left trainable."""
    blocks = classifier.bert.encoder
    if not isinstance(trainable_blocks, int) or not 0 <= trainable_blocks <= len(blocks):
        raise ValueError(f"trainable_blocks must be an integer in [0, {len(blocks)}] (the encoder's blocks), "
                         f"got {trainable_blocks!r}")
    classifier.bert.embeddings.requires_grad_(False)
    for block in blocks[:len(blocks) - trainable_blocks]:
        block.requires_grad_(False)
    return [p for p in classifier.bert.parameters() if p.requires_grad]


def labelled_batches(data: Sequence[tuple[str, int]], tokenizer: Any, batch_size: int = 16, prefix: str = "",
                     seed: int = 0) -> Callable[[], Iterator[dict[str, torch.Tensor]]]:
    """A function that yields one epoch of tokenised batches of ``(text, label)`` pairs, in a fresh
    random order at each call: ``input_ids``, ``attention_mask`` (padded to the batch's longest text)
    and ``labels`` (long), ``prefix`` prepended to every text (e5's ``"query: "``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not data:
        raise ValueError("data is empty: pass a list of (text, label) pairs")
    rng = np.random.default_rng(seed)

    def epoch() -> Iterator[dict[str, torch.Tensor]]:
        order = rng.permutation(len(data))
        for k in range(0, len(data), batch_size):
            chunk = [data[i] for i in order[k:k + batch_size]]
            enc = tokenizer([prefix + t for t, _ in chunk], padding=True, return_tensors="pt")
            yield {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                   "labels": torch.tensor([y for _, y in chunk])}
    return epoch


def accuracy(classifier: BertClassifier, data: Sequence[tuple[str, int]], prefix: str = "") -> float:
    """Share of the ``(text, label)`` pairs whose most probable class is the label."""
    if not data:
        raise ValueError("data is empty: pass a list of (text, label) pairs")
    p = classifier.predict_proba([prefix + t for t, _ in data])
    return float((p.argmax(-1).numpy() == np.array([y for _, y in data])).mean())


def majority_baseline(labels: Sequence[int]) -> float:
    """Accuracy of always answering the most frequent label: its count over ``len(labels)``."""
    if len(labels) == 0:
        raise ValueError("labels is empty")
    return Counter(labels).most_common(1)[0][1] / len(labels)
