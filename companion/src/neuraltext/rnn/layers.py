"""Recurrent layers: a cell of :mod:`neuraltext.rnn.cells` unrolled over a padded batch.

Three *sequence modules* run a cell over a whole (padded) batch, stacked in layers and optionally in
both directions, with the interface of ``torch.nn``:

    lstm = LSTM(input_size, hidden_size, num_layers=2, bidirectional=True)      # batch_first=True
    output, (h_n, c_n) = lstm(x, lengths=lengths)   # x: (B, T, I) -> output: (B, T, D*H)
                                                    # h_n, c_n: (num_layers * D, B, H)

Padding is kept out of the computation: a padded step leaves the state as it was and outputs 0, and
the backward direction reverses each sequence within its own length (as ``pack_padded_sequence``).

Speed: ``LSTM`` runs each layer with :class:`neuraltext.fast.bptt.LSTMLayerBPTT` by default, the same
equations with the backward pass (BPTT) written out by hand (read this module first, then that one);
``LSTM(..., manual_bptt=False)`` unrolls :meth:`LSTMCell.step` under autograd. Both are tested against
``torch.nn.LSTM``; ``benchmarks/rnn.py`` times them.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuraltext.fast.bptt import lstm_layer_bptt
from neuraltext.rnn import torch_weights as rnn_torch
from neuraltext.rnn.cells import GRUCell, LSTMCell, RNNCell, State, _Cell

__all__ = ["RNN", "LSTM", "GRU", "lengths_from_mask"]


# ----------------------------------------------------------------------------------------------
# Padding: lengths, masks, and reversing each sequence within its own length
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


def _check_lengths(lengths, B: int, T: int) -> Tensor:
    """``lengths`` as a (B,) integer tensor in [1, T]. The range is checked only on the CPU (where
    ``pack_padded_sequence`` wants lengths anyway): reading lengths that live on a GPU back to the
    host would make every batch wait for the device; debug out-of-range lengths on the CPU."""
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must hold integers (number of real steps per sequence), got dtype "
                        f"{lengths.dtype}: {lengths.tolist() if lengths.numel() <= 8 else tuple(lengths.shape)}")
    if lengths.shape != (B,):
        raise ValueError(f"lengths should have shape (B,) = ({B},), got {tuple(lengths.shape)}")
    if B and lengths.device.type == "cpu" and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"lengths must be in [1, T={T}], got min {int(lengths.min())}, max {int(lengths.max())}")
    return lengths.long()


def _reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (T, B, F) within its own length; padded steps stay where they are.

    Reversing only the real tokens is what keeps padding out of the backward direction: its first
    step is the last real token, as with ``pack_padded_sequence``. Applying it twice is the identity.
    """
    if lengths is None:
        return x.flip(0)
    t = torch.arange(x.size(0), device=x.device)[:, None]  # (T, 1)
    L = lengths[None, :]  # (1, B)
    idx = torch.where(t < L, L - 1 - t, t)  # (T, B)
    return x.gather(0, idx[:, :, None].expand_as(x))


# ----------------------------------------------------------------------------------------------
# Sequence modules: a cell unrolled over time, layers, directions
# ----------------------------------------------------------------------------------------------
class _Recurrent(nn.Module):
    """A stack of ``num_layers`` recurrent layers, each run forward (and backward if bidirectional).

    ``forward(x, h0=None, lengths=None, mask=None) -> (output, h_n)`` with, for batch_first=True,
    x (B, T, I), output (B, T, D*H) and h_n (num_layers * D, B, H); D = 2 if bidirectional else 1.
    Padding: ``lengths`` (B,) integers, or ``mask`` (B, T) True on real tokens; padded outputs are 0.
    The cell of layer l and direction d is ``self.cells[l * D + d]``.
    """

    cell_class: type[_Cell] = _Cell
    torch_class: type[nn.Module] = nn.Module

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, dropout: float = 0.0, **cell_kwargs):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.batch_first, self.dropout = bidirectional, batch_first, dropout
        self.num_directions = D = 2 if bidirectional else 1
        self.cells = nn.ModuleList(
            self.cell_class(input_size if layer == 0 else D * hidden_size, hidden_size, **cell_kwargs)
            for layer in range(num_layers) for _ in range(D))

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, batch_first={self.batch_first}, dropout={self.dropout}")

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

    # -- inputs ----------------------------------------------------------------------------------
    def _check_x(self, x: Tensor) -> None:
        name, layout = type(self).__name__, "(B, T, I)" if self.batch_first else "(T, B, I)"
        if x.dim() != 3:
            raise ValueError(f"{name}: expected x of shape {layout.replace('I', 'input_size')}, got {tuple(x.shape)}")
        if x.size(-1) != self.input_size:
            raise ValueError(f"{name}: expected x of shape {layout} with I = input_size = {self.input_size}, "
                             f"got {tuple(x.shape)}")
        dtype = self.cells[0].W_xh.dtype
        if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f"{name}: x has dtype {x.dtype}, the parameters {dtype}: cast one to the other "
                            f"(x.to({dtype}) or module.to({x.dtype})), or run under torch.autocast")

    def _check_state(self, s: Tensor, B: int, name: str) -> None:
        expected = (self.num_layers * self.num_directions, B, self.hidden_size)
        if not isinstance(s, Tensor) or s.shape != expected:
            got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"{type(self).__name__}: {name} should have shape (num_layers * num_directions, "
                             f"B, H) = {expected}, got {got}")

    def _initial_states(self, h0, B: int, x: Tensor) -> list[State]:
        if h0 is None:
            return [self.cells[0].zero_state(B, x) for _ in range(len(self.cells))]
        self._check_state(h0, B, "h0")
        return list(h0.unbind(0))

    def _padding(self, lengths, mask: Tensor | None, T: int, B: int) -> Tensor | None:
        """Lengths (B,) on the CPU or the input's device, from ``lengths`` or ``mask``; None if neither."""
        if mask is not None:
            if lengths is not None:
                raise ValueError("give either lengths or mask, not both")
            mask_bt = mask if self.batch_first else mask.t()
            if mask_bt.shape != (B, T):
                raise ValueError(f"mask should have shape {(B, T) if self.batch_first else (T, B)}, "
                                 f"got {tuple(mask.shape)}")
            return lengths_from_mask(mask_bt)
        return None if lengths is None else _check_lengths(lengths, B, T)

    @staticmethod
    def _stack_states(states: list[State]):
        return torch.stack(states)

    def forward(self, x: Tensor, h0=None, lengths=None, mask: Tensor | None = None):
        self._check_x(x)
        x = x.transpose(0, 1) if self.batch_first else x  # time-major inside: (T, B, I)
        T, B = x.shape[:2]
        lengths = self._padding(lengths, mask, T, B)
        step_mask = None
        if lengths is not None:
            lengths = lengths.to(x.device, non_blocking=True)
            step_mask = (torch.arange(T, device=x.device)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
        states = self._initial_states(h0, B, x)
        final: list[State] = []
        layer_input, D = x, self.num_directions
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):  # d = 1: the backward direction reads each sequence reversed
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

    # -- conversion (neuraltext.rnn.torch_weights) --------------------------------------------------------
    def _torch_kwargs(self) -> dict:
        return {}

    def to_torch(self) -> nn.Module:
        """An equivalent ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (same device and dtype)."""
        return rnn_torch.module_to_torch(self, **self._torch_kwargs())

    @classmethod
    def from_torch(cls, module: nn.Module) -> "_Recurrent":
        """Our module with the configuration and weights of a ``torch.nn.RNN`` / ``LSTM`` / ``GRU``."""
        return rnn_torch.module_from_torch(cls, module)


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


class LSTM(_Recurrent):
    """Multi-layer LSTM, batch-first by default.

    ``forward(x, state0=None, lengths=None) -> (output, (h_n, c_n))``; ``state0 = (h0, c0)``, each
    (num_layers * D, B, H), as in ``torch.nn.LSTM``.

    ``manual_bptt=True`` (default) runs each layer with :class:`~neuraltext.fast.bptt.LSTMLayerBPTT`
    (:mod:`neuraltext.fast.bptt`: the same equations with the backward pass written out, faster on a
    CPU); ``False`` unrolls ``LSTMCell.step`` under autograd, the readable reference.
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
        h0, c0 = state
        out, h_n, c_n = lstm_layer_bptt(x, cell.W_xh, cell.b, cell.W_hh, h0, c0, mask)
        return out, (h_n, c_n)

    def _initial_states(self, h0, B: int, x: Tensor) -> list[State]:
        if h0 is None:
            return [self.cells[0].zero_state(B, x) for _ in range(len(self.cells))]
        if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
            raise ValueError("LSTM: the initial state must be a pair (h0, c0), each (num_layers * num_directions, B, H)")
        self._check_state(h0[0], B, "h0")
        self._check_state(h0[1], B, "c0")
        return list(zip(h0[0].unbind(0), h0[1].unbind(0)))

    @staticmethod
    def _stack_states(states):
        return torch.stack([h for h, _ in states]), torch.stack([c for _, c in states])
