"""neuraltext.seq2seq.model: attention scores against their references, padding masks, decoding
(greedy = beam of width 1, beam search = exhaustive search when the beam holds everything) and a
trained model on the date task."""

from __future__ import annotations

import itertools
import time

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from neuraltext.data import date_splits, exact_match, exact_match_by, source_vocab, target_vocab
from neuraltext.seq2seq import (AdditiveAttention, DotAttention, GeneralAttention, Seq2Seq, Seq2SeqConfig,
                                make_batches, seq2seq_loss, train_seq2seq, translate)

KINDS = ["additive", "dot", "general"]


def _attention(kind: str, D: int = 8):
    return {"additive": lambda: AdditiveAttention(D, D, 5), "dot": DotAttention,
            "general": lambda: GeneralAttention(D, D)}[kind]()


def _padded(B=3, S=6, D=8, lengths=(6, 4, 1)):
    h_t = torch.randn(B, D)
    h_bar = torch.randn(B, S, D)
    lengths = torch.tensor(lengths)
    mask = torch.arange(S)[None, :] < lengths[:, None]
    return h_t, h_bar, mask


# --- attention ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_padding_gets_zero_weight_and_weights_sum_to_one(kind):
    att = _attention(kind)
    h_t, h_bar, mask = _padded()
    c_t, alpha = att(h_t, att.project_keys(h_bar), h_bar, mask)
    assert alpha.shape == mask.shape and c_t.shape == (3, 8)
    assert torch.all(alpha[~mask] == 0.0)  # exactly zero, not just small
    assert torch.all(alpha[mask] > 0.0)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3), rtol=0, atol=1e-6)
    # whatever sits in the padded positions cannot change the context
    garbage = h_bar.clone()
    garbage[~mask] = 1e3 * torch.randn(int((~mask).sum()), 8)
    c2, alpha2 = att(h_t, att.project_keys(garbage), garbage, mask)
    torch.testing.assert_close(c2, c_t, rtol=0, atol=1e-6)
    torch.testing.assert_close(alpha2, alpha, rtol=0, atol=1e-7)


@pytest.mark.parametrize("kind", ["dot", "general"])
def test_luong_scores_match_scaled_dot_product_attention(kind, device):
    """Luong's dot score is softmax(h_t^T h̄) h̄: PyTorch's SDPA with scale 1 on the same tensors;
    the general score is the same on W_a h̄_j as keys."""
    att = _attention(kind).to(device)
    h_t, h_bar, mask = (t.to(device) for t in _padded())
    c_t, alpha = att(h_t, att.project_keys(h_bar), h_bar, mask)
    keys = h_bar if kind == "dot" else att.W_a(h_bar)
    ref = F.scaled_dot_product_attention(h_t[:, None, :], keys, h_bar, attn_mask=mask[:, None, :], scale=1.0)
    torch.testing.assert_close(c_t, ref.squeeze(1), rtol=1e-5, atol=1e-5)
    ref_alpha = torch.softmax((h_t[:, None, :] @ keys.transpose(1, 2)).squeeze(1).masked_fill(~mask, -torch.inf), -1)
    torch.testing.assert_close(alpha, ref_alpha, rtol=1e-5, atol=1e-6)


def test_additive_score_is_bahdanau_formula():
    att = _attention("additive")
    h_t, h_bar, mask = _padded()
    _, alpha = att(h_t, att.project_keys(h_bar), h_bar, mask)
    W1, W2, b2, v = att.W_1.weight, att.W_2.weight, att.W_2.bias, att.v_a.weight[0]
    scores = torch.empty(3, 6)
    for b in range(3):
        for j in range(6):  # v_a^T tanh(W_1 h_t + W_2 h̄_j), one pair at a time
            scores[b, j] = v @ torch.tanh(W1 @ h_t[b] + W2 @ h_bar[b, j] + b2)
    ref = torch.softmax(scores.masked_fill(~mask, -torch.inf), dim=-1)
    torch.testing.assert_close(alpha, ref, rtol=1e-5, atol=1e-6)


def test_additive_attention_gradients_match_the_formula_by_hand():
    """Gradients of the additive attention (every parameter, the query and the encoder states)
    against autograd through the pair-by-pair formula v_a^T tanh(W_1 h_t + W_2 h̄_j) written with
    plain tensors: an independent formulation of eqs. (4)-(5)."""
    att = _attention("additive")
    h_t, h_bar, mask = _padded()
    h_t.requires_grad_(True), h_bar.requires_grad_(True)
    c_t, alpha = att(h_t, att.project_keys(h_bar), h_bar, mask)
    w_c, w_a = torch.randn(c_t.shape), torch.randn(alpha.shape)
    ours = torch.autograd.grad((c_t * w_c).sum() + (alpha * w_a).sum(),
                               [h_t, h_bar, att.W_1.weight, att.W_2.weight, att.W_2.bias, att.v_a.weight])

    W1, W2, b2, v = (t.detach().clone().requires_grad_(True)
                     for t in (att.W_1.weight, att.W_2.weight, att.W_2.bias, att.v_a.weight[0]))
    q, hb = h_t.detach().clone().requires_grad_(True), h_bar.detach().clone().requires_grad_(True)
    scores = torch.stack([torch.stack([v @ torch.tanh(W1 @ q[b] + W2 @ hb[b, j] + b2) for j in range(6)])
                          for b in range(3)])
    a = torch.softmax(scores.masked_fill(~mask, -torch.inf), dim=-1)
    c = torch.stack([sum(a[b, j] * hb[b, j] for j in range(6)) for b in range(3)])
    ref = torch.autograd.grad((c * w_c).sum() + (a * w_a).sum(), [q, hb, W1, W2, b2, v])
    for g, r in zip(ours, ref):
        torch.testing.assert_close(g.reshape(r.shape), r, rtol=1e-5, atol=1e-6)
    assert torch.all(ours[1][~mask] == w_c.new_zeros(()))  # padded encoder states get no gradient


def test_encoder_input_gradients_match_torch_gru():
    """The bidirectional encoder's gradient with respect to its input embeddings equals torch.nn.GRU's
    on packed sequences (padding gets none)."""
    model = _tiny()
    src, lengths = _src_batch()
    x = model.encoder.embed(src).detach().requires_grad_(True)
    h_bar, _ = model.encoder.rnn(x, lengths=lengths)
    x_ref = x.detach().clone().requires_grad_(True)
    packed = pack_padded_sequence(x_ref, lengths, batch_first=True, enforce_sorted=False)
    out, _ = model.encoder.rnn.to_torch()(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
    w = torch.randn(h_bar.shape)
    (g,) = torch.autograd.grad((h_bar * w).sum(), x)
    (g_ref,) = torch.autograd.grad((out * w).sum(), x_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attention,cell", [("additive", "gru"), ("dot", "gru"), ("general", "lstm"),
                                            ("none", "gru")])
def test_model_gradient_equals_finite_differences_in_float64(attention, cell):
    """The loss's gradient with respect to every parameter, in float64, against central finite
    differences along random directions: (L(θ + εu) - L(θ - εu)) / 2ε = ∇L · u + O(ε²)."""
    model = _tiny(attention, cell).double()
    src, lengths = _src_batch()
    tgt_in = torch.randint(3, 15, (4, 5))
    tgt_in[:, 0] = 1
    tgt_out = torch.randint(2, 15, (4, 5))
    tgt_out[3, 3:] = 0  # some padding in the targets
    batch = (src, lengths, tgt_in, tgt_out)
    params = [p for p in model.parameters()]
    loss = seq2seq_loss(model, batch)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    gen = torch.Generator().manual_seed(0)
    eps = 1e-6
    for _ in range(4):
        u = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
        with torch.no_grad():
            for p, d in zip(params, u):
                p.add_(eps * d)
            plus = seq2seq_loss(model, batch)
            for p, d in zip(params, u):
                p.sub_(2 * eps * d)
            minus = seq2seq_loss(model, batch)
            for p, d in zip(params, u):
                p.add_(eps * d)
        numeric = ((plus - minus) / (2 * eps)).item()
        analytic = sum((g * d).sum() for g, d in zip(grads, u)).item()
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_dot_score_needs_equal_sizes():
    with pytest.raises(ValueError, match="same size"):
        DotAttention()(torch.randn(2, 4), torch.randn(2, 3, 5), torch.randn(2, 3, 5))
    att = _attention("additive")
    with pytest.raises(ValueError, match="mask should have shape"):
        h_t, h_bar, mask = _padded()
        att(h_t, att.project_keys(h_bar), h_bar, mask[:, :3])


# --- the model -----------------------------------------------------------------------------------

def _tiny(attention="additive", cell="gru", tgt_vocab_size=15, src_vocab_size=20):
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(src_vocab_size, tgt_vocab_size, emb_dim=6, hidden_size=5,
                                 attention=attention, attn_dim=7, cell=cell)).eval()


def _src_batch(B=4, S=7, V=20, lengths=(7, 5, 3, 1)):
    torch.manual_seed(1)
    src = torch.randint(4, V, (B, S))
    lengths = torch.tensor(lengths)
    src[torch.arange(S)[None, :] >= lengths[:, None]] = 0
    return src, lengths


def test_encoder_matches_torch_gru_on_packed_sequences(device):
    """Our bidirectional encoder (neuraltext.rnn.GRU) against torch.nn.GRU with packed sequences."""
    model = _tiny().to(device)
    src, lengths = _src_batch()
    src = src.to(device)
    h_bar, C = model.encoder(src, lengths)
    ref_rnn = model.encoder.rnn.to_torch().to(device)
    packed = pack_padded_sequence(model.encoder.embed(src), lengths, batch_first=True, enforce_sorted=False)
    out, h_n = ref_rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
    torch.testing.assert_close(h_bar, out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(C, torch.cat([h_n[0], h_n[1]], -1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", KINDS)
def test_model_attention_ignores_padding_end_to_end(attention):
    model = _tiny(attention)
    src, lengths = _src_batch()
    tgt_in = torch.randint(3, 15, (4, 5))
    tgt_in[:, 0] = 1
    logits, alpha = model(src, lengths, tgt_in)
    assert logits.shape == (4, 5, 15) and alpha.shape == (4, 5, 7)
    mask = torch.arange(7)[None, None, :] < lengths[:, None, None]
    assert torch.all(alpha.masked_select(~mask) == 0.0)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(4, 5), rtol=0, atol=1e-6)
    # each sequence gives the same outputs alone (no padding) as inside the padded batch
    for b in range(4):
        L = int(lengths[b])
        alone, a_alone = model(src[b:b + 1, :L], lengths[b:b + 1], tgt_in[b:b + 1])
        torch.testing.assert_close(alone[0], logits[b], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a_alone[0], alpha[b, :, :L], rtol=1e-5, atol=1e-6)


def test_baseline_uses_one_fixed_context():
    model = _tiny("none")
    src, lengths = _src_batch()
    logits, alpha = model(src, lengths, torch.ones(4, 3, dtype=torch.long))
    assert alpha is None and logits.shape == (4, 3, 15)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in _tiny("additive").parameters())


@pytest.mark.parametrize("attention,cell", [("additive", "gru"), ("dot", "gru"), ("general", "lstm"),
                                            ("none", "gru"), ("additive", "lstm")])
def test_beam_width_one_is_greedy(attention, cell):
    model = _tiny(attention, cell)
    src, lengths = _src_batch()
    g = model.greedy(src, lengths, max_len=6)
    b = model.beam_search(src, lengths, width=1, max_len=6)
    assert torch.equal(g.ids, b.ids)
    torch.testing.assert_close(g.logprob, b.logprob, rtol=1e-6, atol=1e-6)
    if attention == "none":
        assert g.alpha is None and b.alpha is None
    else:
        torch.testing.assert_close(g.alpha, b.alpha)


def _sequence_logprob(model, src, lengths, seq):
    """log p(seq | src) by teacher forcing: Σ_t log p(y_t | y_<t)."""
    tgt_in = torch.tensor([[model.config.bos_id, *seq[:-1]]])
    logits, _ = model(src, lengths, tgt_in)
    return torch.log_softmax(logits[0], -1)[torch.arange(len(seq)), torch.tensor(seq)].sum().item()


def test_greedy_scores_equal_teacher_forced_scores():
    model = _tiny("general")
    src, lengths = _src_batch()
    g = model.greedy(src, lengths, max_len=6)
    for b in range(4):
        seq = [t for t in g.ids[b].tolist()]
        if model.config.eos_id in seq:
            seq = seq[: seq.index(model.config.eos_id) + 1]
        lp = _sequence_logprob(model, src[b:b + 1], lengths[b:b + 1], seq)
        assert abs(lp - g.logprob[b].item()) < 1e-4


def test_beam_search_equals_exhaustive_search_when_wide_enough():
    """With a beam as wide as the number of prefixes, beam search is exact: compare with brute force."""
    V, max_len = 5, 3  # <pad> <unk> <s> </s> + 1 symbol
    model = _tiny("additive", tgt_vocab_size=V)
    EOS = model.config.eos_id
    with torch.no_grad():  # make </s> competitive so finished and unfinished hypotheses both occur
        model.decoder.W_s.bias[EOS] += 1.0
    src, lengths = _src_batch()
    beam = model.beam_search(src, lengths, width=V ** max_len, max_len=max_len)
    for b in range(4):
        best, best_seq = -float("inf"), None
        for L in range(1, max_len + 1):
            seqs = [list(seq) for seq in itertools.product(range(V), repeat=L)
                    if EOS not in seq[:-1] and (L == max_len or seq[-1] == EOS)]  # </s> ends a hypothesis
            tgt = torch.tensor(seqs)
            tgt_in = torch.cat([torch.full((len(seqs), 1), model.config.bos_id), tgt[:, :-1]], dim=1)
            logits, _ = model(src[b:b + 1].expand(len(seqs), -1), lengths[b:b + 1].expand(len(seqs)), tgt_in)
            lp = torch.log_softmax(logits, -1).gather(2, tgt[:, :, None]).squeeze(2).sum(1)  # log p(seq)
            if lp.max().item() > best:
                best, best_seq = lp.max().item(), seqs[int(lp.argmax())]
        got = beam.ids[b].tolist()[: len(best_seq)]
        assert got == best_seq, (b, got, best_seq)
        assert abs(beam.logprob[b].item() - best) < 1e-4


def test_bad_configs_and_inputs_are_named():
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2SeqConfig(10, 10, attention="luong")
    with pytest.raises(ValueError, match="cell must be"):
        Seq2SeqConfig(10, 10, cell="rnn")
    model = _tiny()
    with pytest.raises(ValueError, match=r"src should be a \(B, S\) long tensor"):
        model(torch.randn(2, 3), torch.tensor([3, 3]), torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="src_lengths should have shape"):
        model(torch.ones(2, 3, dtype=torch.long), torch.tensor([3]), torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"width \(the beam width\) must be a positive integer, got 0"):
        model.beam_search(torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 3]), width=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        make_batches([("1", "2")], source_vocab(), target_vocab(), batch_size=0)


def test_decoding_bad_lengths_and_ids_are_named():
    model = _tiny()
    src, lengths = _src_batch()
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match=rf"max_len must be a positive integer.*got {bad}"):
            model.greedy(src, lengths, max_len=bad)
        with pytest.raises(ValueError, match=rf"max_len must be a positive integer.*got {bad}"):
            model.beam_search(src, lengths, width=2, max_len=bad)
    with pytest.raises(ValueError, match=r"pad_id must be a token id in \[0, 10\).*got 10"):
        Seq2SeqConfig(20, 10, pad_id=10)
    with pytest.raises(ValueError, match=r"pad_id must be a token id in \[0, 10\).*got -1"):
        Seq2SeqConfig(20, 10, pad_id=-1)
    with pytest.raises(ValueError, match=r"eos_id must be a token id in \[0, 10\).*got 12"):
        Seq2SeqConfig(20, 10, eos_id=12)


def test_greedy_checks_the_device_every_few_steps_with_the_same_result():
    """Decoding asks whether everything has finished only every SYNC_EVERY steps; the steps after
    the last <eos> are trimmed, so the output is the one of stopping at once."""
    import neuraltext.seq2seq.model as s2s

    model = _tiny("additive", tgt_vocab_size=5)
    with torch.no_grad():
        model.decoder.W_s.bias[model.config.eos_id] += 3.0  # <eos> likely early: sequences finish at different steps
    src, lengths = _src_batch()
    results = {}
    for every in (1, 8):
        s2s.SYNC_EVERY = every
        try:
            results[every] = (model.greedy(src, lengths, max_len=10), model.beam_search(src, lengths, 3, max_len=10))
        finally:
            s2s.SYNC_EVERY = 8
    (g1, b1), (g8, b8) = results[1], results[8]
    assert g1.ids.shape[1] < 10  # it did stop early
    assert torch.equal(g1.ids, g8.ids) and torch.equal(b1.ids, b8.ids)
    torch.testing.assert_close(g1.logprob, g8.logprob)
    torch.testing.assert_close(b1.alpha, b8.alpha)


def test_cpu_threads_is_set_and_restored():
    from neuraltext.seq2seq import cpu_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with cpu_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with cpu_threads(None):
            assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="threads must be a positive integer or None, got 0"):
            with cpu_threads(0):
                pass
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_train_seq2seq_limits_threads_on_the_cpu_only():
    """On the CPU, training runs on ``threads`` threads (seen from inside the loop) and the setting is
    restored; on a GPU nothing is limited."""
    from neuraltext.seq2seq.training import _cpu_threads_for

    sv, tv = source_vocab(), target_vocab()
    model = Seq2Seq(Seq2SeqConfig(len(sv), len(tv), emb_dim=4, hidden_size=4, attn_dim=4))
    pairs = [("26/11/15", "2015-11-26"), ("mai 2001", "2001-05")] * 4
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    inside = []
    try:
        train_seq2seq(model, pairs, sv, tv, epochs=1, batch_size=4, device="cpu", threads=1,
                      evaluate=lambda m: inside.append(torch.get_num_threads()) or {})
        assert inside == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert _cpu_threads_for(torch.device("cuda"), 1) is None
    assert _cpu_threads_for(torch.device("cpu"), 1) == 1


def test_one_translate_for_both_models():
    """Chapter 5's translate also decodes chapter 6's Transformer (through its decode_greedy), which
    decodes greedily only; it equals greedy_decode on the same source."""
    import neuraltext.transformer.model as tr

    sv, tv = source_vocab(), target_vocab()
    cfg = tr.TransformerConfig(d_model=8, n_heads=2, d_ff=8, src_vocab_size=len(sv), tgt_vocab_size=len(tv),
                               n_encoder_layers=1, n_decoder_layers=1)
    model = tr.Transformer(cfg)
    assert len(translate(model, ["26/11/15"], sv, tv, max_len=3)) == 1
    src, _ = sv.batch(["26/11/15"], eos=True)
    ids = tr.greedy_decode(model.eval(), src, tv.bos_id, tv.eos_id, 3)
    assert translate(model, ["26/11/15"], sv, tv, max_len=3) == [tv.decode(ids[0].tolist())]
    with pytest.raises(ValueError, match="beam_width must be 1 and return_alpha False.*got beam_width=3"):
        translate(model, ["26/11/15"], sv, tv, beam_width=3)
    with pytest.raises(ValueError, match=r"max_len must be a positive integer.*got 0"):
        translate(_tiny(src_vocab_size=len(sv), tgt_vocab_size=len(tv)), ["1"], sv, tv, max_len=0)


@pytest.mark.parametrize("beam_width", [1, 3])
def test_translate_returns_the_attention_of_each_source(beam_width):
    """return_alpha: one (output steps incl. </s>, source characters incl. </s>) matrix per source,
    equal to the decoder's own weights for that source decoded alone."""
    sv, tv = source_vocab(), target_vocab()
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(len(sv), len(tv), emb_dim=6, hidden_size=5, attn_dim=7)).eval()
    sources = ["26/11/15", "mai 2001", "1.2.03"]
    preds, alphas = translate(model, sources, sv, tv, beam_width=beam_width, max_len=6, return_alpha=True)
    assert preds == translate(model, sources, sv, tv, beam_width=beam_width, max_len=6)
    for text, source, alpha in zip(preds, sources, alphas):
        assert alpha.shape == (min(len(text) + 1, 6), len(source) + 1)
        src, lengths = sv.batch([source], eos=True)
        out = model.greedy(src, lengths, 6) if beam_width == 1 else model.beam_search(src, lengths, beam_width, 6)
        torch.testing.assert_close(alpha, out.alpha[0, : alpha.shape[0]], rtol=1e-5, atol=1e-6)


def test_batches_shift_targets_for_teacher_forcing():
    sv, tv = source_vocab(), target_vocab()
    (src, lengths, tgt_in, tgt_out), = make_batches([("26/11/15", "2015-11-26"), ("mai 2001", "2001-05")],
                                                   sv, tv, batch_size=2, shuffle=False)
    assert tv.decode(tgt_out[0]) == "2015-11-26" and tgt_in[0, 0] == tv.bos_id
    assert torch.equal(tgt_in[0, 1:], tgt_out[0, :-1])
    assert tgt_out[1].tolist()[7] == tv.eos_id and tgt_in[1].tolist()[8:] == [0, 0, 0]  # <eos> never an input
    assert sv.decode(src[0]) == "26/11/15" and lengths.tolist() == [9, 9]


# --- a trained model ---------------------------------------------------------------------------

@pytest.mark.slow
def test_trained_model_normalises_held_out_dates():
    """At the default size, attention reaches >= 95% exact match on dates from months never seen in
    training; the fixed-context baseline, trained the same way, is reported beside it."""
    sp = date_splits(n_train=4000, n_test=1000, seed=0)
    sv, tv = source_vocab(), target_vocab()
    scores = {}
    for attention in ("additive", "none"):
        torch.manual_seed(0)
        model = Seq2Seq(Seq2SeqConfig(len(sv), len(tv), attention=attention))
        start = time.perf_counter()
        train_seq2seq(model, sp.train.pairs(), sv, tv, epochs=5, device="cpu")
        preds = translate(model, sp.test.sources, sv, tv)
        held = translate(model, sp.held_out.sources, sv, tv)
        scores[attention] = exact_match(preds, sp.test.targets)
        print(f"\n{attention}: test exact match {scores[attention]:.3f}, held-out formats "
              f"{exact_match(held, sp.held_out.targets):.3f} "
              f"{exact_match_by(held, sp.held_out.targets, sp.held_out.formats)} "
              f"({time.perf_counter() - start:.0f} s)")
    assert scores["additive"] >= 0.95
    assert scores["none"] < scores["additive"]
