"""The fast paths that the performance appendix explains; each computes what a chapter module
defines, faster, is used by that module, and is tested against it.

* :mod:`~neuraltext.fast.bptt` -- the LSTM layer's forward and backward through time by hand, on
  oneDNN's matrix products (used by :class:`neuraltext.rnn.LSTM`);
* :mod:`~neuraltext.fast.word2vec` -- batched SGD for skip-gram and CBOW, Hogwild threads and an
  alias-table noise sampler (used by :class:`neuraltext.word2vec.Word2Vec` with ``engine="torch"``,
  and for CBOW or on a GPU);
* :mod:`~neuraltext.fast.word2vec_kernel` -- skip-gram SGD one example at a time in a loop compiled
  by numba, run by Hogwild threads without the GIL (the default of
  :class:`neuraltext.word2vec.Word2Vec` for skip-gram on the CPU when numba is installed).

Chapter 2's fast paths stay in its own modules, where they are a line each: the pair counting by
one ``bincount`` (:func:`neuraltext.cooccurrence.cooccurrence_matrix`) and the LU-normalised power
iterations of the randomised SVD (:func:`neuraltext.cooccurrence.randomized_svd`).

Nothing here imports a chapter: the chapters call down into it.
"""

from neuraltext.fast import bptt, word2vec, word2vec_kernel
from neuraltext.fast.bptt import (LSTMLayerBPTT, lstm_layer_bptt)
from neuraltext.fast.word2vec import (alias_table, sample_alias, train)

__all__ = ["bptt", "word2vec", "word2vec_kernel", "LSTMLayerBPTT", "lstm_layer_bptt", "alias_table", "sample_alias", "train"]
