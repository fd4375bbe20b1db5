"""Chapter 4's exercises: perplexity by hand, one LSTM step and one GRU step from the course's equations.

The references are the package's own: :func:`neuraltext.rnn.lm.perplexity_from_log_probs` for the worked
number, and the cells of :mod:`neuraltext.rnn.cells` (tested weight for weight against ``torch.nn.LSTMCell``
and ``torch.nn.GRUCell``) run on the student's weights. The gate blocks are stacked in the chapter's
order: f, i, C~, o for the LSTM; z, r, h~ for the GRU, whose candidate is equation (gru), the reset
gate applied *before* the product (``GRUCell(reset_after=False)``).
"""

from __future__ import annotations

import torch

from neuraltext.labs.check import Case, Exercise
from neuraltext.rnn import perplexity_from_log_probs
from neuraltext.rnn import GRUCell, LSTMCell

PROBABILITIES = (0.5, 0.25, 0.125, 1.0)  # the four tokens' probabilities in the statement


def _perplexity_value() -> float:
    return float(perplexity_from_log_probs(torch.tensor(PROBABILITIES, dtype=torch.float64).log()))


def _cell_inputs(seed: int, gates: int, B: int, I: int, H: int, dtype=torch.float32, scale: float = 1.0,
                 lstm: bool = True, zero_state: bool = False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, I, generator=g, dtype=dtype)
    h = torch.zeros(B, H, dtype=dtype) if zero_state else torch.randn(B, H, generator=g, dtype=dtype).tanh()
    c = torch.zeros(B, H, dtype=dtype) if zero_state else torch.randn(B, H, generator=g, dtype=dtype)
    W_xh = scale * torch.randn(gates * H, I, generator=g, dtype=dtype) / I ** 0.5
    W_hh = scale * torch.randn(gates * H, H, generator=g, dtype=dtype) / H ** 0.5
    b = scale * torch.randn(gates * H, generator=g, dtype=dtype)
    return (x, h, c, W_xh, W_hh, b) if lstm else (x, h, W_xh, W_hh, b)


def _load(cell, W_xh, W_hh, b):
    with torch.no_grad():
        cell.W_xh.copy_(W_xh)
        cell.W_hh.copy_(W_hh)
        cell.b.copy_(b)
    return cell


@torch.no_grad()
def _lstm_reference(x, h, c, W_xh, W_hh, b):
    cell = _load(LSTMCell(x.shape[1], h.shape[1]).to(x.dtype), W_xh, W_hh, b)
    return cell(x, (h, c))


@torch.no_grad()
def _gru_reference(x, h, W_xh, W_hh, b):
    cell = _load(GRUCell(x.shape[1], h.shape[1], reset_after=False).to(x.dtype), W_xh, W_hh, b)
    return cell(x, h)


def _lstm_cases() -> list[Case]:
    return [
        Case("batch 3, input 5, hidden 4", _cell_inputs(0, 4, 3, 5, 4)),
        Case("one example, hidden size 1", _cell_inputs(1, 4, 1, 3, 1)),
        Case("zero initial state (h_0 = C_0 = 0)", _cell_inputs(2, 4, 2, 6, 3, zero_state=True)),
        Case("large pre-activations: saturated gates", _cell_inputs(3, 4, 4, 5, 6, scale=20.0)),
        Case("float64 in, float64 out", _cell_inputs(4, 4, 2, 7, 5, dtype=torch.float64)),
    ]


def _gru_cases() -> list[Case]:
    return [
        Case("batch 3, input 5, hidden 4", _cell_inputs(10, 3, 3, 5, 4, lstm=False)),
        Case("one example, hidden size 1", _cell_inputs(11, 3, 1, 3, 1, lstm=False)),
        Case("zero initial state (h_0 = 0)", _cell_inputs(12, 3, 2, 6, 3, lstm=False, zero_state=True)),
        Case("large pre-activations: saturated gates", _cell_inputs(13, 3, 4, 5, 6, scale=20.0, lstm=False)),
        Case("float64 in, float64 out", _cell_inputs(14, 3, 2, 7, 5, dtype=torch.float64, lstm=False)),
    ]


EXERCISES = [
    Exercise(
        id="04.perplexity",
        title="perplexity of four tokens by hand",
        reference=_perplexity_value,
        rtol=1e-4, atol=0.0,
        hint="perplexity = exp(-(1/M) sum_t log p_t), with M = 4 tokens.",
    ),
    Exercise(
        id="04.lstm_step",
        title="one LSTM step from the equations",
        reference=_lstm_reference,
        cases=_lstm_cases,
        hint="the rows of W_xh, W_hh and b are four blocks of H, in the order f, i, C~, o; "
             "return (h_t, C_t).",
    ),
    Exercise(
        id="04.gru_step",
        title="one GRU step from the equations, reset gate before the product",
        reference=_gru_reference,
        cases=_gru_cases,
        hint="blocks z, r, h~; the candidate multiplies r_t * h_{t-1} by the h~ block of W_hh, "
             "and h_t = (1 - z_t) h_{t-1} + z_t h~_t.",
    ),
]
