"""Recurrent networks written from the course's equations: RNN, LSTM and GRU.

Three *cells* compute one time step; three *sequence modules* run a cell over a whole (padded)
batch, stacked in layers and optionally in both directions, with the interface of ``torch.nn``:

    cell = LSTMCell(input_size, hidden_size);  h, c = cell(x_t, (h, c))          # x_t: (B, I)
    lstm = LSTM(input_size, hidden_size, num_layers=2, bidirectional=True)      # batch_first=True
    output, (h_n, c_n) = lstm(x, lengths=lengths)   # x: (B, T, I) -> output: (B, T, D*H)
                                                    # h_n, c_n: (num_layers * D, B, H)

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

Mapping to PyTorch (``from_torch`` / ``to_torch``):

    ours                                PyTorch (nn.RNN / nn.LSTM / nn.GRU and their *Cell)
    W_xh, W_hh                          weight_ih, weight_hh (same shapes)
    b                                   bias_ih + bias_hh (PyTorch has two biases; their sum is the
                                        course's single b; ``to_torch`` puts b in bias_ih, 0 in bias_hh)
    LSTM gate blocks f, i, C~, o        i, f, g, o   (first two blocks swapped)
    GRU gate blocks z, r, h~            r, z, n      (first two swapped) and z *negated*: PyTorch writes
                                        h_t = (1 - z') * n + z' * h_{t-1}, so the course's
                                        z = 1 - z' = sigmoid(-(...)), i.e. W_z = -W_z', b_z = -b_z'
    GRU b_hn                            bias_hh's n block (it sits inside r * (...), so it stays apart)

Speed: ``LSTM`` runs each layer with :class:`LSTMLayerBPTT`, the same equations with the backward
pass (BPTT) written out by hand, about 2x faster on a CPU than autograd through ``LSTMCell.step``
(``LSTM(..., manual_bptt=False)``, the readable reference; both are tested against ``torch.nn.LSTM``).

The GRU's candidate: the course (Cho et al., 2014) resets the state *before* the product,
``W (r * h)``; PyTorch and cuDNN reset *after* it, ``r * (W h + b_hn)``. Both are available
(``reset_after``); only the second can be loaded from / exported to ``torch.nn.GRU``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "LSTMLayerBPTT", "lstm_layer_bptt",
           "lengths_from_mask"]

State = Tensor | tuple[Tensor, Tensor]


def _permute_blocks(t: Tensor, order: Sequence[int], signs: Sequence[float] | None = None) -> Tensor:
    """Reorder the gate blocks of a stacked weight/bias along dim 0 (and flip signs if asked)."""
    blocks = t.chunk(len(order), dim=0)
    out = [blocks[k] for k in order]
    if signs is not None:
        out = [s * b for s, b in zip(signs, out)]
    return torch.cat(out, dim=0)


# ----------------------------------------------------------------------------------------------
# Cells: one time step
# ----------------------------------------------------------------------------------------------
class _Cell(nn.Module):
    """Shared parts of the three cells: stacked parameters, init, input projection, checks."""

    n_gates = 1
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
            raise ValueError(
                f"{type(self).__name__}: expected input with last dimension input_size="
                f"{self.input_size}, got shape {tuple(x.shape)}"
            )
        return F.linear(x, self.W_xh, self.b)

    def _check_hidden(self, h: Tensor, batch: int, name: str = "h") -> None:
        if h.shape != (batch, self.hidden_size):
            raise ValueError(
                f"{type(self).__name__}: state {name} should have shape (B, H) = "
                f"({batch}, {self.hidden_size}), got {tuple(h.shape)}"
            )

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 2 or x.size(1) != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: expected x_t of shape (B, input_size) = (B, {self.input_size}), "
                f"got {tuple(x.shape)}"
            )

    def zero_state(self, batch: int, like: Tensor) -> State:
        return like.new_zeros(batch, self.hidden_size)

    # -- conversion to and from torch.nn ---------------------------------------------------------
    def _load_torch(self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> None:
        if w_ih.shape != self.W_xh.shape or w_hh.shape != self.W_hh.shape:
            raise ValueError(
                f"{type(self).__name__}: PyTorch weights of shapes {tuple(w_ih.shape)}, {tuple(w_hh.shape)} "
                f"do not fit W_xh {tuple(self.W_xh.shape)}, W_hh {tuple(self.W_hh.shape)}"
            )
        if b_ih is None or b_hh is None:
            raise ValueError("modules built with bias=False are not supported (the course's cells have a bias)")
        with torch.no_grad():
            self.W_xh.copy_(_permute_blocks(w_ih, self.torch_order, self.torch_signs))
            self.W_hh.copy_(_permute_blocks(w_hh, self.torch_order, self.torch_signs))
            self.b.copy_(_permute_blocks(b_ih + b_hh, self.torch_order, self.torch_signs))

    def _torch_tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) in PyTorch's layout (inverse of ``_load_torch``)."""
        inverse = [self.torch_order.index(k) for k in range(self.n_gates)]
        signs = [self.torch_signs[j] for j in inverse]
        w_ih = _permute_blocks(self.W_xh.detach(), inverse, signs)
        w_hh = _permute_blocks(self.W_hh.detach(), inverse, signs)
        b_ih = _permute_blocks(self.b.detach(), inverse, signs)
        return w_ih, w_hh, b_ih, torch.zeros_like(b_ih)

    def to_torch(self) -> nn.Module:
        """An equivalent ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` (same device and dtype)."""
        ref = self._torch_cell().to(device=self.W_xh.device, dtype=self.W_xh.dtype)
        w_ih, w_hh, b_ih, b_hh = self._torch_tensors()
        with torch.no_grad():
            ref.weight_ih.copy_(w_ih)
            ref.weight_hh.copy_(w_hh)
            ref.bias_ih.copy_(b_ih)
            ref.bias_hh.copy_(b_hh)
        return ref

    @classmethod
    def from_torch(cls, module: nn.Module) -> "_Cell":
        """Build our cell with the weights of a ``torch.nn`` cell of the matching kind."""
        kwargs = {}
        if isinstance(module, nn.RNNCell):
            kwargs["nonlinearity"] = module.nonlinearity
        cell = cls(module.input_size, module.hidden_size, **kwargs)
        cell = cell.to(device=module.weight_ih.device, dtype=module.weight_ih.dtype)
        cell._load_torch(module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)
        return cell


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

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        self._check_input(x)
        h = self.zero_state(x.size(0), x) if h is None else h
        self._check_hidden(h, x.size(0))
        return self.step(self.project_input(x), h)

    def _torch_cell(self) -> nn.Module:
        return nn.RNNCell(self.input_size, self.hidden_size, nonlinearity=self.nonlinearity)


class LSTMCell(_Cell):
    """LSTM cell (Hochreiter & Schmidhuber, 1997) with the course's gates f, i, C~, o.

    ``forward(x_t, (h, c)=None) -> (h_t, C_t)`` with x_t (B, I), h and c (B, H). Gate blocks of
    ``W_xh``/``W_hh``/``b`` are stacked in the order f, i, C~, o (PyTorch: i, f, g, o).
    """

    n_gates = 4
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

    def _torch_cell(self) -> nn.Module:
        return nn.LSTMCell(self.input_size, self.hidden_size)


class GRUCell(_Cell):
    """GRU cell (Cho et al., 2014) with the course's update gate z and reset gate r.

    ``forward(x_t, h=None) -> h_t`` with x_t (B, I), h (B, H);
    ``h_t = (1 - z_t) * h_{t-1} + z_t * h~_t`` (z near 1: take the candidate; PyTorch's z is 1 - ours).

    ``reset_after=True`` (default, PyTorch/cuDNN): ``h~_t = tanh(W_x x_t + b + r_t * (W_h h_{t-1} + b_hn))``,
    loadable from ``torch.nn.GRU``. ``reset_after=False`` (course): ``h~_t = tanh(W [r_t * h_{t-1}, x_t] + b)``.
    Gate blocks are stacked z, r, h~ (PyTorch: r, z, n).
    """

    n_gates = 3
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

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        self._check_input(x)
        h = self.zero_state(x.size(0), x) if h is None else h
        self._check_hidden(h, x.size(0))
        return self.step(self.project_input(x), h)

    def _load_torch(self, w_ih, w_hh, b_ih, b_hh) -> None:
        if not self.reset_after:
            raise ValueError("torch.nn.GRU resets after the product: build GRUCell(..., reset_after=True)")
        super()._load_torch(w_ih, w_hh, b_ih, b_hh)
        H = self.hidden_size
        with torch.no_grad():  # the n block of bias_hh is b_hn, not part of b
            self.b[2 * H :].copy_(b_ih[2 * H :])
            self.b_hn.copy_(b_hh[2 * H :])

    def _torch_tensors(self):
        if not self.reset_after:
            raise ValueError("only GRUCell(..., reset_after=True) has a torch.nn.GRU equivalent")
        w_ih, w_hh, b_ih, b_hh = super()._torch_tensors()
        b_hh[2 * self.hidden_size :] = self.b_hn.detach()
        return w_ih, w_hh, b_ih, b_hh

    def _torch_cell(self) -> nn.Module:
        return nn.GRUCell(self.input_size, self.hidden_size)


# ----------------------------------------------------------------------------------------------
# Sequence modules: a cell unrolled over time, layers, directions, padding
# ----------------------------------------------------------------------------------------------
def lengths_from_mask(mask: Tensor) -> Tensor:
    """Lengths (B,) from a padding mask (B, T) that is True on real tokens, which must come first."""
    if mask.dim() != 2:
        raise ValueError(f"mask should have shape (B, T), got {tuple(mask.shape)}")
    mask = mask.bool()
    lengths = mask.sum(dim=1)
    prefix = torch.arange(mask.size(1), device=mask.device)[None, :] < lengths[:, None]
    if not torch.equal(prefix, mask):
        raise ValueError("mask must be True on a prefix of each row (right padding); left/inner padding is not supported")
    return lengths


def _reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (T, B, F) within its own length; padded steps stay where they are.

    Reversing only the real tokens is what keeps padding out of the backward direction: its first
    step is the last real token, as with ``pack_padded_sequence``. Applying it twice is the identity.
    """
    if lengths is None:
        return x.flip(0)
    T = x.size(0)
    t = torch.arange(T, device=x.device)[:, None]  # (T, 1)
    L = lengths[None, :]  # (1, B)
    idx = torch.where(t < L, L - 1 - t, t)  # (T, B)
    return x.gather(0, idx[:, :, None].expand_as(x))


class _Recurrent(nn.Module):
    """A stack of ``num_layers`` recurrent layers, each run forward (and backward if bidirectional).

    ``forward(x, h0=None, lengths=None, mask=None) -> (output, h_n)`` with, for batch_first=True,
    x (B, T, I), output (B, T, D*H) and h_n (num_layers * D, B, H); D = 2 if bidirectional else 1.
    The cell of layer l and direction d is ``self.cells[l * D + d]``.
    """

    cell_class: type[_Cell] = _Cell
    torch_class: type[nn.Module] = nn.Module

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = True,
        dropout: float = 0.0,
        **cell_kwargs,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.batch_first, self.dropout = bidirectional, batch_first, dropout
        self.num_directions = 2 if bidirectional else 1
        D = self.num_directions
        self.cells = nn.ModuleList(
            self.cell_class(input_size if layer == 0 else D * hidden_size, hidden_size, **cell_kwargs)
            for layer in range(num_layers)
            for _ in range(D)
        )

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, batch_first={self.batch_first}, dropout={self.dropout}"
        )

    # -- one layer, one direction ----------------------------------------------------------------
    def _unroll(self, cell: _Cell, x: Tensor, state: State, mask: Tensor | None) -> tuple[Tensor, State]:
        """Run ``cell`` over x (T, B, I); padded steps (mask False) keep the previous state."""
        # W_xh x_t + b for every t at once, (T, B, G*H); unbind (not xw[t]) keeps the backward pass
        # to one stack of the T gradients instead of T scatters into a full-size zero tensor
        xw = cell.project_input(x).unbind(0)
        outputs = []
        for t in range(x.size(0)):
            new = cell.step(xw[t], state)
            if mask is not None:  # freeze finished sequences
                m = mask[t]  # (B, 1)
                new = tuple(torch.where(m, a, b) for a, b in zip(new, state)) if isinstance(new, tuple) \
                    else torch.where(m, new, state)
            state = new
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outputs), state  # (T, B, H)

    # -- checks ----------------------------------------------------------------------------------
    def _check_state(self, s: Tensor, B: int, name: str) -> None:
        expected = (self.num_layers * self.num_directions, B, self.hidden_size)
        if not isinstance(s, Tensor) or s.shape != expected:
            got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(
                f"{type(self).__name__}: {name} should have shape (num_layers * num_directions, B, H) = "
                f"{expected}, got {got}"
            )

    def _initial_states(self, h0, B: int, x: Tensor) -> list[State]:
        n = self.num_layers * self.num_directions
        if h0 is None:
            return [self.cells[0].zero_state(B, x) for _ in range(n)]
        self._check_state(h0, B, "h0")
        return list(h0.unbind(0))

    @staticmethod
    def _stack_states(states: list[State]):
        return torch.stack(states)

    def forward(self, x: Tensor, h0=None, lengths=None, mask: Tensor | None = None):
        if x.dim() != 3:
            layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ValueError(f"{type(self).__name__}: expected x of shape {layout}, got {tuple(x.shape)}")
        if x.size(-1) != self.input_size:
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(
                f"{type(self).__name__}: expected x of shape {layout} with I = input_size = {self.input_size}, "
                f"got {tuple(x.shape)}"
            )
        x = x.transpose(0, 1) if self.batch_first else x  # time-major inside: (T, B, I)
        T, B = x.shape[:2]

        if mask is not None:
            if lengths is not None:
                raise ValueError("give either lengths or mask, not both")
            if self.batch_first:
                mask_bt = mask
            else:
                mask_bt = mask.t()
            if mask_bt.shape != (B, T):
                raise ValueError(f"mask should have shape {(B, T) if self.batch_first else (T, B)}, got {tuple(mask.shape)}")
            lengths = lengths_from_mask(mask_bt)
        step_mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device).long()
            if lengths.shape != (B,):
                raise ValueError(f"lengths should have shape (B,) = ({B},), got {tuple(lengths.shape)}")
            if lengths.numel() and (lengths.min() < 1 or lengths.max() > T):
                raise ValueError(f"lengths must be in [1, T={T}], got min {int(lengths.min())}, max {int(lengths.max())}")
            step_mask = (torch.arange(T, device=x.device)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)

        states = self._initial_states(h0, B, x)
        final: list[State] = []
        layer_input = x
        D = self.num_directions
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                inp = layer_input if d == 0 else _reverse_padded(layer_input, lengths)
                out, s = self._unroll(self.cells[k], inp, states[k], step_mask)
                outs.append(out if d == 0 else _reverse_padded(out, lengths))
                final.append(s)
            layer_input = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D*H)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, p=self.dropout, training=True)
        output = layer_input
        if step_mask is not None:
            output = output * step_mask.to(output.dtype)  # padded positions are 0, as pad_packed_sequence
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, self._stack_states(final)

    # -- conversion -----------------------------------------------------------------------------
    def _torch_kwargs(self) -> dict:
        return {}

    def to_torch(self) -> nn.Module:
        """An equivalent ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (same device and dtype)."""
        p = self.cells[0].W_xh
        ref = self.torch_class(
            self.input_size, self.hidden_size, num_layers=self.num_layers, bidirectional=self.bidirectional,
            batch_first=self.batch_first, dropout=self.dropout, **self._torch_kwargs(),
        ).to(device=p.device, dtype=p.dtype)
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                tensors = self.cells[layer * self.num_directions + d]._torch_tensors()
                with torch.no_grad():
                    for name, t in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), tensors):
                        getattr(ref, name + sfx).copy_(t)
        return ref

    @classmethod
    def from_torch(cls, module: nn.Module) -> "_Recurrent":
        """Our module with the configuration and weights of a ``torch.nn.RNN`` / ``LSTM`` / ``GRU``."""
        if not isinstance(module, cls.torch_class):
            raise TypeError(f"{cls.__name__}.from_torch expects a {cls.torch_class.__name__}, got {type(module).__name__}")
        if getattr(module, "proj_size", 0):
            raise ValueError("LSTM with proj_size > 0 is not supported")
        if not module.bias:
            raise ValueError("modules built with bias=False are not supported (the course's cells have a bias)")
        kwargs = {"nonlinearity": module.nonlinearity} if isinstance(module, nn.RNN) else {}
        ours = cls(module.input_size, module.hidden_size, num_layers=module.num_layers,
                   bidirectional=module.bidirectional, batch_first=module.batch_first,
                   dropout=module.dropout, **kwargs)
        p = module.weight_ih_l0
        ours = ours.to(device=p.device, dtype=p.dtype)
        for layer in range(ours.num_layers):
            for d in range(ours.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                ours.cells[layer * ours.num_directions + d]._load_torch(
                    *(getattr(module, name + sfx) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        return ours


class RNN(_Recurrent):
    """Multi-layer Elman RNN (tanh or relu), batch-first by default; see ``_Recurrent.forward``."""

    cell_class = RNNCell
    torch_class = nn.RNN

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, dropout: float = 0.0, nonlinearity: str = "tanh"):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, batch_first, dropout,
                         nonlinearity=nonlinearity)
        self.nonlinearity = nonlinearity

    def _torch_kwargs(self) -> dict:
        return {"nonlinearity": self.nonlinearity}


class GRU(_Recurrent):
    """Multi-layer GRU, batch-first by default: ``forward(x, h0=None, lengths=None) -> (output, h_n)``."""

    cell_class = GRUCell
    torch_class = nn.GRU

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, dropout: float = 0.0, reset_after: bool = True):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, batch_first, dropout,
                         reset_after=reset_after)


def _onednn_linear_available() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


_ONEDNN_LINEAR = _onednn_linear_available()


def _use_onednn(x: Tensor) -> bool:
    """Whether this call may use oneDNN's kernels: a CPU float32 tensor, a PyTorch that has them, and
    oneDNN not switched off (``torch.backends.mkldnn.flags(enabled=False)``, how the tests run the
    ``F.linear`` path that CUDA and MPS take)."""
    return (_ONEDNN_LINEAR and x.device.type == "cpu" and x.dtype == torch.float32
            and torch.backends.mkldnn.enabled)


def _linear(x: Tensor, w: Tensor, b: Tensor | None = None, onednn: bool = False) -> Tensor:
    """``x @ w.T (+ b)``. With ``onednn`` (see ``_use_onednn``), oneDNN's kernel (the one behind
    ``torch.nn.LSTM`` on CPUs), faster than the default BLAS behind ``F.linear`` on some CPUs."""
    if onednn and x.dim() == 2:
        return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
    return F.linear(x, w, b)


def _pack_weight(w: Tensor, batch: int, onednn: bool = False) -> Tensor:
    """Pre-arrange a weight that one loop multiplies many times (``W_hh``) in oneDNN's blocked
    layout, so that the T products of the loop do not each re-arrange it. Falls back to ``w``."""
    if onednn:
        try:
            return torch.ops.mkldnn._reorder_linear_weight(w, batch)
        except (AttributeError, RuntimeError):
            pass
    return w


class LSTMLayerBPTT(torch.autograd.Function):
    """One LSTM layer over T steps with back-propagation through time written out by hand.

    ``LSTMLayerBPTT.apply(x (T, B, I), W_xh, b, W_hh, h0, c0, mask) -> (output (T, B, H), h_T, C_T)``.
    Same equations as :meth:`LSTMCell.step` (gate blocks f, i, C~, o); the point is speed. With
    autograd, each step records ~12 small operations and the backward pass computes
    ``dL/dW_hh`` as T small products. Here the forward pass records nothing, and the backward pass
    runs the recurrence in reverse (a_t: gate activations, g_t: pre-activations):

        dh_t  = dL/dh_t (from the output) + dh_t (from step t+1)
        do_t  = dh_t * tanh(C_t)
        dC_t  = dC_t (from step t+1) + dh_t * o_t * (1 - tanh(C_t)^2)
        df_t  = dC_t * C_{t-1},   di_t = dC_t * C~_t,   dC~_t = dC_t * i_t
        dg_t  = [df, di, dC~, do]_t * [sigmoid', sigmoid', tanh', sigmoid']   (sigmoid' = a(1-a), tanh' = 1-a^2)
        dh_{t-1} = dg_t W_hh,      dC_{t-1} = dC_t * f_t

    then, as *one* product each over all steps: ``dL/dW_hh = sum_t dg_t^T h_{t-1}``,
    ``dL/dW_xh = sum_t dg_t^T x_t``, ``dL/db = sum_t dg_t`` and ``dL/dx_t = dg_t W_xh``.
    Padded steps (mask False) copy the state forward, so their gradient passes straight through.

    Two CPU details. The forward pass computes tanh as ``tanh(z) = 2 sigmoid(2z) - 1``: with the
    candidate's rows of ``W_hh`` and of ``W_xh x_t + b`` doubled once per sequence, a single sigmoid
    over the (B, 4H) pre-activations serves all four gates, and PyTorch's CPU sigmoid is several times
    faster than its tanh on these small tensors. The weight products read the transposed operands as
    views (``dW^T = H^T dG``) instead of copying them contiguous first.
    ``tests/test_rnn.py`` checks it against autograd through ``LSTMCell.step`` and against ``torch.nn.LSTM``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, W_xh: Tensor, b: Tensor, W_hh: Tensor, h0: Tensor, c0: Tensor,
                mask: Tensor | None):
        ctx.device_type = x.device.type
        with torch.autocast(ctx.device_type, enabled=False):  # dtypes are settled by lstm_layer_bptt
            return LSTMLayerBPTT._forward(ctx, x, W_xh, b, W_hh, h0, c0, mask)

    @staticmethod
    def _forward(ctx, x, W_xh, b, W_hh, h0, c0, mask):
        T, B, I = x.shape
        G = W_xh.size(0)
        H = G // 4
        onednn = _use_onednn(x)
        # W_xh x_t + b, all steps at once; each step adds W_hh h_{t-1} and applies the gates in place
        acts = _linear(x.reshape(T * B, I), W_xh, b, onednn).view(T, B, G)  # -> gate activations f, i, C~, o
        # tanh(z) = 2 sigmoid(2z) - 1: with the candidate's pre-activations doubled, one sigmoid covers all four gates
        acts[..., 2 * H : 3 * H] *= 2
        W_hh2 = W_hh.clone()
        W_hh2[2 * H : 3 * H] *= 2
        hs = x.new_empty(T + 1, B, H)  # h_0 .. h_T
        cs = x.new_empty(T + 1, B, H)  # C_0 .. C_T
        tcs = x.new_empty(T, B, H)  # tanh(C_1) .. tanh(C_T)
        hs[0], cs[0] = h0, c0
        W_hh_packed = _pack_weight(W_hh2, B, onednn)
        for t in range(T):
            a = acts[t]
            a.add_(_linear(hs[t], W_hh_packed, onednn=onednn))  # pre-activations (B, 4H), candidate doubled
            a.sigmoid_()
            f, i, g, o = a.chunk(4, dim=1)
            g.mul_(2).sub_(1)  # C~ = tanh
            c, tc, h = cs[t + 1], tcs[t], hs[t + 1]
            torch.mul(f, cs[t], out=c).addcmul_(i, g)  # C_t = f C_{t-1} + i C~
            torch.mul(c, 2, out=tc).sigmoid_().mul_(2).sub_(1)  # tanh(C_t)
            torch.mul(o, tc, out=h)  # h_t = o tanh(C_t)
            if mask is not None:  # padded step: keep the previous state
                c.copy_(torch.where(mask[t], c, cs[t]))
                h.copy_(torch.where(mask[t], h, hs[t]))
        ctx.save_for_backward(x, W_xh, W_hh, hs, cs, tcs, acts, mask)
        return hs[1:].clone(), hs[T].clone(), cs[T].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out: Tensor, d_hT: Tensor, d_cT: Tensor):
        with torch.autocast(ctx.device_type, enabled=False):  # backward in the forward's dtype
            return LSTMLayerBPTT._backward(ctx, d_out, d_hT, d_cT)

    @staticmethod
    def _backward(ctx, d_out: Tensor, d_hT: Tensor, d_cT: Tensor):
        x, W_xh, W_hh, hs, cs, tcs, acts, mask = ctx.saved_tensors
        T, B, G = acts.shape
        H, I = G // 4, x.size(2)
        onednn = _use_onednn(x)
        f, i, g, o = acts.chunk(4, dim=2)  # (T, B, H) each
        # everything that does not depend on the incoming gradient, for all steps at once, in place
        # (few large temporaries): dpre_{f,i,C~} = dC_t * D_t[:3H], dpre_o = dh_t * D_t[3H:]
        D = torch.sub(1, acts).mul_(acts)  # sigmoid' = a (1 - a) ...
        D_g = D[..., 2 * H : 3 * H]
        torch.mul(g, g, out=D_g).neg_().add_(1)  # ... and tanh' = 1 - a^2 for the candidate
        D[..., :H].mul_(cs[:-1])  # df = dC_t * C_{t-1} * sigmoid'(f)
        D[..., H : 2 * H].mul_(g)  # di = dC_t * C~_t * sigmoid'(i)
        D_g.mul_(i)  # dC~ = dC_t * i_t * tanh'(C~)
        D[..., 3 * H :].mul_(tcs)  # do = dh_t * tanh(C_t) * sigmoid'(o)
        K = torch.mul(tcs, tcs).neg_().add_(1).mul_(o)  # dC_t += dh_t * K_t
        W_hh_T = _pack_weight(W_hh.t().contiguous(), B, onednn)  # (H, 4H): dh_{t-1} = dg_t W_hh = linear(dg_t, W_hh^T)
        d_out = torch.zeros_like(tcs) if d_out is None else d_out
        dh = torch.zeros_like(hs[0]) if d_hT is None else d_hT.clone()
        dc = torch.zeros_like(cs[0]) if d_cT is None else d_cT.clone()
        d_pre = D  # dL/d(pre-activations) for every step, written over D step by step
        for t in range(T - 1, -1, -1):
            dh = dh + d_out[t]
            if mask is not None:  # a padded step passes its gradient straight to the previous state
                m = mask[t]
                dh_skip, dc_skip = torch.where(m, 0.0, dh), torch.where(m, 0.0, dc)
                dh, dc = torch.where(m, dh, 0.0), torch.where(m, dc, 0.0)
            dc = torch.addcmul(dc, dh, K[t])  # dL/dC_t
            dp = d_pre[t]
            dp[:, : 3 * H].view(B, 3, H).mul_(dc.unsqueeze(1))
            dp[:, 3 * H :].mul_(dh)
            dh = _linear(dp, W_hh_T, onednn=onednn)  # dL/dh_{t-1}
            dc = dc * f[t]  # dL/dC_{t-1}
            if mask is not None:
                dh, dc = dh + dh_skip, dc + dc_skip
        # the weight gradients: one product each over all T*B rows
        dP = d_pre.reshape(T * B, G)
        dW_hh = _linear(hs[:-1].reshape(T * B, H).t(), dP.t(), onednn=onednn).t().contiguous()  # sum_t dg_t^T h_{t-1}
        dW_xh = _linear(x.reshape(T * B, I).t(), dP.t(), onednn=onednn).t().contiguous()  # sum_t dg_t^T x_t
        db = dP.sum(dim=0)
        dx = _linear(dP, W_xh.t(), onednn=onednn).view(T, B, I) if ctx.needs_input_grad[0] else None
        return dx, dW_xh, db, dW_hh, dh, dc, None


def lstm_layer_bptt(x: Tensor, W_xh: Tensor, b: Tensor, W_hh: Tensor, h0: Tensor, c0: Tensor,
                    mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``LSTMLayerBPTT.apply``, autocast-aware.

    Under ``torch.autocast`` the layer runs in float32 (float64 if a tensor is float64), whatever
    the dtype of its inputs (a previous layer may hand it bfloat16), and its backward pass in the same
    dtype: the contract of ``torch.amp.custom_fwd(cast_inputs=torch.float32)``/``custom_bwd``, for
    whatever device ``x`` is on (those decorators take one fixed device type). The cell state is a
    running sum over T steps: in bfloat16 (8 significant bits) it would lose digits at every step.
    """
    tensors = [x, W_xh, b, W_hh, h0, c0]
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.float32
        for t in tensors:
            dtype = torch.promote_types(dtype, t.dtype)
        tensors = [t.to(dtype) for t in tensors]
    return LSTMLayerBPTT.apply(*tensors, mask)


class LSTM(_Recurrent):
    """Multi-layer LSTM, batch-first by default.

    ``forward(x, state0=None, lengths=None) -> (output, (h_n, c_n))``; ``state0 = (h0, c0)``, each
    (num_layers * D, B, H), as in ``torch.nn.LSTM``.

    ``manual_bptt=True`` (default) runs each layer with :class:`LSTMLayerBPTT` (the same equations with
    the backward pass written out, about twice as fast on a CPU); ``False`` unrolls ``LSTMCell.step``
    under autograd, the readable reference.
    """

    cell_class = LSTMCell
    torch_class = nn.LSTM

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, dropout: float = 0.0, manual_bptt: bool = True):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, batch_first, dropout)
        self.manual_bptt = manual_bptt

    def _unroll(self, cell: LSTMCell, x: Tensor, state, mask: Tensor | None):
        if not self.manual_bptt:
            return super()._unroll(cell, x, state, mask)
        if x.size(-1) != cell.input_size:
            cell.project_input(x)  # raises the error that names the shapes
        h0, c0 = state
        out, h_n, c_n = lstm_layer_bptt(x, cell.W_xh, cell.b, cell.W_hh, h0, c0, mask)
        return out, (h_n, c_n)

    def _initial_states(self, h0, B: int, x: Tensor) -> list[State]:
        n = self.num_layers * self.num_directions
        if h0 is None:
            return [self.cells[0].zero_state(B, x) for _ in range(n)]
        if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
            raise ValueError("LSTM: the initial state must be a pair (h0, c0), each (num_layers * num_directions, B, H)")
        self._check_state(h0[0], B, "h0")
        self._check_state(h0[1], B, "c0")
        return list(zip(h0[0].unbind(0), h0[1].unbind(0)))

    @staticmethod
    def _stack_states(states):
        return torch.stack([h for h, _ in states]), torch.stack([c for _, c in states])
