"""Using a pre-trained BERT: sentence vectors (embeddings) and fine-tuning a classifier.

Sentence vector of a text with tokens ``h_1 .. h_T`` (the last layer) and attention mask ``m_t``:

    CLS pooling:   e = h_[CLS] = h_1
    mean pooling:  e = sum_t m_t h_t / sum_t m_t          (padding excluded; sentence-transformers'
                                                           "mean tokens", and e5's pooling)

Fine-tuning (the family study's head): ``e`` (H) -> 200 -> 110 -> n, ReLU between the layers, and

    multilabel:  P(label_j) = sigmoid(z_j), loss = binary cross-entropy summed over labels (mean)
    multiclass:  P(class c) = softmax(z)_c, loss = cross-entropy

all of BERT's weights being trained with the head (or only the head, ``freeze_encoder=True``).
multilingual-e5 expects a ``"query: "`` or ``"passage: "`` prefix: pass ``prefix=`` to :func:`encode`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.bert.model import BertModel

__all__ = ["POOLINGS", "pool", "encode", "word_vectors", "BertClassifier", "classifier_loss", "tokenize_batch"]

POOLINGS = ("cls", "mean")


def pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "cls") -> torch.Tensor:
    """(B, T, H) and mask (B, T) -> sentence vectors (B, H) by CLS or masked-mean pooling."""
    if pooling == "cls":
        return last_hidden_state[:, 0]
    if pooling == "mean":
        m = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)  # (B, T, 1)
        return (last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, H)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def tokenize_batch(tokenizer: Any, texts: Sequence[str], max_length: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Padded, truncated ids/mask/segments of ``texts`` on ``device`` (a transformers tokenizer)."""
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    out = {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}
    if "token_type_ids" in enc:
        out["token_type_ids"] = enc["token_type_ids"].to(device)
    return out


def _check_texts(texts, name: str = "texts") -> list[str]:
    """A list of strings; a single string is refused (iterating it would give one row per character)."""
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, got one string ({texts[:40]!r}): wrap it in a "
                        f"list, [text], for one row")
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name} must be a list of strings, got an item {bad!r} ({type(bad).__name__})")
    return texts


def _check_max_length(max_length, model) -> int:
    """``max_length`` of the tokenizer's truncation: an int in [2, the model's positions] (room for
    ``[CLS]`` and ``[SEP]``); None = the model's positions (ours: ``cfg.max_position``, transformers':
    ``config.max_position_embeddings``)."""
    cfg = getattr(model, "cfg", None)
    positions = cfg.max_position if cfg is not None else model.config.max_position_embeddings
    if max_length is None:
        return positions
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 2 <= max_length <= positions:
        raise ValueError(f"max_length must be None (the model's {positions} positions) or an integer in "
                         f"[2, {positions}] (tokens per text, [CLS] and [SEP] included), got {max_length!r}")
    return max_length


@torch.no_grad()
def encode(model: BertModel, texts: Sequence[str], tokenizer: Any = None, pooling: str = "cls",
           batch_size: int = 32, device: str | torch.device | None = None, prefix: str | None = None,
           progress: bool = True, normalize: bool = False, max_length: int | None = None) -> torch.Tensor:
    """Sentence vectors ``(len(texts), H)`` (float32, on the CPU) of a list of texts.

    Args:
        model: our :class:`~neuraltext.bert.model.BertModel` (from :func:`~neuraltext.bert.model.from_pretrained`,
            which attaches its tokenizer), or a ``transformers`` BERT-architecture model.
        texts: a list of strings (a single string is refused: wrap it in a list); sorted by length
            internally so that batches carry little padding, the output is in the input order.
        tokenizer: a transformers tokenizer (default: ``model.tokenizer``).
        pooling: ``"cls"`` or ``"mean"`` (see the module docstring).
        prefix: prepended to every text, e.g. ``"query: "`` or ``"passage: "`` for e5.
        progress: a progress bar over batches (off when ``NEURALTEXT_PROGRESS=0``).
        normalize: divide every vector by its L2 norm (then dot product = cosine).
        max_length: truncate longer texts; None = the model's positions, else an int in [2, positions].
    """
    from neuraltext.utils import get_device
    from neuraltext.utils import progress as bar

    texts = [(prefix or "") + t for t in _check_texts(texts)]
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    max_length = _check_max_length(max_length, model)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("no tokenizer: pass tokenizer= or load the model with neuraltext.bert.model.from_pretrained")
    device = get_device(device) if device is not None else next(model.parameters()).device
    model = model.to(device)
    was_training = model.training
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: torch.Tensor | None = None
    starts = range(0, len(texts), batch_size)
    off = {} if progress else {"disable": True}  # progress=True still obeys NEURALTEXT_PROGRESS=0
    for k in bar(starts, total=len(starts), desc="encode", leave=False, **off):
        idx = order[k:k + batch_size]
        batch = tokenize_batch(tokenizer, [texts[i] for i in idx], max_length, device)
        h = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).last_hidden_state
        e = pool(h, batch["attention_mask"], pooling)  # (b, H)
        if normalize:
            e = F.normalize(e, dim=-1)
        out = torch.empty(len(texts), e.shape[-1]) if out is None else out
        out[idx] = e.float().cpu()
    model.train(was_training)
    return out if out is not None else torch.empty(0, _hidden_size(model))


def _hidden_size(model) -> int:
    cfg = getattr(model, "cfg", None)
    return cfg.hidden_size if cfg is not None else model.config.hidden_size


class BertClassifier(nn.Module):
    """BERT + a feed-forward head: sentence vector (H) -> hidden sizes (default 200, 110) -> n labels.

    ``forward`` returns logits ``(B, n)``; :meth:`predict_proba` applies the sigmoid (multilabel) or
    the softmax (multiclass). ``pooling``: ``"cls"``, ``"mean"`` or ``"pooler"`` (BERT's tanh pooler).
    """

    def __init__(self, bert: BertModel, n_labels: int, hidden: Sequence[int] = (200, 110), multilabel: bool = True,
                 pooling: str = "cls", dropout: float = 0.1, freeze_encoder: bool = False):
        super().__init__()
        if n_labels < 1:
            raise ValueError(f"n_labels must be >= 1, got {n_labels}")
        if pooling not in (*POOLINGS, "pooler"):
            raise ValueError(f"pooling must be one of {(*POOLINGS, 'pooler')}, got {pooling!r}")
        self.bert, self.multilabel, self.pooling = bert, multilabel, pooling
        self.cfg = bert.cfg
        self.tokenizer = bert.tokenizer
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        sizes = [bert.cfg.hidden_size, *hidden]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(sizes[-1], n_labels))
        self.head = nn.Sequential(*layers)
        for p in bert.parameters():
            p.requires_grad_(not freeze_encoder)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        if self.pooling == "pooler":
            e = out.pooler_output
        else:
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            e = pool(out.last_hidden_state, mask, self.pooling)  # (B, H)
        return self.head(e)  # (B, n)

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None) -> torch.Tensor:
        """Probabilities ``(len(texts), n)`` for a list of raw texts (uses the model's tokenizer; a single
        string is refused: wrap it in a list). ``max_length``: None = 128, or the model's positions if fewer."""
        texts = _check_texts(texts)
        max_length = (min(128, _check_max_length(None, self.bert)) if max_length is None
                      else _check_max_length(max_length, self.bert))
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        probs = []
        for k in range(0, len(texts), batch_size):
            b = tokenize_batch(self.tokenizer, texts[k:k + batch_size], max_length, device)
            z = self(b["input_ids"], b["attention_mask"], b.get("token_type_ids"))
            probs.append((z.sigmoid() if self.multilabel else z.softmax(-1)).cpu())
        self.train(was_training)
        return torch.cat(probs)


def classifier_loss(model: BertClassifier, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Binary cross-entropy (multilabel, ``labels`` float (B, n)) or cross-entropy (multiclass,
    ``labels`` long (B,)) of a :class:`BertClassifier` on a tokenised batch (for ``neuraltext.training.loop``)."""
    z = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    if model.multilabel:
        return F.binary_cross_entropy_with_logits(z, batch["labels"].to(z.dtype))
    return F.cross_entropy(z, batch["labels"])


@torch.no_grad()
def word_vectors(model: BertModel, sentences: Sequence[str], word: str, tokenizer: Any = None,
                 layer: int = -1) -> torch.Tensor:
    """Contextual vector of ``word`` in each sentence ``(len(sentences), H)``: the mean of the
    hidden states (of ``layer``, default the last) of the sub-word pieces that cover its first
    occurrence. The same word gets a different vector in every sentence; a static (word2vec) vector
    would be the same row each time."""
    import re

    tokenizer = tokenizer if tokenizer is not None else model.tokenizer
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for s in sentences:
        found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", s, flags=re.IGNORECASE)
        if found is None:
            raise ValueError(f"word {word!r} does not occur in the sentence {s!r}")
        enc = tokenizer(s, return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")[0]  # (T, 2) character span of every piece
        pieces = (offsets[:, 0] < found.end()) & (offsets[:, 1] > found.start()) & (offsets[:, 1] > offsets[:, 0])
        batch = {k: v.to(device) for k, v in enc.items()}
        states = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                       output_hidden_states=True).hidden_states
        out.append(states[layer][0, pieces.to(device)].mean(0).float().cpu())  # (H,)
    model.train(was_training)
    return torch.stack(out)
