"""Sequence to sequence with attention (chapter 5).

* :mod:`~neuraltext.seq2seq.model` -- the encoder, the decoder, additive / dot / general attention,
  greedy decoding and beam search;
* :mod:`~neuraltext.seq2seq.training` -- the date task's batches with teacher forcing, the training
  loop, and :func:`translate` (strings in, strings out), which chapter 6's transformer uses as well.
"""

from neuraltext.seq2seq import model, training
from neuraltext.seq2seq.model import (Seq2SeqConfig, AdditiveAttention, DotAttention, GeneralAttention,
                                      make_attention, Encoder, Decoder, Seq2Seq, Decoded)
from neuraltext.seq2seq.training import (cpu_threads, seq2seq_loss, make_batches, train_seq2seq, translate)

__all__ = ["model", "training", "Seq2SeqConfig", "AdditiveAttention", "DotAttention", "GeneralAttention",
           "make_attention", "Encoder", "Decoder", "Seq2Seq", "Decoded", "cpu_threads", "seq2seq_loss",
           "make_batches", "train_seq2seq", "translate"]
