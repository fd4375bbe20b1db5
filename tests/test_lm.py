"""neuraltext.lm: batches, perplexity and its two bounds, sampling, BPTT gradient norms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neuraltext.lm import (
    LMBatches, LMConfig, RNNLM, evaluate_perplexity, gradient_vs_distance, hidden_gradient_norms, lm_loss,
    lm_windows, perplexity, perplexity_from_log_probs, sample, temperature_probs,
)
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


def test_evaluate_perplexity_pools_tokens():
    model = RNNLM(LMConfig(vocab_size=13, cell="gru", embed_dim=8, hidden_size=16))
    ids = torch.randint(0, 13, (200,))
    batches = LMBatches(ids, batch_size=5, seq_len=9, shuffle=False)
    total, m = 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            logits, _ = model(x)
            total += F.cross_entropy(logits.reshape(-1, 13), y.reshape(-1), reduction="sum").item()
            m += y.numel()
    assert evaluate_perplexity(model, batches) == pytest.approx(math.exp(total / m), rel=1e-6)
    # an untrained model is near the uniform bound
    assert 0.5 * 13 < evaluate_perplexity(model, batches) < 2 * 13


def test_temperature():
    logits = torch.tensor([2.0, 1.0, 0.0])
    assert torch.allclose(temperature_probs(logits, 1.0), torch.softmax(logits, -1))
    assert torch.equal(temperature_probs(logits, 0), torch.tensor([1.0, 0.0, 0.0]))
    cold, hot = temperature_probs(logits, 0.5), temperature_probs(logits, 2.0)
    assert cold[0] > torch.softmax(logits, -1)[0] > hot[0]  # T < 1 sharpens, T > 1 flattens
    assert torch.allclose(temperature_probs(logits, 1e4), torch.full((3,), 1 / 3), atol=1e-3)


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
