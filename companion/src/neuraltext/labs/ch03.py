"""Chapter 3's exercises: the negative-sampling loss, its hand-derived gradient, the noise distribution.

The references are the package's :func:`~neuraltext.word2vec.model.sgns_loss` (written for autograd),
:func:`~neuraltext.word2vec.model.sgns_gradients` (the closed form, equal to autograd's in the chapter) and
:func:`~neuraltext.word2vec.model.noise_distribution`.
"""

from __future__ import annotations

import numpy as np
import torch

from neuraltext.labs.check import Case, Exercise
from neuraltext.word2vec import noise_distribution, sgns_gradients, sgns_loss


def _vectors(seed: int, batch: int, k: int, dim: int, dtype=torch.float32, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    h = scale * torch.randn(batch, dim, generator=g, dtype=dtype)
    v_out = scale * torch.randn(batch, dim, generator=g, dtype=dtype)
    v_neg = scale * torch.randn(batch, k, dim, generator=g, dtype=dtype)
    return h, v_out, v_neg


def _sgns_cases() -> list[Case]:
    return [
        Case("batch 8, k = 5 noise words, dimension 10", _vectors(0, 8, 5, 10)),
        Case("one example, one noise word", _vectors(1, 1, 1, 4)),
        Case("float64 in, float64 out", _vectors(2, 6, 3, 7, dtype=torch.float64)),
        Case("all vectors zero (an untrained model)", tuple(torch.zeros_like(t) for t in _vectors(3, 4, 5, 6))),
        Case("large scores: does log(sigmoid) overflow?", _vectors(4, 5, 4, 16, scale=5.0)),
        Case("no noise words (k = 0)", _vectors(5, 3, 0, 5)),
    ]


def _loss_reference(h, v_out, v_neg):
    return sgns_loss(h, v_out, v_neg)


def _gradients_reference(h, v_out, v_neg):
    _, d_h, d_out, d_neg = sgns_gradients(h, v_out, v_neg)
    return d_h, d_out, d_neg


def _noise_reference(counts, exponent=0.75):
    return noise_distribution(counts, exponent)


def _noise_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    zipf = np.sort(rng.zipf(1.5, size=50))[::-1].astype(np.int64)
    return [
        Case("three words", (np.array([100, 10, 1]),)),
        Case("50 Zipf-distributed counts", (zipf,)),
        Case("a word with count 0", (np.array([5, 0, 20, 3]),)),
        Case("one word", (np.array([42]),)),
        Case("exponent 0: uniform noise", (np.array([100, 10, 1]),), {"exponent": 0.0}),
        Case("exponent 1: unigram noise", (zipf,), {"exponent": 1.0}),
        Case("float counts", (np.array([2.5, 0.5, 7.0]),)),
    ]


EXERCISES = [
    Exercise(
        id="03.negative_sampling_loss",
        title="the negative-sampling loss",
        reference=_loss_reference,
        cases=_sgns_cases,
        rtol=1e-5, atol=1e-5,
        hint="-sum over the batch of [log sigma(v_O . h) + sum_i log sigma(-v_i . h)]; use "
             "F.logsigmoid rather than log(sigmoid(x)), which gives -inf for very negative x.",
    ),
    Exercise(
        id="03.negative_sampling_gradients",
        title="the gradient of the negative-sampling loss",
        reference=_gradients_reference,
        cases=_sgns_cases,
        rtol=1e-5, atol=1e-6,
        hint="with g_O = 1 - sigma(v_O . h) and g_i = -sigma(v_i . h), the loss's gradients are "
             "-(g_O v_O + sum_i g_i v_i) for h, -g_O h for v_O and -g_i h for v_i.",
    ),
    Exercise(
        id="03.noise_distribution",
        title="the noise distribution U(w)^0.75",
        reference=_noise_reference,
        cases=_noise_cases,
        rtol=1e-12, atol=1e-15,
        hint="raise the counts (as float64) to the exponent, then divide by their sum.",
    ),
]
