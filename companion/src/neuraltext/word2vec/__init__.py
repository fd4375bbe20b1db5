"""word2vec: skip-gram and CBOW with negative sampling (chapter 3).

* :mod:`~neuraltext.word2vec.sampling` -- the vocabulary, the noise distribution, sub-sampling and the
  (dynamic) windows: what one training example is;
* :mod:`~neuraltext.word2vec.model` -- the negative-sampling loss and its gradient, and :class:`Word2Vec`;
* :mod:`~neuraltext.word2vec.evaluation` -- analogies and word similarities, scored with gensim's
  evaluation code so that our vectors and gensim's are judged alike.

The fast training path (batched SGD, Hogwild threads, an alias-table noise sampler) is
:mod:`neuraltext.fast.word2vec`, explained in the performance appendix.
"""

from neuraltext.word2vec import sampling, model, evaluation
from neuraltext.word2vec.sampling import (build_vocab, noise_distribution, keep_probability, sample_noise,
                                          skipgram_pairs, cbow_windows, make_examples)
from neuraltext.word2vec.model import (Word2VecConfig, Word2Vec, sgns_loss, sgns_gradients)
from neuraltext.word2vec.evaluation import (planted_similarity_pairs, evaluate, gensim_test_coverage)

__all__ = ["sampling", "model", "evaluation", "build_vocab", "noise_distribution", "keep_probability",
           "sample_noise", "skipgram_pairs", "cbow_windows", "make_examples", "Word2VecConfig", "Word2Vec",
           "sgns_loss", "sgns_gradients", "planted_similarity_pairs", "evaluate", "gensim_test_coverage"]
