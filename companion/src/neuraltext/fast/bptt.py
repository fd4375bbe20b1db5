"""The LSTM's fast path: back-propagation through time written out by hand (:class:`LSTMLayerBPTT`).

:mod:`neuraltext.rnn.cells` states the course's equations and unrolls them under autograd; this module
computes *the same equations* faster, and ``neuraltext.rnn.LSTM`` uses it by default
(``LSTM(..., manual_bptt=False)`` runs the readable version). Read :mod:`neuraltext.rnn.cells` first.

Why autograd is slow here: at every step it records ~12 small operations, and its backward pass
computes ``dL/dW_hh`` as T small products. :class:`LSTMLayerBPTT` records nothing in the forward
pass, and its backward pass runs the recurrence in reverse (gate blocks f, i, C~, o; a_t are the gate
activations, g_t the pre-activations ``W_xh x_t + W_hh h_{t-1} + b``):

    dh_t  = dL/dh_t (from the output) + dh_t (from step t+1)
    do_t  = dh_t * tanh(C_t)
    dC_t  = dC_t (from step t+1) + dh_t * o_t * (1 - tanh(C_t)^2)
    df_t  = dC_t * C_{t-1},   di_t = dC_t * C~_t,   dC~_t = dC_t * i_t
    dg_t  = [df, di, dC~, do]_t * [sigmoid', sigmoid', tanh', sigmoid']   (sigmoid' = a(1-a), tanh' = 1-a^2)
    dh_{t-1} = dg_t W_hh,      dC_{t-1} = dC_t * f_t

and then, as *one* product each over all steps, ``dL/dW_hh = sum_t dg_t^T h_{t-1}``,
``dL/dW_xh = sum_t dg_t^T x_t``, ``dL/db = sum_t dg_t`` and ``dL/dx_t = dg_t W_xh``. Padded steps
(mask False) copy the state forward, so their gradient passes straight through to the step before.

Three CPU details, each measured in ``benchmarks/rnn.py`` (its step table has the numbers):

* tanh is computed as ``tanh(z) = 2 sigmoid(2z) - 1``: with the candidate's rows of ``W_hh`` and of
  ``W_xh x_t + b`` doubled once per sequence, one sigmoid over the (B, 4H) pre-activations serves all
  four gates (PyTorch's CPU sigmoid is faster than its tanh on such small tensors);
* in float32 on a CPU, the matrix products use oneDNN's kernel (``torch.ops.mkldnn``, the library
  behind ``torch.nn.LSTM`` on CPUs), with ``W_hh`` pre-arranged once per sequence in its blocked
  layout; with oneDNN switched off (``torch.backends.mkldnn.flags(enabled=False)``), on GPUs and in
  other dtypes, plain ``F.linear``;
* the work is done in place over a few large buffers rather than in many temporaries.

Mixed precision: under ``torch.autocast`` the layer runs in float32 (:func:`lstm_layer_bptt`).
``tests/test_rnn.py`` checks all of this against autograd through ``LSTMCell.step`` and ``torch.nn.LSTM``.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LSTMLayerBPTT", "lstm_layer_bptt"]


# ----------------------------------------------------------------------------------------------
# Matrix products: oneDNN on CPUs when it is there and switched on, F.linear elsewhere
# ----------------------------------------------------------------------------------------------
def _onednn_linear_available() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


_ONEDNN_LINEAR = _onednn_linear_available()


def _use_onednn(x: Tensor) -> bool:
    """Whether this call may use oneDNN's kernels: a CPU float32 tensor, a PyTorch that has them, and
    oneDNN not switched off (``torch.backends.mkldnn.flags(enabled=False)``: how the tests run the
    ``F.linear`` path that CUDA and MPS take)."""
    return (_ONEDNN_LINEAR and x.device.type == "cpu" and x.dtype == torch.float32
            and torch.backends.mkldnn.enabled)


def _linear(x: Tensor, w: Tensor, b: Tensor | None = None, onednn: bool = False) -> Tensor:
    """``x @ w.T (+ b)``, with oneDNN's kernel when ``onednn`` (see :func:`_use_onednn`)."""
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


# ----------------------------------------------------------------------------------------------
# Forward: the LSTM step of neuraltext.rnn.cells.LSTMCell.step, T times, keeping what backward needs
# ----------------------------------------------------------------------------------------------
def _forward(x: Tensor, W_xh: Tensor, b: Tensor, W_hh: Tensor, h0: Tensor, c0: Tensor,
             mask: Tensor | None, onednn: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Run the layer; returns hs (T+1, B, H) = h_0..h_T, cs (T+1, B, H) = C_0..C_T,
    tcs (T, B, H) = tanh(C_1)..tanh(C_T) and acts (T, B, 4H), the gate activations f, i, C~, o."""
    T, B, I = x.shape
    G = W_xh.size(0)
    H = G // 4
    # W_xh x_t + b, all steps at once; each step adds W_hh h_{t-1} and applies the gates in place
    acts = _linear(x.reshape(T * B, I), W_xh, b, onednn).view(T, B, G)
    # tanh(z) = 2 sigmoid(2z) - 1: with the candidate's pre-activations doubled, one sigmoid covers all four gates
    acts[..., 2 * H : 3 * H] *= 2
    W_hh2 = W_hh.clone()
    W_hh2[2 * H : 3 * H] *= 2
    W_hh2 = _pack_weight(W_hh2, B, onednn)
    hs, cs, tcs = x.new_empty(T + 1, B, H), x.new_empty(T + 1, B, H), x.new_empty(T, B, H)
    hs[0], cs[0] = h0, c0
    # the constants as 0-dim tensors: given a Python number, each in-place op first converts it to a
    # tensor (a few microseconds, 5 times a step); the results are the same to the bit
    one, two = x.new_ones(()), x.new_full((), 2.0)
    for t in range(T):
        a = acts[t]
        a.add_(_linear(hs[t], W_hh2, onednn=onednn))  # pre-activations (B, 4H), candidate doubled
        a.sigmoid_()
        f, i, g, o = a.chunk(4, dim=1)
        g.mul_(two).sub_(one)  # C~ = tanh
        c, tc, h = cs[t + 1], tcs[t], hs[t + 1]
        torch.mul(f, cs[t], out=c).addcmul_(i, g)  # C_t = f C_{t-1} + i C~
        torch.mul(c, two, out=tc).sigmoid_().mul_(two).sub_(one)  # tanh(C_t)
        torch.mul(o, tc, out=h)  # h_t = o tanh(C_t)
        if mask is not None:  # padded step: keep the previous state
            c.copy_(torch.where(mask[t], c, cs[t]))
            h.copy_(torch.where(mask[t], h, hs[t]))
    return hs, cs, tcs, acts


# ----------------------------------------------------------------------------------------------
# Backward: the recurrence of the module docstring, in reverse
# ----------------------------------------------------------------------------------------------
def _local_derivatives(acts: Tensor, cs: Tensor, tcs: Tensor) -> tuple[Tensor, Tensor]:
    """Everything that does not depend on the incoming gradient, for all steps at once, in place
    (one large temporary). Returns D (T, B, 4H), with dg_{f,i,C~} = dC_t * D_t[:3H] and
    dg_o = dh_t * D_t[3H:], and K (T, B, H), with dC_t += dh_t * K_t."""
    H = acts.size(2) // 4
    f, i, g, o = acts.chunk(4, dim=2)  # (T, B, H) each
    D = torch.sub(1, acts).mul_(acts)  # sigmoid' = a (1 - a) ...
    D_g = D[..., 2 * H : 3 * H]
    torch.mul(g, g, out=D_g).neg_().add_(1)  # ... and tanh' = 1 - a^2 for the candidate
    D[..., :H].mul_(cs[:-1])  # df = dC_t * C_{t-1} * sigmoid'(f)
    D[..., H : 2 * H].mul_(g)  # di = dC_t * C~_t * sigmoid'(i)
    D_g.mul_(i)  # dC~ = dC_t * i_t * tanh'(C~)
    D[..., 3 * H :].mul_(tcs)  # do = dh_t * tanh(C_t) * sigmoid'(o)
    K = torch.mul(tcs, tcs).neg_().add_(1).mul_(o)  # o_t * (1 - tanh(C_t)^2)
    return D, K


def _backward(x, W_xh, W_hh, hs, cs, tcs, acts, mask, d_out, dh, dc, onednn: bool, need_dx: bool):
    """Gradients (dx, dW_xh, db, dW_hh, dh_0, dC_0) from the incoming dL/d(output), dL/dh_T, dL/dC_T."""
    T, B, G = acts.shape
    H, I = G // 4, x.size(2)
    f = acts[..., :H]
    d_pre, K = _local_derivatives(acts, cs, tcs)  # d_pre is overwritten step by step with dL/dg_t
    W_hh_T = _pack_weight(W_hh.t().contiguous(), B, onednn)  # (H, 4H): dh_{t-1} = dg_t W_hh = linear(dg_t, W_hh^T)
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
    # the weight gradients: one product each over all T*B rows; transposed operands read as views
    dP = d_pre.reshape(T * B, G)
    dW_hh = _linear(hs[:-1].reshape(T * B, H).t(), dP.t(), onednn=onednn).t().contiguous()  # sum_t dg_t^T h_{t-1}
    dW_xh = _linear(x.reshape(T * B, I).t(), dP.t(), onednn=onednn).t().contiguous()  # sum_t dg_t^T x_t
    db = dP.sum(dim=0)
    dx = _linear(dP, W_xh.t(), onednn=onednn).view(T, B, I) if need_dx else None
    return dx, dW_xh, db, dW_hh, dh, dc


def _has_autocast(device_type: str) -> bool:
    """Whether ``device_type`` has autocast at all: the meta device (on which the CPU tests look for
    tensors made on the wrong device) has none, and cannot even be asked."""
    return getattr(torch.amp, "is_autocast_available", lambda _: True)(device_type)


def _autocast_off(device_type: str):
    return torch.autocast(device_type, enabled=False) if _has_autocast(device_type) else nullcontext()


class LSTMLayerBPTT(torch.autograd.Function):
    """One LSTM layer over T steps, with back-propagation through time written out by hand.

    ``LSTMLayerBPTT.apply(x (T, B, I), W_xh, b, W_hh, h0, c0, mask) -> (output (T, B, H), h_T, C_T)``;
    ``mask`` (T, B, 1) is False on padded steps (or None). The same equations as
    ``neuraltext.rnn.cells.LSTMCell.step`` (gate blocks f, i, C~, o); see the module docstring. Both passes
    run with autocast off, in the dtype of their inputs (:func:`lstm_layer_bptt` settles it).
    """

    @staticmethod
    def forward(ctx, x: Tensor, W_xh: Tensor, b: Tensor, W_hh: Tensor, h0: Tensor, c0: Tensor,
                mask: Tensor | None):
        ctx.device_type = x.device.type
        with _autocast_off(ctx.device_type):
            hs, cs, tcs, acts = _forward(x, W_xh, b, W_hh, h0, c0, mask, _use_onednn(x))
        ctx.save_for_backward(x, W_xh, W_hh, hs, cs, tcs, acts, mask)
        T = x.size(0)
        return hs[1:].clone(), hs[T].clone(), cs[T].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out: Tensor, d_hT: Tensor, d_cT: Tensor):
        x, W_xh, W_hh, hs, cs, tcs, acts, mask = ctx.saved_tensors
        d_out = torch.zeros_like(tcs) if d_out is None else d_out
        dh = torch.zeros_like(hs[0]) if d_hT is None else d_hT.clone()
        dc = torch.zeros_like(cs[0]) if d_cT is None else d_cT.clone()
        with _autocast_off(ctx.device_type):  # backward in the forward's dtype
            grads = _backward(x, W_xh, W_hh, hs, cs, tcs, acts, mask, d_out, dh, dc,
                              _use_onednn(x), ctx.needs_input_grad[0])
        return (*grads, None)


def lstm_layer_bptt(x: Tensor, W_xh: Tensor, b: Tensor, W_hh: Tensor, h0: Tensor, c0: Tensor,
                    mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``LSTMLayerBPTT.apply``, autocast-aware.

    Under ``torch.autocast`` the layer runs in float32 (float64 if a tensor is float64), whatever the
    dtype of its inputs (a previous layer may hand it bfloat16), and its backward pass in the same
    dtype: the contract of ``torch.amp.custom_fwd(cast_inputs=torch.float32)``/``custom_bwd``, for
    whatever device ``x`` is on (those decorators are fixed to one device type). Why float32: the cell
    state is a running sum over T steps, and bfloat16 (8 significant bits) would lose digits at each.
    """
    tensors = [x, W_xh, b, W_hh, h0, c0]
    if _has_autocast(x.device.type) and torch.is_autocast_enabled(x.device.type):
        dtype = torch.float32
        for t in tensors:
            dtype = torch.promote_types(dtype, t.dtype)
        tensors = [t.to(dtype) for t in tensors]
    return LSTMLayerBPTT.apply(*tensors, mask)
