"""neuraltext.rnn.lm: batches, perplexity and its two bounds, sampling, BPTT gradient norms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neuraltext.rnn import (LMBatches, LMConfig, RNNLM, evaluate_perplexity, gradient_vs_distance,
                            hidden_gradient_norms, lm_loss, lm_windows, perplexity,
                            perplexity_from_log_probs, sample, temperature_probs)
from neuraltext.rnn import GRUCell, LSTMCell, RNNCell


def test_windows_shift_targets_by_one():
    inputs, targets = lm_windows(list(range(11)), seq_len=3)
    assert inputs.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert targets.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="too short"):
        lm_windows([1, 2, 3], seq_len=3)


def test_batches_cover_every_window_once_and_reshuffle():
    batches = LMBatches(torch.arange(101), batch_size=4, seq_len=5, seed=1)
    assert len(batches) == 5 and batches.n_tokens == 100
    first = torch.cat([x for x, _ in batches])
    second = torch.cat([x for x, _ in batches])
    assert sorted(first[:, 0].tolist()) == list(range(0, 100, 5))
    assert not torch.equal(first, second)  # a new order each epoch
    for x, y in batches:
        assert torch.equal(y, x + 1)


def test_perplexity_of_a_perfect_model_is_one():
    V, targets = 7, torch.tensor([[3, 1, 4, 1, 5, 6]])
    logits = torch.full((1, 6, V), -1e4)
    logits.scatter_(-1, targets.unsqueeze(-1), 1e4)  # probability 1 on every true token
    assert perplexity(logits, targets).item() == 1.0
    assert lm_loss(logits, targets).item() == 0.0


@pytest.mark.parametrize("V", [2, 10, 97])
def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(V):
    targets = torch.randint(0, V, (3, 8))
    logits = torch.randn(3, 8, 1).expand(3, 8, V)  # equal logits per position: P = 1/|V|
    assert perplexity(logits, targets).item() == pytest.approx(V, rel=1e-12)
    assert math.exp(lm_loss(logits, targets).item()) == pytest.approx(V, rel=1e-5)


def test_perplexity_is_the_course_formula():
    """exp(-(1/M) [log P(x_1) + sum_t log P(x_t | x_<t)]) on hand-picked probabilities."""
    p = torch.tensor([0.5, 0.25, 0.125, 1.0], dtype=torch.float64)
    expected = math.exp(-(math.log(0.5) + math.log(0.25) + math.log(0.125) + 0.0) / 4)
    assert perplexity_from_log_probs(p.log()).item() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(2 ** 1.5)
    logits = torch.randn(2, 5, 11)
    targets = torch.randint(0, 11, (2, 5))
    assert perplexity(logits, targets).item() == pytest.approx(math.exp(F.cross_entropy(
        logits.reshape(-1, 11), targets.reshape(-1)).item()), rel=1e-5)
    with pytest.raises(ValueError, match=r"\(2, 5, 11\).*\(2, 4\)"):
        perplexity(logits, targets[:, :4])


class _Bigram(torch.nn.Module):
    """A fixed next-token table P(next | current): its perplexity on a known stream is known by hand."""

    def __init__(self, table):
        super().__init__()
        self.log_p = torch.nn.Parameter(torch.tensor(table, dtype=torch.float64).log())

    def forward(self, ids, state=None):
        return self.log_p[ids], state  # (B, T, V) log-probabilities are valid logits


def test_evaluate_perplexity_pools_tokens():
    """Stream 0 1 2 0 1 2 ...; P(1|0) = 1/2, P(2|1) = 1/4, P(0|2) = 1/2: every 0->1 or 2->0 costs 1 bit,
    every 1->2 costs 2 bits. Five windows of two (inputs starting 0, 2, 1, 0, 2) cost 3 + 2 + 3 + 3 + 2
    = 13 bits over M = 10 tokens: perplexity 2^1.3. Batches of 2, 2 and 1 windows (5, 6 and 2 bits):
    the mean of the per-batch losses would give 2^((5/4 + 6/4 + 2/2) / 3) = 2^1.25 instead."""
    model = _Bigram([[1 / 4, 1 / 2, 1 / 4], [3 / 8, 3 / 8, 1 / 4], [1 / 2, 1 / 4, 1 / 4]])
    batches = LMBatches(torch.arange(11) % 3, batch_size=2, seq_len=2, shuffle=False)
    assert [x[:, 0].tolist() for x, _ in batches] == [[0, 2], [1, 0], [2]]
    assert evaluate_perplexity(model, batches) == pytest.approx(2 ** 1.3, rel=1e-12)
    # an untrained model is near the uniform bound |V|
    rnn_lm = RNNLM(LMConfig(vocab_size=13, cell="gru", embed_dim=8, hidden_size=16))
    ids = LMBatches(torch.randint(0, 13, (200,)), batch_size=5, seq_len=9, shuffle=False)
    assert 0.5 * 13 < evaluate_perplexity(rnn_lm, ids) < 2 * 13


def test_perplexity_of_known_distributions():
    """P = (1/2, 1/4, 1/8, 1/8) on the true tokens: log2 perplexity = (1 + 2 + 3 + 3) / 4 = 9/4.
    A confidently wrong model (0.97 on a wrong token, 0.01 on the true one) has perplexity 100 > |V| = 4:
    |V| is the uniform model's value, not an upper bound."""
    q = torch.tensor([1 / 2, 1 / 4, 1 / 8, 1 / 8], dtype=torch.float64)
    targets = torch.tensor([[0, 1, 2, 3]])
    logits = q.log().expand(1, 4, 4)  # the same distribution at every position
    assert perplexity(logits, targets).item() == pytest.approx(2 ** 2.25, rel=1e-12)
    assert lm_loss(logits, targets).item() == pytest.approx(2.25 * math.log(2), rel=1e-12)
    wrong = torch.tensor([0.97, 0.01, 0.01, 0.01], dtype=torch.float64).log().expand(1, 3, 4)
    assert perplexity(wrong, torch.tensor([[1, 2, 3]])).item() == pytest.approx(100.0, rel=1e-12)


def test_temperature():
    """softmax(y / T) for y = (2, 1, 0): the table of the lecture notes, by hand with math.exp."""
    logits = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    table = {0.5: (0.8668, 0.1173, 0.0159), 1.0: (0.6652, 0.2447, 0.0900), 2.0: (0.5065, 0.3072, 0.1863)}
    for T, rounded in table.items():
        e = [math.exp(y / T) for y in (2.0, 1.0, 0.0)]
        exact = [v / sum(e) for v in e]
        assert temperature_probs(logits, T).tolist() == pytest.approx(exact, rel=1e-12)
        assert [round(v, 4) for v in exact] == list(rounded)
    assert temperature_probs(logits, 0).tolist() == [1.0, 0.0, 0.0]  # T = 0: argmax (greedy)
    assert temperature_probs(logits, 1e4).tolist() == pytest.approx([1 / 3] * 3, abs=1e-4)  # T large: uniform


def test_sampling_is_seeded_and_greedy_at_zero_temperature():
    model = RNNLM(LMConfig(vocab_size=9, cell="lstm", embed_dim=4, hidden_size=8))
    a = sample(model, [2, 5], 20, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = sample(model, [2, 5], 20, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert a == b and len(a) == 20 and all(0 <= i < 9 for i in a)
    greedy = sample(model, [2, 5], 10, temperature=0)
    # greedy by hand, recomputing from the whole prefix each time (no state carried)
    ids = [2, 5]
    for _ in range(10):
        logits, _ = model(torch.tensor([ids]))
        ids.append(int(logits[0, -1].argmax()))
    assert greedy == ids[2:]


def test_sampling_stops_at_stop_id():
    """The same seeded draws, cut just before the first stop_id (which is not returned)."""
    model = RNNLM(LMConfig(vocab_size=5, cell="rnn", embed_dim=4, hidden_size=8))
    full = sample(model, [1], 40, generator=torch.Generator().manual_seed(7))
    for k in (0, 3, 20, 39):
        stop = full[k]
        cut = sample(model, [1], 40, generator=torch.Generator().manual_seed(7), stop_id=stop)
        assert cut == full[: full.index(stop)]
    assert sample(model, [1], 40, generator=torch.Generator().manual_seed(7), stop_id=99) == full
    assert sample(model, [1], 0) == []


@pytest.mark.parametrize("cell_cls", [RNNCell, LSTMCell, GRUCell])
def test_hidden_gradient_norms_are_bptt(cell_cls):
    """Compare with autograd.grad through the sequence written out by hand."""
    torch.manual_seed(0)
    cell = cell_cls(3, 5).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    w = torch.randn(5, dtype=torch.float64)
    norms = hidden_gradient_norms(cell, x, lambda h: (h @ w).sum())
    # independent computation: differentiate w.r.t. h_t by restarting the recurrence from a leaf h_t
    for t in range(6):
        state = None
        for k in range(t + 1):
            state = cell(x[:, k], state)
        if isinstance(state, tuple):
            h_t = state[0].detach().requires_grad_(True)
            state = (h_t, state[1].detach())
        else:
            h_t = state = state.detach().requires_grad_(True)
        for k in range(t + 1, 6):
            state = cell(x[:, k], state)
        h_T = state[0] if isinstance(state, tuple) else state
        (g,) = torch.autograd.grad((h_T @ w).sum(), h_t)
        assert norms[t].item() == pytest.approx(g.norm(dim=-1).mean().item(), rel=1e-10)


def test_gradient_vs_distance_vanishes_for_the_plain_rnn():
    torch.manual_seed(0)
    model = RNNLM(LMConfig(vocab_size=20, cell="rnn", embed_dim=8, hidden_size=32))
    g = gradient_vs_distance(model, torch.randint(0, 20, (4, 31)))
    assert g.shape == (30,)
    assert g[0] > 0 and g[29] < 1e-3 * g[0]  # 29 steps back, three orders of magnitude smaller
    two_layers = RNNLM(LMConfig(vocab_size=20, cell="rnn", num_layers=2))
    with pytest.raises(ValueError, match="1-layer"):
        gradient_vs_distance(two_layers, torch.randint(0, 20, (4, 31)))


@pytest.mark.parametrize("temperature", [float("nan"), float("inf"), -0.5, "hot"])
def test_bad_temperature_is_refused(temperature):
    """A NaN temperature used to reach torch.multinomial (an obscure RuntimeError), -inf/inf a NaN
    distribution; 0 stays greedy decoding."""
    model = RNNLM(LMConfig(vocab_size=9, cell="gru", embed_dim=4, hidden_size=8))
    with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0.*got"):
        sample(model, [1, 2], 5, temperature=temperature)
    with pytest.raises(ValueError, match=r"temperature.*got"):
        temperature_probs(torch.zeros(3), temperature)


@pytest.mark.parametrize("field,value", [("vocab_size", 0), ("hidden_size", -3), ("embed_dim", 2.5),
                                         ("num_layers", 0), ("dropout", 1.0), ("cell", "transformer")])
def test_bad_config_is_refused(field, value):
    """LMConfig(vocab_size=0) used to build a model with an empty vocabulary without a word."""
    kwargs = {"vocab_size": 10, field: value}
    with pytest.raises(ValueError, match=rf"LMConfig\.{field} must .*got {value!r}"):
        LMConfig(**kwargs)


class _NoFloat64(torch.utils._python_dispatch.TorchDispatchMode):
    """Raises on every float64 result, as Apple's MPS does (it has no float64)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.dtype == torch.float64:
                raise TypeError(f"{func} made a float64 tensor (the device has no float64)")
        return out


def test_a_device_without_float64_gets_float32(monkeypatch):
    """On MPS the perplexities and the sampling probabilities are computed in float32: faked on the
    CPU by declaring the CPU a device without float64, under a mode that raises on any float64
    tensor. The values agree with the float64 ones to float32's precision."""
    from neuraltext.rnn import lm

    assert lm._wide_float(torch.device("mps")) == torch.float32
    assert lm._wide_float("cpu") == lm._wide_float("cuda:0") == torch.float64
    torch.manual_seed(0)
    model = RNNLM(LMConfig(vocab_size=11, cell="gru", embed_dim=4, hidden_size=8))
    batches = LMBatches(torch.randint(0, 11, (60,)), batch_size=3, seq_len=5, shuffle=False)
    x, y = next(iter(batches))
    logits = model(x)[0].detach()
    wide = evaluate_perplexity(model, batches), perplexity(logits, y).item()
    greedy = sample(model, [1, 2], 12, temperature=0)
    monkeypatch.setattr(lm, "_NO_FLOAT64", {"cpu"})
    with _NoFloat64():
        narrow = evaluate_perplexity(model, batches), perplexity(logits, y).item()
        assert sample(model, [1, 2], 12, temperature=0) == greedy
        assert len(sample(model, [1, 2], 12, temperature=1.0, generator=torch.Generator().manual_seed(0))) == 12
    assert narrow == pytest.approx(wide, rel=1e-5)
