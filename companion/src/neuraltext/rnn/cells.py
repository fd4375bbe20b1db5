"""Recurrent cells written from the course's equations: RNN, LSTM and GRU, one time step each.

    cell = LSTMCell(input_size, hidden_size);  h, c = cell(x_t, (h, c))          # x_t: (B, I)

The layers that run a cell over a whole padded batch are in :mod:`neuraltext.rnn.layers`.

Equations (course notation; ``[h, x]`` is a concatenation, so ``W_f [h, x] = W_fh h + W_fx x``):

    RNN   h_t = σ(W_hh h_{t-1} + W_xh x_t + b_h)                (σ = tanh, or relu)

    LSTM  f_t = sigmoid(W_f [h_{t-1}, x_t] + b_f)               forget gate
          i_t = sigmoid(W_i [h_{t-1}, x_t] + b_i)               input gate
          C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)                 candidate cell state
          o_t = sigmoid(W_o [h_{t-1}, x_t] + b_o)               output gate
          C_t = f_t * C_{t-1} + i_t * C~_t
          h_t = o_t * tanh(C_t)

    GRU   z_t = sigmoid(W_z [h_{t-1}, x_t] + b_z)               update gate
          r_t = sigmoid(W_r [h_{t-1}, x_t] + b_r)               reset gate
          h~_t = tanh(W [r_t * h_{t-1}, x_t] + b)               candidate (course, reset_after=False)
          h~_t = tanh(W_x x_t + b + r_t * (W_h h_{t-1} + b_hn)) candidate (PyTorch/cuDNN, reset_after=True)
          h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

Parameters. Every cell stores the gate weights *stacked*: ``W_xh`` (G*H, I) multiplies the input,
``W_hh`` (G*H, H) the previous hidden state, ``b`` (G*H) is the bias; G = 1 (RNN), 4 (LSTM), 3 (GRU).
Stacking lets one matrix product compute all gates at once, and splitting ``W_f = [W_fh | W_fx]``
lets the input part ``W_xh x_t + b`` be computed for *all* time steps in one product before the
loop (``project_input``); only ``W_hh h_{t-1}`` stays inside the loop (``step``).

Mapping to PyTorch (``from_torch`` / ``to_torch``, written in :mod:`neuraltext.rnn.torch_weights`): the same
shapes, PyTorch's two biases summed into b, the LSTM's gate blocks in the order i, f, g, o, the GRU's
r, z, n, with z negated (PyTorch's update gate is 1 - ours) and ``b_hn`` kept apart.

The GRU's candidate: the course (Cho et al., 2014) resets the state *before* the product,
``W (r * h)``; PyTorch and cuDNN reset *after* it, ``r * (W h + b_hn)``. Both are available
(``reset_after``); only the second can be loaded from / exported to ``torch.nn.GRU``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuraltext.rnn import torch_weights as rnn_torch

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]

State = Tensor | tuple[Tensor, Tensor]


# ----------------------------------------------------------------------------------------------
# Cells: one time step
# ----------------------------------------------------------------------------------------------
class _Cell(nn.Module):
    """Shared parts of the three cells: stacked parameters, init, input projection, checks."""

    n_gates = 1
    torch_class: type[nn.Module] = nn.RNNCell  # the torch.nn equivalent (see neuraltext.rnn.torch_weights)
    #: position, in PyTorch's stacked layout, of each of our gate blocks (ours[k] = torch[order[k]])
    torch_order: tuple[int, ...] = (0,)
    #: sign applied to each of our gate blocks when converting (GRU's z is PyTorch's 1 - z)
    torch_signs: tuple[float, ...] = (1.0,)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}")
        self.input_size, self.hidden_size = input_size, hidden_size
        G, H = self.n_gates, hidden_size
        self.W_xh = nn.Parameter(torch.empty(G * H, input_size))  # input -> gates
        self.W_hh = nn.Parameter(torch.empty(G * H, H))  # previous hidden state -> gates
        self.b = nn.Parameter(torch.empty(G * H))  # one bias per gate unit (course's b)

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as PyTorch initialises its RNNs."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"

    def project_input(self, x: Tensor) -> Tensor:
        """``W_xh x + b`` for inputs of any leading shape (..., I) -> (..., G*H).

        Called once per sequence on all T steps by the sequence modules (one big matrix product
        instead of T small ones), and per step by ``forward``.
        """
        if x.size(-1) != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input with last dimension input_size="
                             f"{self.input_size}, got shape {tuple(x.shape)}")
        return F.linear(x, self.W_xh, self.b)

    def _check_hidden(self, h: Tensor, batch: int, name: str = "h") -> None:
        if h.shape != (batch, self.hidden_size):
            raise ValueError(f"{type(self).__name__}: state {name} should have shape (B, H) = "
                             f"({batch}, {self.hidden_size}), got {tuple(h.shape)}")

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 2 or x.size(1) != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected x_t of shape (B, input_size) = "
                             f"(B, {self.input_size}), got {tuple(x.shape)}")

    def zero_state(self, batch: int, like: Tensor) -> State:
        return like.new_zeros(batch, self.hidden_size)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """``h_t`` from x_t (B, I) and h_{t-1} (B, H), zeros if None (RNN and GRU; the LSTM overrides it)."""
        self._check_input(x)
        h = self.zero_state(x.size(0), x) if h is None else h
        self._check_hidden(h, x.size(0))
        return self.step(self.project_input(x), h)

    def to_torch(self) -> nn.Module:
        """An equivalent ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` (same device and dtype)."""
        return rnn_torch.cell_to_torch(self)

    @classmethod
    def from_torch(cls, module: nn.Module) -> "_Cell":
        """Build our cell with the weights of a ``torch.nn`` cell of the matching kind."""
        return rnn_torch.cell_from_torch(cls, module)


class RNNCell(_Cell):
    """Elman cell: ``h_t = σ(W_hh h_{t-1} + W_xh x_t + b_h)``, σ = tanh (default) or relu.

    ``forward(x_t, h=None) -> h_t`` with x_t (B, I) and h (B, H); a missing h means zeros.
    """

    n_gates = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__(input_size, hidden_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def step(self, xw: Tensor, h: Tensor) -> Tensor:
        """One step from the projected input ``xw = W_xh x_t + b`` (B, H) and h_{t-1} (B, H)."""
        a = torch.addmm(xw, h, self.W_hh.t())  # W_hh h_{t-1} + W_xh x_t + b   (B, H)
        return torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a)


class LSTMCell(_Cell):
    """LSTM cell (Hochreiter & Schmidhuber, 1997) with the course's gates f, i, C~, o.

    ``forward(x_t, (h, c)=None) -> (h_t, C_t)`` with x_t (B, I), h and c (B, H). Gate blocks of
    ``W_xh``/``W_hh``/``b`` are stacked in the order f, i, C~, o (PyTorch: i, f, g, o).
    """

    n_gates = 4
    torch_class = nn.LSTMCell
    torch_order = (1, 0, 2, 3)  # ours f, i, C~, o  <-  torch i, f, g, o
    torch_signs = (1.0, 1.0, 1.0, 1.0)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.reset_parameters()

    def step(self, xw: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One step from ``xw = W_xh x_t + b`` (B, 4H) and (h_{t-1}, C_{t-1}), each (B, H)."""
        h, c = state
        gates = torch.addmm(xw, h, self.W_hh.t())  # all four pre-activations at once  (B, 4H)
        f, i, g, o = gates.chunk(4, dim=1)  # (B, H) each
        f, i, g, o = torch.sigmoid(f), torch.sigmoid(i), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g  # C_t = f_t * C_{t-1} + i_t * C~_t
        h = o * torch.tanh(c)  # h_t = o_t * tanh(C_t)
        return h, c

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        self._check_input(x)
        if state is None:
            state = self.zero_state(x.size(0), x)
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ValueError("LSTMCell: state must be a pair (h, c) of tensors of shape (B, H)")
        self._check_hidden(state[0], x.size(0), "h")
        self._check_hidden(state[1], x.size(0), "c")
        return self.step(self.project_input(x), tuple(state))

    def zero_state(self, batch: int, like: Tensor) -> tuple[Tensor, Tensor]:
        z = like.new_zeros(batch, self.hidden_size)
        return z, z


class GRUCell(_Cell):
    """GRU cell (Cho et al., 2014) with the course's update gate z and reset gate r.

    ``forward(x_t, h=None) -> h_t`` with x_t (B, I), h (B, H);
    ``h_t = (1 - z_t) * h_{t-1} + z_t * h~_t`` (z near 1: take the candidate; PyTorch's z is 1 - ours).

    ``reset_after=True`` (default, PyTorch/cuDNN): ``h~_t = tanh(W_x x_t + b + r_t * (W_h h_{t-1} + b_hn))``,
    loadable from ``torch.nn.GRU``. ``reset_after=False`` (course): ``h~_t = tanh(W [r_t * h_{t-1}, x_t] + b)``.
    Gate blocks are stacked z, r, h~ (PyTorch: r, z, n).
    """

    n_gates = 3
    torch_class = nn.GRUCell
    torch_order = (1, 0, 2)  # ours z, r, h~  <-  torch r, z, n
    torch_signs = (-1.0, 1.0, 1.0)  # z = 1 - z_torch = sigmoid(-(pre-activation))

    def __init__(self, input_size: int, hidden_size: int, reset_after: bool = True):
        super().__init__(input_size, hidden_size)
        self.reset_after = reset_after
        # the bias of W_h h_{t-1} in the candidate, inside r_t * (...); not used when resetting before
        self.b_hn = nn.Parameter(torch.empty(hidden_size)) if reset_after else None
        self.reset_parameters()

    def step(self, xw: Tensor, h: Tensor) -> Tensor:
        """One step from ``xw = W_xh x_t + b`` (B, 3H) and h_{t-1} (B, H)."""
        H = self.hidden_size
        x_zr, x_n = xw[:, : 2 * H], xw[:, 2 * H :]
        if self.reset_after:
            hw = h @ self.W_hh.t()  # (B, 3H)
            zr = torch.sigmoid(x_zr + hw[:, : 2 * H])
            z, r = zr[:, :H], zr[:, H:]
            n = torch.tanh(x_n + r * (hw[:, 2 * H :] + self.b_hn))  # h~_t
        else:
            zr = torch.sigmoid(torch.addmm(x_zr, h, self.W_hh[: 2 * H].t()))
            z, r = zr[:, :H], zr[:, H:]
            n = torch.tanh(torch.addmm(x_n, r * h, self.W_hh[2 * H :].t()))  # W [r*h, x] + b
        return (1 - z) * h + z * n  # h_t = (1 - z_t) h_{t-1} + z_t h~_t
