"""The fast paths that the performance appendix explains; each computes what a chapter module
defines, faster, is used by that module, and is tested against it.

* :mod:`~neuraltext.fast.bptt` -- the LSTM layer's forward and backward through time by hand, on
  oneDNN's matrix products (used by :class:`neuraltext.rnn.LSTM`);
* :mod:`~neuraltext.fast.word2vec` -- batched SGD for skip-gram and CBOW, Hogwild threads and an
  alias-table noise sampler (used by :class:`neuraltext.word2vec.Word2Vec`).

Nothing here imports a chapter: the chapters call down into it.
"""

from neuraltext.fast import bptt, word2vec
from neuraltext.fast.bptt import (LSTMLayerBPTT, lstm_layer_bptt)
from neuraltext.fast.word2vec import (alias_table, sample_alias, train)

__all__ = ["bptt", "word2vec", "LSTMLayerBPTT", "lstm_layer_bptt", "alias_table", "sample_alias", "train"]
