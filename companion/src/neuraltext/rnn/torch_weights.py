"""Conversion between the course's recurrent networks (:mod:`neuraltext.rnn.cells`) and ``torch.nn``'s.

The same networks, two ways of storing their parameters. ``from_torch`` / ``to_torch`` on every
cell and sequence module of :mod:`neuraltext.rnn.cells` call the functions here; the tests use them to
load one set of random weights into both and compare outputs and gradients.

    ours                                PyTorch (nn.RNN / nn.LSTM / nn.GRU and their *Cell)
    W_xh, W_hh                          weight_ih, weight_hh (same shapes)
    b                                   bias_ih + bias_hh (PyTorch has two biases; their sum is the
                                        course's single b; ``to_torch`` puts b in bias_ih, 0 in bias_hh)
    LSTM gate blocks f, i, C~, o        i, f, g, o   (first two blocks swapped)
    GRU gate blocks z, r, h~            r, z, n      (first two swapped) and z *negated*: PyTorch writes
                                        h_t = (1 - z') * n + z' * h_{t-1}, so the course's
                                        z = 1 - z' = sigmoid(-(...)), i.e. W_z = -W_z', b_z = -b_z'
    GRU b_hn                            bias_hh's n block (it sits inside r * (...), so it stays apart)

Each cell class states its row of the table as ``torch_order`` (position, in PyTorch's stacked
layout, of each of our gate blocks) and ``torch_signs``. Only the GRU that resets *after* the product
(``reset_after=True``) has a ``torch.nn.GRU`` equivalent.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["permute_blocks", "cell_from_torch", "cell_to_torch", "module_from_torch", "module_to_torch"]

_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def permute_blocks(t: Tensor, order: Sequence[int], signs: Sequence[float] | None = None) -> Tensor:
    """Reorder the gate blocks of a stacked weight/bias along dim 0 (and flip signs if asked)."""
    blocks = t.chunk(len(order), dim=0)
    out = [blocks[k] for k in order]
    if signs is not None:
        out = [s * b for s, b in zip(signs, out)]
    return torch.cat(out, dim=0)


def _check_gru(cell: nn.Module) -> None:
    if getattr(cell, "reset_after", True) is False:
        raise ValueError("torch.nn.GRU resets after the product: only GRUCell(..., reset_after=True) "
                         "has a torch.nn equivalent (this one has reset_after=False)")


# ----------------------------------------------------------------------------------------------
# One cell
# ----------------------------------------------------------------------------------------------
def load_torch_tensors(cell: nn.Module, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                       b_hh: Tensor | None) -> None:
    """Copy PyTorch's (weight_ih, weight_hh, bias_ih, bias_hh) into ``cell``'s W_xh, W_hh, b (, b_hn)."""
    _check_gru(cell)
    if w_ih.shape != cell.W_xh.shape or w_hh.shape != cell.W_hh.shape:
        raise ValueError(
            f"{type(cell).__name__}: PyTorch weights of shapes {tuple(w_ih.shape)}, {tuple(w_hh.shape)} "
            f"do not fit W_xh {tuple(cell.W_xh.shape)}, W_hh {tuple(cell.W_hh.shape)}")
    if b_ih is None or b_hh is None:
        raise ValueError("modules built with bias=False are not supported (the course's cells have a bias)")
    order, signs = cell.torch_order, cell.torch_signs
    with torch.no_grad():
        cell.W_xh.copy_(permute_blocks(w_ih, order, signs))
        cell.W_hh.copy_(permute_blocks(w_hh, order, signs))
        cell.b.copy_(permute_blocks(b_ih + b_hh, order, signs))
        if getattr(cell, "b_hn", None) is not None:  # GRU: the n block of bias_hh is b_hn, not part of b
            H = cell.hidden_size
            cell.b[2 * H :].copy_(b_ih[2 * H :])
            cell.b_hn.copy_(b_hh[2 * H :])


def torch_tensors(cell: nn.Module) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(weight_ih, weight_hh, bias_ih, bias_hh) in PyTorch's layout (inverse of ``load_torch_tensors``)."""
    _check_gru(cell)
    inverse = [cell.torch_order.index(k) for k in range(cell.n_gates)]
    signs = [cell.torch_signs[j] for j in inverse]
    w_ih = permute_blocks(cell.W_xh.detach(), inverse, signs)
    w_hh = permute_blocks(cell.W_hh.detach(), inverse, signs)
    b_ih = permute_blocks(cell.b.detach(), inverse, signs)
    b_hh = torch.zeros_like(b_ih)
    if getattr(cell, "b_hn", None) is not None:
        b_hh[2 * cell.hidden_size :] = cell.b_hn.detach()
    return w_ih, w_hh, b_ih, b_hh


def cell_to_torch(cell: nn.Module) -> nn.Module:
    """An equivalent ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` (same device and dtype)."""
    tensors = torch_tensors(cell)
    kwargs = {"nonlinearity": cell.nonlinearity} if hasattr(cell, "nonlinearity") else {}
    ref = cell.torch_class(cell.input_size, cell.hidden_size, **kwargs)
    ref = ref.to(device=cell.W_xh.device, dtype=cell.W_xh.dtype)
    with torch.no_grad():
        for name, t in zip(_NAMES, tensors):
            getattr(ref, name).copy_(t)
    return ref


def cell_from_torch(cls: type, module: nn.Module) -> nn.Module:
    """A ``cls`` cell with the weights of a ``torch.nn`` cell of the matching kind."""
    if not isinstance(module, cls.torch_class):
        raise TypeError(f"{cls.__name__}.from_torch expects a {cls.torch_class.__name__}, "
                        f"got {type(module).__name__}")
    kwargs = {"nonlinearity": module.nonlinearity} if isinstance(module, nn.RNNCell) else {}
    cell = cls(module.input_size, module.hidden_size, **kwargs)
    cell = cell.to(device=module.weight_ih.device, dtype=module.weight_ih.dtype)
    load_torch_tensors(cell, *(getattr(module, name) for name in _NAMES))
    return cell


# ----------------------------------------------------------------------------------------------
# Sequence modules: one cell per layer and direction, named weight_ih_l{layer}[_reverse] in torch
# ----------------------------------------------------------------------------------------------
def _cells_and_suffixes(ours: nn.Module):
    D = ours.num_directions
    for layer in range(ours.num_layers):
        for d in range(D):
            yield ours.cells[layer * D + d], f"_l{layer}" + ("_reverse" if d else "")


def module_to_torch(ours: nn.Module, **kwargs) -> nn.Module:
    """An equivalent ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (same device and dtype)."""
    p = ours.cells[0].W_xh
    ref = ours.torch_class(
        ours.input_size, ours.hidden_size, num_layers=ours.num_layers, bidirectional=ours.bidirectional,
        batch_first=ours.batch_first, dropout=ours.dropout, **kwargs,
    ).to(device=p.device, dtype=p.dtype)
    with torch.no_grad():
        for cell, sfx in _cells_and_suffixes(ours):
            for name, t in zip(_NAMES, torch_tensors(cell)):
                getattr(ref, name + sfx).copy_(t)
    return ref


def module_from_torch(cls: type, module: nn.Module) -> nn.Module:
    """A ``cls`` module with the configuration and weights of a ``torch.nn.RNN`` / ``LSTM`` / ``GRU``."""
    if not isinstance(module, cls.torch_class):
        raise TypeError(f"{cls.__name__}.from_torch expects a {cls.torch_class.__name__}, "
                        f"got {type(module).__name__}")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"LSTM with proj_size > 0 is not supported, got proj_size={module.proj_size}")
    if not module.bias:
        raise ValueError("modules built with bias=False are not supported (the course's cells have a bias)")
    kwargs = {"nonlinearity": module.nonlinearity} if isinstance(module, nn.RNN) else {}
    ours = cls(module.input_size, module.hidden_size, num_layers=module.num_layers,
               bidirectional=module.bidirectional, batch_first=module.batch_first,
               dropout=module.dropout, **kwargs)
    ours = ours.to(device=module.weight_ih_l0.device, dtype=module.weight_ih_l0.dtype)
    for cell, sfx in _cells_and_suffixes(ours):
        load_torch_tensors(cell, *(getattr(module, name + sfx) for name in _NAMES))
    return ours
