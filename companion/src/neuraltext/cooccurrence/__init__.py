"""Co-occurrence matrices and their truncated SVD (chapter 2).

* :mod:`~neuraltext.cooccurrence.counts` -- counting words inside a window, PPMI, and
  :class:`CooccurrenceSVD`, the whole pipeline as a scikit-learn estimator;
* :mod:`~neuraltext.cooccurrence.svd` -- the truncated SVD (randomized, or exact for small matrices).
"""

from neuraltext.cooccurrence import counts, svd
from neuraltext.cooccurrence.counts import (build_vocabulary, cooccurrence_matrix, ppmi, CooccurrenceSVD,
                                            TOY_CORPUS, TOY_VOCABULARY, TOY_COURSE_VECTORS)
from neuraltext.cooccurrence.svd import (SVD_METHODS, svd_flip, randomized_svd, truncated_svd)

__all__ = ["counts", "svd", "build_vocabulary", "cooccurrence_matrix", "ppmi", "CooccurrenceSVD",
           "TOY_CORPUS", "TOY_VOCABULARY", "TOY_COURSE_VECTORS", "SVD_METHODS", "svd_flip", "randomized_svd",
           "truncated_svd"]
