"""Use case 1, fine-tuning: the pretrained encoder and the study's head, trained together.

The study's head on the mean-pooled sentence vector: ``H -> 200 -> 110 -> 11``, a sigmoid per label,
trained with binary cross-entropy (chapter 7's :class:`~neuraltext.bert.BertClassifier`).

**A fair run.** The pretrained blocks that are trained take small steps (``encoder_lr``, 5e-5 by
default) and the new head large ones (``lr``), whichever way the encoder is run; the run goes on while
the loss on a held-out part of the training texts still falls, stops after ``patience`` epochs without
a new best (early stopping), keeps the weights of the best epoch, and is bounded by ``epochs`` (a
maximum). :class:`FineTuneHistory` records the epochs run, the best epoch and why the run stopped, so
a table can say whether the bound cut a run that was still improving.

Two ways to run it, the same model:

* **every block trained** (``train_layers=None``, the study's setting, for a GPU): tokenised batches
  through the whole encoder; the pretrained blocks take smaller steps than the new head
  (``encoder_lr``);
* **the top k blocks only** (the CPU default): the frozen blocks below give the same hidden states
  every epoch (eval mode, no gradient), so they are computed once and cached, and a step costs k
  blocks, not 12 (:class:`TopOfEncoder`).

The token embeddings stay frozen either way (e5's 250k x 384 table is 80% of its weights; 1,300
sentences cannot move it usefully).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.bert.finetune import BertClassifier, classifier_loss, pool, tokenize_batch
from neuraltext.bert.loading import from_pretrained
from neuraltext.training.history import TrainHistory
from neuraltext.training.loop import train
from neuraltext.utils import get_device, set_seed

__all__ = ["TopOfEncoder", "FineTuneHistory", "EarlyStopping", "fine_tune", "predict_labels"]


class TopOfEncoder(nn.Module):
    """The trainable part when only the top ``k`` blocks are fine-tuned: those blocks and the head,
    fed the (cached) hidden states that the frozen blocks below them produce."""

    def __init__(self, clf: BertClassifier, k: int):
        super().__init__()
        blocks = list(clf.bert.encoder)
        self.blocks = nn.ModuleList(blocks[len(blocks) - k:])  # the same modules as in clf
        self.head = clf.head

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        padding = mask == 0
        for block in self.blocks:
            h = block(h, key_padding_mask=padding)
        return self.head(pool(h, mask, "mean"))


def _frozen_states(clf, texts, k, batch_size, max_length, device):
    """Hidden states after the frozen bottom of the encoder (eval mode, no gradient), once: they
    are the same in every epoch, so fine-tuning the top ``k`` blocks costs k blocks per step, not 12."""
    bert = clf.bert.eval()
    bottom = list(bert.encoder)[: len(bert.encoder) - k]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths, little padding
    cached = []
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            b = tokenize_batch(clf.tokenizer, [texts[i] for i in idx], max_length, device)
            h = bert.embeddings(b["input_ids"], b.get("token_type_ids"))
            padding = b["attention_mask"] == 0
            for block in bottom:
                h = block(h, key_padding_mask=padding)
            cached.append((idx, h, b["attention_mask"]))
    return cached


@dataclass
class _Run:
    """What the training loop needs, whichever way the encoder is run: the module to train, its loss,
    its logits on a batch, and ``batches(part, shuffle)`` -> a fresh iterable of the part's batches."""

    model: nn.Module
    loss_fn: Callable
    logits: Callable
    batches: Callable
    fit: object
    val: object


def _whole_encoder(clf, texts, y, fit, val, batch_size, max_length, rng) -> _Run:
    """Every block trained: tokenised batches through the full model."""
    def batches(index, shuffle):
        def gen():
            idx = rng.permutation(index) if shuffle else index
            for s in range(0, len(idx), batch_size):
                part = idx[s:s + batch_size]
                b = tokenize_batch(clf.tokenizer, [texts[i] for i in part], max_length, torch.device("cpu"))
                b["labels"] = torch.from_numpy(y[part])
                yield b
        return gen

    def logits(m, b):
        return m(b["input_ids"], b["attention_mask"], b.get("token_type_ids"))

    return _Run(clf, classifier_loss, logits, batches, fit, val)


def _top_blocks(clf, k, texts, y, fit, val, batch_size, max_length, rng, device) -> _Run:
    """The top ``k`` blocks + head, on the frozen bottom's cached states."""
    caches = {"fit": _frozen_states(clf, [texts[i] for i in fit], k, batch_size, max_length, device),
              "val": _frozen_states(clf, [texts[i] for i in val], k, batch_size, max_length, device)}
    labels = {"fit": torch.from_numpy(y[fit]), "val": torch.from_numpy(y[val])}

    def batches(name, shuffle):
        def gen():
            chunks = caches[name]
            for j in (rng.permutation(len(chunks)) if shuffle else range(len(chunks))):
                idx, h, mask = chunks[j]
                yield {"h": h, "mask": mask, "labels": labels[name][idx]}
        return gen

    def logits(m, b):
        return m(b["h"], b["mask"])

    def loss_fn(m, b):
        return F.binary_cross_entropy_with_logits(logits(m, b), b["labels"].to(device))

    return _Run(TopOfEncoder(clf, k), loss_fn, logits, batches, "fit", "val")


def _unfreeze_top(clf: BertClassifier, train_layers: int | None) -> int:
    """Freeze the encoder, then unfreeze its top ``train_layers`` blocks (all with None); returns k."""
    n_blocks = len(clf.bert.encoder)
    k = n_blocks if train_layers is None else int(train_layers)
    if not 0 <= k <= n_blocks:
        raise ValueError(f"train_layers must be between 0 and {n_blocks} (or None for all), got {train_layers}")
    for p in clf.bert.parameters():
        p.requires_grad_(False)
    for block in list(clf.bert.encoder)[n_blocks - k:]:
        for p in block.parameters():
            p.requires_grad_(True)
    return k


def _optimizer(model: nn.Module, head: nn.Module, lr: float, encoder_lr: float | None) -> torch.optim.AdamW:
    """AdamW with two learning rates: ``lr`` for the new head, ``encoder_lr`` for pretrained blocks."""
    in_head = {id(p) for p in head.parameters()}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) in in_head], "lr": lr},
              {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in in_head],
               "lr": lr if encoder_lr is None else encoder_lr}]
    return torch.optim.AdamW([g for g in groups if g["params"]])


@dataclass
class FineTuneHistory(TrainHistory):
    """The training loop's history plus how the early-stopped run went: ``epochs_run``, the
    ``best_epoch`` (1-based; its weights are kept) and ``stopped`` (``"patience"``: no new best for
    ``patience`` epochs; ``"max epochs"``: the bound was reached, possibly while still improving)."""

    epochs_run: int = 0
    best_epoch: int = 0
    stopped: str = ""


class EarlyStopping:
    """Stop after ``patience`` epochs in a row without a new lowest validation loss; any new lowest
    loss, however small the gain, resets the count (a run that still improves is never stopped)."""

    def __init__(self, patience: int):
        self.patience, self.best, self.best_epoch, self.waited, self.epoch = patience, np.inf, 0, 0, 0

    def update(self, val_loss: float) -> bool:
        """Record one epoch's validation loss; True when it is a new best (keep these weights)."""
        self.epoch += 1
        if val_loss < self.best:
            self.best, self.best_epoch, self.waited = val_loss, self.epoch, 0
            return True
        self.waited += 1
        return False

    @property
    def stop(self) -> bool:
        return self.waited >= self.patience


def _val_loss(run: _Run, device):
    @torch.no_grad()
    def val_loss(m):
        total, n = 0.0, 0
        for b in run.batches(run.val, False)():
            z = run.logits(m, {key: v.to(device) for key, v in b.items()})
            total += float(F.binary_cross_entropy_with_logits(z, b["labels"].to(device), reduction="sum"))
            n += b["labels"].numel()
        return {"val_loss": total / n}
    return val_loss


def _train_with_early_stopping(run: _Run, clf, optimizer, epochs: int, patience: int, device):
    """One epoch at a time, at most ``epochs``; keep the weights of the epoch with the lowest
    validation loss, and stop after ``patience`` epochs without a new lowest one."""
    stopper, history = EarlyStopping(patience), FineTuneHistory(stopped="max epochs")
    best_state = None
    for _ in range(epochs):
        train(run.model, run.loss_fn, run.batches(run.fit, True), epochs=1, optimizer=optimizer,
              device=device, evaluate=_val_loss(run, device), history=history, desc="fine-tune")
        if stopper.update(history.eval[-1]["val_loss"]):  # keep a copy of the trained weights only
            best_state = {name: p.detach().clone() for name, p in clf.named_parameters() if p.requires_grad}
        if stopper.stop:
            history.stopped = "patience"
            break
    history.epochs_run, history.best_epoch = stopper.epoch, stopper.best_epoch
    clf.load_state_dict(best_state, strict=False)
    clf.eval()
    return clf, history


def _check_arguments(epochs, patience, val_fraction, lr, encoder_lr, batch_size) -> None:
    """Bad settings fail before the encoder is loaded, naming the argument, its value and what is allowed."""
    for name, value, low in (("epochs", epochs, 1), ("patience", patience, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"fine_tune: {name} must be an integer >= {low}, got {value!r}")
    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise ValueError(f"fine_tune: val_fraction must be in (0, 1), got {val_fraction!r}")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"fine_tune: lr must be a positive learning rate, got {lr!r}")
    if encoder_lr is not None and not (isinstance(encoder_lr, (int, float)) and np.isfinite(encoder_lr) and encoder_lr >= 0):
        raise ValueError(f"fine_tune: encoder_lr must be a learning rate >= 0 (0: frozen) or None, got {encoder_lr!r}")


def fine_tune(train_texts: Sequence[str], y_train: np.ndarray, model_name: str = "multilingual-e5-small",
              epochs: int = 20, lr: float = 1e-3, batch_size: int = 32, train_layers: int | None = 2,
              val_fraction: float = 0.1, patience: int = 3, max_length: int = 64, prefix: str | None = "query: ",
              seed: int = 0, device=None, encoder_lr: float | None = 5e-5):
    """Fine-tune a pretrained encoder with the study's head (H -> 200 -> 110 -> 11, sigmoid) through
    the shared training loop (binary cross-entropy), with early stopping on the loss of a held-out
    validation part of the training texts (``val_fraction``): at most ``epochs`` epochs, stopped after
    ``patience`` epochs without a new lowest validation loss, the best epoch's weights kept.

    ``train_layers``: how many of the top encoder blocks are trained with the head; the blocks below
    are frozen, so their outputs are computed once and cached (the same numbers every epoch, in eval
    mode). ``None`` trains every block (the study's setting; on a GPU). ``lr``: the new head's
    learning rate; ``encoder_lr``: that of the trained pretrained blocks, in both settings (``None``:
    ``lr``, as for the head). Pretrained blocks need much smaller steps than a new head: with every
    block trained at the head's 1e-3, the model forgets what it knew and predicts the majority label
    only (measured on the synthetic data), hence ~1e-3 for the head and ~1e-5 to 1e-4 for the encoder.
    Returns ``(classifier, history)``: a :class:`FineTuneHistory`, whose ``eval`` lists the validation
    loss per epoch and ``epochs_run``/``best_epoch``/``stopped`` say how the run ended.
    """
    _check_arguments(epochs=epochs, patience=patience, val_fraction=val_fraction, lr=lr, encoder_lr=encoder_lr,
                     batch_size=batch_size)
    set_seed(seed)
    device = get_device(device)
    texts = [(prefix or "") + t for t in train_texts]
    y_train = np.asarray(y_train, dtype=np.float32)
    if len(texts) != len(y_train):
        raise ValueError(f"{len(texts)} texts but {len(y_train)} label rows")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    n_val = max(1, int(round(val_fraction * len(texts))))
    val, fit = order[:n_val], order[n_val:]

    clf = BertClassifier(from_pretrained(model_name, device=device), n_labels=y_train.shape[1],
                         pooling="mean").to(device)
    k = _unfreeze_top(clf, train_layers)
    if train_layers is None:
        run = _whole_encoder(clf, texts, y_train, fit, val, batch_size, max_length, rng)
    else:
        run = _top_blocks(clf, k, texts, y_train, fit, val, batch_size, max_length, rng, device)
    optimizer = _optimizer(run.model, clf.head, lr, encoder_lr)
    return _train_with_early_stopping(run, clf, optimizer, epochs, patience, device)


def predict_labels(clf, texts: Sequence[str], prefix: str | None = "query: ", max_length: int = 64) -> np.ndarray:
    """The one decision rule for the fine-tuned model: sigmoid probability > 0.5."""
    probs = clf.predict_proba([(prefix or "") + t for t in texts], max_length=max_length)
    return (probs.numpy() > 0.5).astype(int)
