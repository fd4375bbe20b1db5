"""Training and using the sequence-to-sequence models on (source, target) string pairs.

The models are in :mod:`neuraltext.seq2seq.model` (recurrent, chapter 5) and
:mod:`neuraltext.transformer.model` (chapter 6); this module holds what both chapters do with them on the
date task of :mod:`neuraltext.data.dates`: batches with teacher forcing (``tgt_in = <s> y_1 .. y_n``,
``tgt_out = y_1 .. y_n </s>``), the training loop (:func:`neuraltext.training.loop.train` with a decaying
learning rate), and :func:`translate`, strings in and strings out, for either model. The package
:mod:`neuraltext.seq2seq` re-exports all of it, where the chapter imports it from.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuraltext.data.dates import CharVocab
from neuraltext.seq2seq.model import Seq2Seq, _check_max_len
from neuraltext.utils import cpu_threads  # noqa: F401 (re-exported: chapter 5 imports it from here)

__all__ = ["cpu_threads", "seq2seq_loss", "make_batches", "train_seq2seq", "translate"]




def _cpu_threads_for(device: torch.device, threads: int | None) -> int | None:
    """The thread limit to apply: ``threads`` on the CPU, none on an accelerator."""
    return threads if device.type == "cpu" else None


def seq2seq_loss(model: nn.Module, batch) -> Tensor:
    """Cross-entropy of teacher-forced predictions, averaged over real (non-pad) target symbols.

    ``batch = (src (B, S), src_lengths (B,), tgt_in (B, T), tgt_out (B, T))``, as from
    :func:`make_batches`: tgt_in = <bos> y_1 .. y_n, tgt_out = y_1 .. y_n <eos>.
    """
    src, src_lengths, tgt_in, tgt_out = batch
    logits, _ = model(src, src_lengths, tgt_in)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1),
                           ignore_index=model.config.pad_id)


def make_batches(pairs: Sequence[tuple[str, str]], src_vocab: CharVocab, tgt_vocab: CharVocab,
                 batch_size: int = 64, shuffle: bool = True, seed: int = 0, bucket: bool = True):
    """Tensor batches ``(src, src_lengths, tgt_in, tgt_out)`` from (source, target) pairs.

    With ``bucket`` the pairs are grouped by source length (sorted within chunks of 50 batches) so
    that a batch holds sequences of similar length and the recurrent loops waste little time on
    padding; the order of the batches is then shuffled with ``seed``.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("make_batches: no pairs")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    order = list(range(len(pairs)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(order)
    if bucket:
        chunk = 50 * batch_size
        order = [i for k in range(0, len(order), chunk)
                 for i in sorted(order[k:k + chunk], key=lambda i: len(pairs[i][0]))]
    batches = []
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        src, src_lengths = src_vocab.batch([pairs[i][0] for i in idx], eos=True)
        tgt, _ = tgt_vocab.batch([pairs[i][1] for i in idx], bos=True, eos=True)
        tgt_in, tgt_out = tgt[:, :-1].clone(), tgt[:, 1:].clone()
        tgt_in[tgt_in == tgt_vocab.eos_id] = tgt_vocab.pad_id  # <eos> is never an input
        batches.append((src, src_lengths, tgt_in, tgt_out))
    if shuffle:
        rng.shuffle(batches)
    return batches


def train_seq2seq(model: nn.Module, pairs: Sequence[tuple[str, str]], src_vocab: CharVocab,
                  tgt_vocab: CharVocab, epochs: int = 5, batch_size: int = 64, lr: float = 3e-3,
                  clip_norm: float | None = 1.0, seed: int = 0, device=None, threads: int | None = 1,
                  **train_kwargs):
    """Teacher-forced training with the shared loop :func:`neuraltext.training.loop.train`.

    The batches are reshuffled every epoch (seeded: ``seed + epoch``); the learning rate decays
    linearly to 10% over the run; ``threads`` CPU threads when training on the CPU (see
    :func:`cpu_threads`; ignored on a GPU). Returns the
    :class:`neuraltext.training.loop.TrainHistory`.
    """
    from neuraltext.training.loop import train
    from neuraltext.utils import get_device

    epoch = {"n": 0}

    def batches():
        epoch["n"] += 1
        return make_batches(pairs, src_vocab, tgt_vocab, batch_size, shuffle=True, seed=seed + epoch["n"])

    steps_per_epoch = math.ceil(len(pairs) / batch_size)
    total = epochs * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - 0.9 * min(s, total) / total)
    device = get_device(device)
    with cpu_threads(_cpu_threads_for(device, threads)):
        return train(model, seq2seq_loss, batches, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                     clip_norm=clip_norm, device=device, desc="seq2seq", **train_kwargs)


@torch.no_grad()
def translate(model: nn.Module, sources: Sequence[str], src_vocab: CharVocab, tgt_vocab: CharVocab,
              beam_width: int = 1, max_len: int = 12, batch_size: int = 256,
              return_alpha: bool = False, threads: int | None = 1):
    """Decode ``sources`` to strings with a :class:`neuraltext.seq2seq.model.Seq2Seq` or a
    chapter 6's :class:`neuraltext.transformer.Transformer` -- any model with a
    ``decode_greedy(src, bos_id, eos_id, max_len)`` method (greedy when ``beam_width`` is 1, else beam
    search, which only the recurrent model has). The one ``translate`` of the package.

    Returns the list of predictions, and with ``return_alpha`` (recurrent model only) also a list of
    attention matrices (output steps incl. <eos> x source characters incl. <eos>), one per source
    (None for the baseline). ``threads``: CPU threads when the model is on the CPU (see
    :func:`cpu_threads`).
    """
    is_seq2seq = isinstance(model, Seq2Seq)
    if not is_seq2seq and (beam_width != 1 or return_alpha):
        raise ValueError(
            f"{type(model).__name__} decodes greedily only: beam_width must be 1 and return_alpha False "
            f"(got beam_width={beam_width!r}, return_alpha={return_alpha!r}); attention maps: "
            f"Transformer.attention_maps"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    _check_max_len(max_len)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with cpu_threads(_cpu_threads_for(device, threads)):
            if not is_seq2seq:
                return _translate_greedy(model, sources, src_vocab, tgt_vocab, max_len, batch_size, device)
            return _translate(model, sources, src_vocab, tgt_vocab, beam_width, max_len, batch_size,
                              return_alpha, device)
    finally:
        model.train(was_training)


def _translate_greedy(model, sources, src_vocab, tgt_vocab, max_len, batch_size, device):
    # any model with ``decode_greedy(src, bos_id, eos_id, max_len)``, e.g. chapter 6's Transformer
    preds = []
    for k in range(0, len(sources), batch_size):
        src, _ = src_vocab.batch(list(sources[k:k + batch_size]), eos=True, device=device)  # (B, S)
        ids = model.decode_greedy(src, tgt_vocab.bos_id, tgt_vocab.eos_id, max_len)  # (B, <= max_len)
        preds.extend(tgt_vocab.decode(row) for row in ids.tolist())
    return preds


def _translate(model, sources, src_vocab, tgt_vocab, beam_width, max_len, batch_size, return_alpha, device):
    preds, alphas = [], []
    for k in range(0, len(sources), batch_size):
        chunk = list(sources[k:k + batch_size])
        src, src_lengths = src_vocab.batch(chunk, eos=True, device=device)
        out = (model.greedy(src, src_lengths, max_len) if beam_width == 1
               else model.beam_search(src, src_lengths, beam_width, max_len))
        lengths = src_lengths.tolist()  # one transfer per batch, not one per sequence
        alpha = out.alpha.cpu() if return_alpha and out.alpha is not None else None
        for i, row in enumerate(out.ids.tolist()):
            text = tgt_vocab.decode(row)
            preds.append(text)
            if return_alpha:
                if alpha is None:
                    alphas.append(None)
                else:
                    n_out = min(len(text) + 1, alpha.size(1))
                    alphas.append(alpha[i, :n_out, : lengths[i]])
    return (preds, alphas) if return_alpha else preds
