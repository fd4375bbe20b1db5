"""neuraltext.rnn.cells against torch.nn: same weights -> same outputs, same gradients.

Weights are copied from a randomly initialised torch.nn module with ``from_torch``; gradients of ours
are compared with torch's mapped through the documented gate-order mapping (a permutation of the gate
blocks, and a sign flip for the GRU's update gate), so the mapping itself is under test too.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from neuraltext.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, permute_blocks, lengths_from_mask

ATOL = 1e-6
# "lstm" runs the hand-written BPTT (LSTMLayerBPTT, the default); "lstm_autograd" unrolls LSTMCell.step
PAIRS = {"rnn": (RNN, nn.RNN), "lstm": (LSTM, nn.LSTM), "lstm_autograd": (LSTM, nn.LSTM), "gru": (GRU, nn.GRU)}
CELLS = {"rnn": (RNNCell, nn.RNNCell), "lstm": (LSTMCell, nn.LSTMCell), "gru": (GRUCell, nn.GRUCell)}


def _close(a, b, atol=ATOL, what=""):
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
    err = (a - b).abs().max().item() if a.numel() else 0.0
    assert err <= atol, f"{what}: max abs difference {err:.3g} > {atol}"


def _check_param_grads(cell, w_ih, w_hh, b_ih, b_hh, atol=ATOL):
    """Our cell's parameter gradients vs the torch parameters' gradients, through the mapping."""
    order, signs = cell.torch_order, cell.torch_signs
    _close(cell.W_xh.grad, permute_blocks(w_ih.grad, order, signs), atol, "dL/dW_xh")
    _close(cell.W_hh.grad, permute_blocks(w_hh.grad, order, signs), atol, "dL/dW_hh")
    _close(cell.b.grad, permute_blocks(b_ih.grad, order, signs), atol, "dL/db")
    if isinstance(cell, GRUCell):
        H = cell.hidden_size
        _close(cell.b_hn.grad, b_hh.grad[2 * H :], atol, "dL/db_hn")
        _close(b_hh.grad[: 2 * H], b_ih.grad[: 2 * H], atol, "torch bias_hh vs bias_ih (z, r)")
    else:
        _close(b_hh.grad, b_ih.grad, atol, "torch bias_hh vs bias_ih")


def _run_torch(ref, x, h0, lengths, batch_first):
    if lengths is None:
        return ref(x, h0) if h0 is not None else ref(x)
    T = x.size(1 if batch_first else 0)
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out, hn = ref(packed, h0) if h0 is not None else ref(packed)
    out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    return out, hn


def _real(device):
    """float64 for the exact comparisons, except on MPS, which has no float64 (then float32, 1e-4)."""
    return (torch.float32, 1e-4) if device.type == "mps" else (torch.float64, ATOL)


def _no_tf32(device):
    """cuDNN may use TF32 (10-bit mantissa) for float32 RNNs on recent GPUs: off for comparisons."""
    if device.type == "cuda":
        return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)
    return contextlib.nullcontext()


def _flat(hn):
    return torch.cat([t.flatten() for t in hn]) if isinstance(hn, tuple) else hn.flatten()


@pytest.mark.parametrize("kind", ["rnn", "lstm", "lstm_autograd", "gru"])
@pytest.mark.parametrize(
    "num_layers,bidirectional,with_h0,padded,batch_first",
    [
        (1, False, False, False, True),
        (2, False, True, False, True),
        (1, True, False, False, True),
        (2, True, True, False, False),
        (1, False, True, True, True),
        (2, True, True, True, True),
        (3, True, False, True, False),
    ],
)
def test_sequence_module_matches_torch(kind, num_layers, bidirectional, with_h0, padded, batch_first, device):
    ours_cls, ref_cls = PAIRS[kind]
    dtype, atol = _real(device)
    B, T, I, H = 4, 7, 5, 6
    D = 2 if bidirectional else 1
    ref = ref_cls(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    ref = ref.to(device=device, dtype=dtype)
    ours = ours_cls.from_torch(ref)
    if kind == "lstm_autograd":
        ours.manual_bptt = False
        kind = "lstm"

    x = torch.randn(B, T, I, dtype=dtype, device=device)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    x_ref = x.clone().requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    h0_ref = h0_ours = None
    if with_h0:
        shapes = [(num_layers * D, B, H)] * (2 if kind == "lstm" else 1)
        h0 = [torch.randn(s, dtype=dtype, device=device) for s in shapes]
        h0_ref = tuple(t.clone().requires_grad_(True) for t in h0)
        h0_ours = tuple(t.clone().requires_grad_(True) for t in h0)
        if kind != "lstm":
            h0_ref, h0_ours = h0_ref[0], h0_ours[0]
    lengths = torch.tensor([T, 3, 5, 1]) if padded else None

    with _no_tf32(device):
        out_ref, hn_ref = _run_torch(ref, x_ref, h0_ref, lengths, batch_first)
    out_ours, hn_ours = ours(x_ours, h0_ours, lengths=lengths)
    _close(out_ours, out_ref, atol, what="output")
    if kind == "lstm":
        _close(hn_ours[0], hn_ref[0], atol, what="h_n")
        _close(hn_ours[1], hn_ref[1], atol, what="c_n")
    else:
        _close(hn_ours, hn_ref, atol, what="h_n")

    # a loss that depends on every output and every final state, with distinct weights
    w_out = torch.randn_like(out_ref)
    w_hn = torch.randn_like(_flat(hn_ref))
    with _no_tf32(device):
        ((out_ref * w_out).sum() + (_flat(hn_ref) * w_hn).sum()).backward()
    ((out_ours * w_out).sum() + (_flat(hn_ours) * w_hn).sum()).backward()

    _close(x_ours.grad, x_ref.grad, atol, what="dL/dx")
    if with_h0:
        for a, b in zip(h0_ours if kind == "lstm" else [h0_ours], h0_ref if kind == "lstm" else [h0_ref]):
            _close(a.grad, b.grad, atol, what="dL/dh0")
    for layer in range(num_layers):
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            params = [getattr(ref, n + sfx) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            _check_param_grads(ours.cells[layer * D + d], *params, atol=atol)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cell_matches_torch_cell(kind, device):
    ours_cls, ref_cls = CELLS[kind]
    dtype, atol = _real(device)
    B, I, H, T = 3, 4, 5, 6
    ref = ref_cls(I, H).to(device=device, dtype=dtype)
    ours = ours_cls.from_torch(ref)
    xs = torch.randn(T, B, I, dtype=dtype, device=device)
    state_ref = state_ours = None
    loss_ref = loss_ours = 0.0
    for t in range(T):  # a decoder-style loop, feeding the state back
        state_ref = ref(xs[t], state_ref)
        state_ours = ours(xs[t], state_ours)
        h_ref = state_ref[0] if kind == "lstm" else state_ref
        h_ours = state_ours[0] if kind == "lstm" else state_ours
        _close(h_ours, h_ref, atol, what=f"h_{t}")
        w = torch.randn_like(h_ref)
        loss_ref = loss_ref + (h_ref * w).sum()
        loss_ours = loss_ours + (h_ours * w).sum()
    if kind == "lstm":
        _close(state_ours[1], state_ref[1], atol, what="c_T")
    loss_ref.backward()
    loss_ours.backward()
    _check_param_grads(ours, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh, atol=atol)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_float32_matches_torch(kind, device):
    ours_cls, ref_cls = PAIRS[kind]
    ref = ref_cls(8, 16, num_layers=2, batch_first=True).to(device)
    ours = ours_cls.from_torch(ref)
    x = torch.randn(4, 20, 8, device=device)
    with _no_tf32(device):
        expected = ref(x)[0]
    _close(ours(x)[0], expected, atol=1e-5, what="float32 output")


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_to_torch_round_trip(kind):
    ours_cls, _ = PAIRS[kind]
    ours = ours_cls(3, 4, num_layers=2, bidirectional=True).double()
    ref = ours.to_torch()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    _close(ours(x)[0], ref(x)[0], what="to_torch output")
    again = ours_cls.from_torch(ref)
    _close(again(x)[0], ours(x)[0], what="round trip")
    cell_cls, _ = CELLS[kind]
    cell = cell_cls(3, 4).double()
    ref_cell = cell.to_torch()
    xt = torch.randn(2, 3, dtype=torch.float64)
    a, b = cell(xt), ref_cell(xt)
    _close(a[0] if kind == "lstm" else a, b[0] if kind == "lstm" else b, what="cell to_torch")


def test_manual_bptt_equals_autograd_through_the_cell(device):
    """LSTMLayerBPTT's hand-written backward pass vs autograd through LSTMCell.step, padded, float64."""
    dtype, atol = _real(device)
    atol = 1e-12 if dtype == torch.float64 else atol
    manual = LSTM(4, 6, num_layers=2, bidirectional=True).to(device=device, dtype=dtype)
    readable = LSTM(4, 6, num_layers=2, bidirectional=True, manual_bptt=False).to(device=device, dtype=dtype)
    readable.load_state_dict(manual.state_dict())
    x = torch.randn(3, 8, 4, dtype=dtype, device=device)
    h0, c0 = torch.randn(4, 3, 6, dtype=dtype, device=device), torch.randn(4, 3, 6, dtype=dtype, device=device)
    lengths = torch.tensor([8, 5, 1])
    grads = []
    for model in (manual, readable):
        inputs = [t.clone().requires_grad_(True) for t in (x, h0, c0)]
        out, (h_n, c_n) = model(inputs[0], (inputs[1], inputs[2]), lengths=lengths)
        (out.sin().sum() + h_n.cos().sum() + (c_n * c_n).sum()).backward()
        grads.append([out, h_n, c_n] + [t.grad for t in inputs] + [p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        _close(a, b, atol=atol, what="manual vs autograd")


def test_rnn_relu_matches_torch():
    ref = nn.RNN(3, 4, nonlinearity="relu", batch_first=True).double()
    ours = RNN.from_torch(ref)
    assert ours.nonlinearity == "relu"
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    _close(ours(x)[0], ref(x)[0], what="relu RNN")


def test_lstm_cell_is_the_course_equations():
    """The LSTM step written gate by gate with W_f [h, x] + b_f (course notation) on our parameters."""
    cell = LSTMCell(3, 4).double()
    x, h, c = (torch.randn(2, n, dtype=torch.float64) for n in (3, 4, 4))
    W = torch.cat([cell.W_hh, cell.W_xh], dim=1)  # W_gate acts on [h_{t-1}, x_t]
    W_f, W_i, W_C, W_o = W.chunk(4)
    b_f, b_i, b_C, b_o = cell.b.chunk(4)
    hx = torch.cat([h, x], dim=1)
    f = torch.sigmoid(hx @ W_f.T + b_f)
    i = torch.sigmoid(hx @ W_i.T + b_i)
    C_tilde = torch.tanh(hx @ W_C.T + b_C)
    o = torch.sigmoid(hx @ W_o.T + b_o)
    C = f * c + i * C_tilde
    h_new, c_new = cell(x, (h, c))
    _close(c_new, C, atol=1e-12, what="C_t")
    _close(h_new, o * torch.tanh(C), atol=1e-12, what="h_t")


def test_gru_cell_reset_before_is_the_course_equations():
    cell = GRUCell(3, 4, reset_after=False).double()
    assert cell.b_hn is None
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    W_zh, W_rh, W_h = cell.W_hh.chunk(3)
    W_zx, W_rx, W_x = cell.W_xh.chunk(3)
    b_z, b_r, b = cell.b.chunk(3)
    z = torch.sigmoid(h @ W_zh.T + x @ W_zx.T + b_z)
    r = torch.sigmoid(h @ W_rh.T + x @ W_rx.T + b_r)
    h_tilde = torch.tanh((r * h) @ W_h.T + x @ W_x.T + b)
    _close(cell(x, h), (1 - z) * h + z * h_tilde, atol=1e-12, what="course GRU")
    with pytest.raises(ValueError, match="reset_after"):
        cell.to_torch()


def test_gru_update_gate_follows_the_course_convention():
    """h_t = (1 - z_t) h_{t-1} + z_t h~_t (course); PyTorch's z' is 1 - z, so its bias block is -b_z."""
    cell = GRUCell(3, 4).double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    with torch.no_grad():
        cell.b[:4] = -50.0  # z_t = 0: keep h_{t-1}
    _close(cell(x, h), h, atol=1e-12, what="z=0 keeps the state")
    ref = cell.to_torch()
    assert torch.all(ref.bias_ih[4:8] == 50.0)  # PyTorch's z block (second) is negated


def test_padded_steps_do_not_change_the_result():
    """Padding content is irrelevant: garbage after each length gives the same outputs and states."""
    gru = GRU(3, 5, bidirectional=True).double()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    noisy = x.clone()
    for b, L in enumerate(lengths):
        noisy[b, L:] = 1e3 * torch.randn_like(noisy[b, L:])
    out1, h1 = gru(x, lengths=lengths)
    out2, h2 = gru(noisy, lengths=lengths)
    _close(out1, out2, atol=0, what="output")
    _close(h1, h2, atol=0, what="h_n")
    assert torch.all(out1[1, 2:] == 0) and torch.all(out1[2, 4:] == 0)
    # the same thing given as a mask
    mask = torch.arange(6)[None, :] < lengths[:, None]
    out3, _ = gru(x, mask=mask)
    _close(out3, out1, atol=0, what="mask vs lengths")
    # one sequence alone (no padding) equals its row in the padded batch
    out_single, h_single = gru(x[1:2, :2])
    _close(out_single[0], out1[1, :2], atol=1e-12, what="unpadded row")
    _close(h_single[:, 0], h1[:, 1], atol=1e-12, what="unpadded h_n")


def test_dropout_only_in_training():
    lstm = LSTM(3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(2, 5, 3)
    lstm.eval()
    a, b = lstm(x)[0], lstm(x)[0]
    _close(a, b, atol=0, what="eval is deterministic")
    lstm.train()
    assert not torch.equal(lstm(x)[0], lstm(x)[0])


def test_clear_errors_name_the_shapes():
    gru = GRU(5, 7, num_layers=2)
    with pytest.raises(ValueError, match=r"input_size = 5.*\(2, 3, 4\)"):
        gru(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"\(B, T, input_size\).*\(3, 5\)"):
        gru(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"h0.*\(2, 2, 7\).*\(1, 2, 7\)"):
        gru(torch.randn(2, 3, 5), torch.zeros(1, 2, 7))
    lstm = LSTM(5, 7, bidirectional=True)
    with pytest.raises(ValueError, match=r"c0.*\(2, 2, 7\).*\(2, 2, 6\)"):
        lstm(torch.randn(2, 3, 5), (torch.zeros(2, 2, 7), torch.zeros(2, 2, 6)))
    with pytest.raises(ValueError, match="pair"):
        lstm(torch.randn(2, 3, 5), torch.zeros(2, 2, 7))
    with pytest.raises(ValueError, match=r"lengths.*\(2,\)"):
        lstm(torch.randn(2, 3, 5), lengths=torch.tensor([3, 2, 1]))
    with pytest.raises(ValueError, match=r"\[1, T=3\]"):
        lstm(torch.randn(2, 3, 5), lengths=torch.tensor([4, 2]))
    cell = LSTMCell(5, 7)
    with pytest.raises(ValueError, match=r"\(B, 5\).*\(2, 4\)"):
        cell(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"state c.*\(2, 7\).*\(2, 8\)"):
        cell(torch.randn(2, 5), (torch.zeros(2, 7), torch.zeros(2, 8)))
    with pytest.raises(ValueError, match=r"\(3, 7\).*\(2, 7\)"):
        GRUCell(5, 7)(torch.randn(3, 5), torch.zeros(2, 7))
    with pytest.raises(ValueError, match="prefix"):
        lengths_from_mask(torch.tensor([[True, False, True]]))
    with pytest.raises(TypeError, match="GRU"):
        GRU.from_torch(nn.LSTM(3, 4))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_float32_gradients_match_torch(kind, device):
    """The float32 path (oneDNN products in LSTMLayerBPTT on CPU; F.linear without oneDNN and on GPUs)
    against torch.nn, padded, 2 directions."""
    ours_cls, ref_cls = PAIRS[kind]
    ref = ref_cls(8, 16, bidirectional=True, batch_first=True).to(device)
    ours = ours_cls.from_torch(ref)
    x = torch.randn(4, 12, 8, device=device)
    lengths = torch.tensor([12, 7, 3, 10])
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    with _no_tf32(device):
        out_ref, _ = _run_torch(ref, x_ref, None, lengths, True)
    out_ours, _ = ours(x_ours, lengths=lengths)
    _close(out_ours, out_ref, atol=1e-5, what="float32 output")
    w = torch.randn_like(out_ref)
    with _no_tf32(device):
        (out_ref * w).sum().backward()
    (out_ours * w).sum().backward()
    _close(x_ours.grad, x_ref.grad, atol=1e-5, what="float32 dL/dx")
    _check_param_grads(ours.cells[1], ref.weight_ih_l0_reverse, ref.weight_hh_l0_reverse,
                       ref.bias_ih_l0_reverse, ref.bias_hh_l0_reverse, atol=1e-5)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "lstm_autograd", "gru"])
def test_mixed_precision_forward_and_backward(kind, device):
    """Under ``torch.autocast`` (bfloat16 on a CPU, float16 on a GPU), as ``train(amp=True)`` runs, with
    a low-precision input from a linear layer before it: forward and backward run, every gradient has
    its parameter's dtype, and the hand-written LSTM, which runs in float32 under autocast, gives what
    it gives in float32 on the same (rounded) input. The others compute in low precision: they stay
    within its rounding (2^-8 relative for bfloat16) of that float32 run."""
    ours_cls, _ = PAIRS[kind]
    ours = ours_cls(6, 8, num_layers=2, bidirectional=True).to(device)
    if kind == "lstm_autograd":
        ours.manual_bptt = False
    proj = nn.Linear(5, 6).to(device)
    x = torch.randn(3, 7, 5, device=device)
    lengths = torch.tensor([7, 4, 2])
    with torch.autocast(device.type):
        y = proj(x)  # (B, T, 6) in the autocast dtype
        out, h_n = ours(y, lengths=lengths)
    assert y.dtype == torch.get_autocast_dtype(device.type)
    w = torch.randn(out.shape, device=device)
    (out.float() * w).sum().backward()
    grads = [p.grad.clone() for p in ours.parameters()]
    assert proj.weight.grad is not None and proj.weight.grad.dtype == torch.float32
    for p, g in zip(ours.parameters(), grads):
        assert g.dtype == p.dtype and torch.isfinite(g).all()

    ours.zero_grad()
    out32, _ = ours(y.detach().float(), lengths=lengths)  # the same rounded input, float32 throughout
    (out32 * w).sum().backward()
    atol = 1e-6 if kind == "lstm" else 3e-2
    _close(out.float(), out32, atol=atol, what="autocast output vs float32")
    for p, g in zip(ours.parameters(), grads):
        _close(g, p.grad, atol=atol * 10, what="autocast gradient vs float32")


def test_bad_lengths_and_dtypes_are_refused():
    """Float lengths used to be truncated silently (2.7 -> 2); mixed dtypes failed deep inside."""
    lstm = LSTM(5, 7)
    x = torch.randn(2, 3, 5)
    with pytest.raises(TypeError, match=r"lengths must hold integers.*torch\.float32.*2\.7"):
        lstm(x, lengths=torch.tensor([3.0, 2.7]))
    with pytest.raises(TypeError, match=r"lengths.*torch\.float32"):
        lstm(x, lengths=[3.0, 2.0])
    with pytest.raises(TypeError, match=r"lengths.*torch\.bool"):
        GRU(5, 7)(x, lengths=torch.tensor([True, True]))
    out, _ = lstm(x, lengths=[3, 2])  # a list of ints is fine, as is an int tensor
    assert torch.equal(out, lstm(x, lengths=torch.tensor([3, 2], dtype=torch.int32))[0])
    with pytest.raises(TypeError, match=r"x has dtype torch\.float64, the parameters torch\.float32"):
        lstm(x.double())
    with pytest.raises(TypeError, match=r"x has dtype torch\.bfloat16.*torch\.autocast"):
        RNN(5, 7)(x.bfloat16())


def test_gru_reset_before_and_after_differ_by_the_formula():
    """Same weights, b_hn = 0: z and r agree; only the candidate differs, by where r enters:
    course (before) h~ = tanh(a + W_h (r * h)), PyTorch (after) h~' = tanh(a + r * (W_h h)), with
    a = W_x x + b; hence h'_t - h_t = z * (h~' - h~), and the two agree when r = 1 on every unit."""
    before = GRUCell(3, 4, reset_after=False).double()
    after = GRUCell(3, 4, reset_after=True).double()
    with torch.no_grad():
        for name in ("W_xh", "W_hh", "b"):
            getattr(after, name).copy_(getattr(before, name))
        after.b_hn.zero_()
    x, h = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    W_zh, W_rh, W_h = before.W_hh.chunk(3)
    W_zx, W_rx, W_x = before.W_xh.chunk(3)
    b_z, b_r, b_n = before.b.chunk(3)
    z = torch.sigmoid(h @ W_zh.T + x @ W_zx.T + b_z)
    r = torch.sigmoid(h @ W_rh.T + x @ W_rx.T + b_r)
    a = x @ W_x.T + b_n
    expected = z * (torch.tanh(a + r * (h @ W_h.T)) - torch.tanh(a + (r * h) @ W_h.T))
    diff = after(x, h) - before(x, h)
    _close(diff, expected, atol=1e-12, what="h_after - h_before")
    assert diff.abs().max() > 1e-3  # they really are two different models
    with torch.no_grad():  # r = sigmoid(50) = 1 on every unit: W_h (1 * h) = 1 * (W_h h)
        before.b[4:8] = after.b[4:8] = 50.0
    _close(after(x, h), before(x, h), atol=1e-12, what="r = 1")


def test_onednn_switch_selects_the_plain_path():
    """The ``cpu-no-onednn`` device really runs F.linear (the code CUDA runs), not oneDNN's kernels."""
    from neuraltext.fast import bptt as rnn_fast

    x = torch.randn(2, 3)
    with torch.backends.mkldnn.flags(enabled=False):
        assert not rnn_fast._use_onednn(x)
    assert not rnn_fast._use_onednn(x.double())
    assert rnn_fast._use_onednn(x) == rnn_fast._ONEDNN_LINEAR


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_lengths_on_the_device_are_not_read_back(cls):
    """Lengths that live on the device are not range-checked (on a GPU, reading them back would make
    every batch wait for the device; CPU lengths still are, above). The meta device stands in for
    the GPU: any read of a value back to the host raises there."""
    layer = cls(5, 7, bidirectional=True).to("meta")
    x = torch.empty(2, 3, 5, device="meta")
    out, _ = layer(x, lengths=torch.tensor([3, 2], device="meta"))
    assert out.device.type == "meta" and out.shape == (2, 3, 14)
