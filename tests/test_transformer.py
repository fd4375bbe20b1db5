"""neuraltext.transformer.model against torch.nn.TransformerEncoderLayer / TransformerDecoderLayer /
TransformerEncoder on copied weights; positional encoding against the course's formula; greedy
decoding on a task a tiny model learns in seconds."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuraltext.transformer import causal_mask, padding_mask, set_attention_backend
from neuraltext.transformer import (DecoderBlock, EncoderBlock, LearnedPositionalEncoding,
                                    SinusoidalPositionalEncoding, Transformer, TransformerConfig,
                                    from_torch_layer, greedy_decode, sinusoidal_positional_encoding,
                                    transformer_loss)
from neuraltext.seq2seq import translate

TOL = dict(atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------ positional encoding
def test_sinusoidal_encoding_is_the_course_formula():
    max_len, d = 50, 16
    pe = sinusoidal_positional_encoding(max_len, d)
    assert pe.shape == (max_len, d)
    for pos in range(max_len):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert pe[0].tolist() == [0.0, 1.0] * (d // 2)  # position 0: sin 0 = 0, cos 0 = 1


def test_positional_modules_add_to_the_input_and_check_length():
    x = torch.zeros(2, 10, 8)
    torch.testing.assert_close(SinusoidalPositionalEncoding(8, 20)(x)[0], sinusoidal_positional_encoding(10, 8))
    learned = LearnedPositionalEncoding(8, 20)
    torch.testing.assert_close(learned(x)[1], learned.embedding.weight[:10])
    with pytest.raises(ValueError, match="length 30 is longer than.*max_len=20"):
        SinusoidalPositionalEncoding(8, 20)(torch.zeros(1, 30, 8))
    with pytest.raises(ValueError, match="must be even"):
        sinusoidal_positional_encoding(10, 7)


# ----------------------------------------------------------------------- blocks vs torch.nn layers
def _copy_mha(ours, theirs):
    theirs.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight]))
    theirs.in_proj_bias.copy_(torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias]))
    theirs.out_proj.weight.copy_(ours.W_o.weight)
    theirs.out_proj.bias.copy_(ours.W_o.bias)


def _copy_common(ours, theirs):
    theirs.linear1.weight.copy_(ours.ffn.W_1.weight)
    theirs.linear1.bias.copy_(ours.ffn.W_1.bias)
    theirs.linear2.weight.copy_(ours.ffn.W_2.weight)
    theirs.linear2.bias.copy_(ours.ffn.W_2.bias)
    names = ("norm1", "norm2", "norm3") if hasattr(theirs, "norm3") else ("norm1", "norm2")
    for name in names:
        getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())


def _randomise(module):
    """Move every parameter away from its init (layer norms start at 1 / 0, which hides mistakes)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))


def _cfg(norm_first, activation):
    return TransformerConfig(d_model=16, n_heads=4, d_ff=32, dropout=0.0, activation=activation,
                             norm_first=norm_first, norm_eps=1e-6)


@pytest.mark.parametrize("backend", ["fused", "readable"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_equals_torch_encoder_layer(norm_first, activation, backend, device):
    cfg = _cfg(norm_first, activation)
    cfg.attention_backend = backend
    ours = EncoderBlock(cfg)
    _randomise(ours)
    theirs = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation=activation, layer_norm_eps=1e-6,
                                        batch_first=True, norm_first=norm_first)
    with torch.no_grad():
        _copy_mha(ours.self_attn, theirs.self_attn)
        _copy_common(ours, theirs)
    ours.eval().to(device), theirs.eval().to(device)
    x = torch.randn(3, 7, 16, device=device)
    pad = padding_mask(torch.tensor([7, 5, 2]), 7).to(device)
    torch.testing.assert_close(ours(x, key_padding_mask=pad), theirs(x, src_key_padding_mask=pad), **TOL)
    # the GPT use: a causal block
    torch.testing.assert_close(ours(x, is_causal=True), theirs(x, src_mask=causal_mask(7, device=device)), **TOL)


@pytest.mark.parametrize("backend", ["fused", "readable"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_equals_torch_decoder_layer(norm_first, activation, backend, device):
    cfg = _cfg(norm_first, activation)
    cfg.attention_backend = backend
    ours = DecoderBlock(cfg)
    _randomise(ours)
    theirs = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, activation=activation, layer_norm_eps=1e-6,
                                        batch_first=True, norm_first=norm_first)
    with torch.no_grad():
        _copy_mha(ours.self_attn, theirs.self_attn)
        _copy_mha(ours.cross_attn, theirs.multihead_attn)
        _copy_common(ours, theirs)
    ours.eval().to(device), theirs.eval().to(device)
    y, memory = torch.randn(2, 6, 16, device=device), torch.randn(2, 9, 16, device=device)
    tgt_pad = padding_mask(torch.tensor([6, 4]), 6).to(device)
    mem_pad = padding_mask(torch.tensor([9, 3]), 9).to(device)
    out = ours(y, memory, tgt_padding_mask=tgt_pad, memory_padding_mask=mem_pad, is_causal=True)
    ref = theirs(y, memory, tgt_mask=causal_mask(6, device=device), tgt_key_padding_mask=tgt_pad,
                 memory_key_padding_mask=mem_pad)
    torch.testing.assert_close(out, ref, **TOL)


def test_encoder_stack_equals_torch_encoder_with_gradients():
    cfg = TransformerConfig(d_model=16, n_heads=2, d_ff=24, dropout=0.0, src_vocab_size=11, tgt_vocab_size=11,
                            n_encoder_layers=3, n_decoder_layers=1)
    model = Transformer(cfg)
    _randomise(model)
    layer = nn.TransformerEncoderLayer(16, 2, 24, dropout=0.0, batch_first=True)
    ref = nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)
    with torch.no_grad():
        for ours, theirs in zip(model.encoder, ref.layers):
            _copy_mha(ours.self_attn, theirs.self_attn)
            _copy_common(ours, theirs)
    src = torch.tensor([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 2, 1]])
    x = model.src_pos(model.src_embed(src) * 4.0)  # sqrt(16) = 4
    out = model.encode(src)
    expected = ref(x, src_key_padding_mask=src == 0)
    torch.testing.assert_close(out, expected, **TOL)
    out.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(model.encoder[0].ffn.W_1.weight.grad, ref.layers[0].linear1.weight.grad, **TOL)


def _copy_into_torch_transformer(model: Transformer, ref: nn.Transformer) -> None:
    with torch.no_grad():
        for ours, theirs in zip(model.encoder, ref.encoder.layers):
            _copy_mha(ours.self_attn, theirs.self_attn)
            _copy_common(ours, theirs)
        for ours, theirs in zip(model.decoder, ref.decoder.layers):
            _copy_mha(ours.self_attn, theirs.self_attn)
            _copy_mha(ours.cross_attn, theirs.multihead_attn)
            _copy_common(ours, theirs)
        if model.cfg.norm_first:
            ref.encoder.norm.load_state_dict(model.encoder_norm.state_dict())
            ref.decoder.norm.load_state_dict(model.decoder_norm.state_dict())


def _mha_grads(ours, theirs):
    yield torch.cat([ours.W_q.weight.grad, ours.W_k.weight.grad, ours.W_v.weight.grad]), theirs.in_proj_weight.grad
    yield torch.cat([ours.W_q.bias.grad, ours.W_k.bias.grad, ours.W_v.bias.grad]), theirs.in_proj_bias.grad
    yield ours.W_o.weight.grad, theirs.out_proj.weight.grad
    yield ours.W_o.bias.grad, theirs.out_proj.bias.grad


def _block_grads(ours, theirs):
    """(our gradient, torch's gradient) for every parameter of a block, in torch's layout."""
    yield from _mha_grads(ours.self_attn, theirs.self_attn)
    if hasattr(theirs, "multihead_attn"):
        yield from _mha_grads(ours.cross_attn, theirs.multihead_attn)
    for a, b in ((ours.ffn.W_1, theirs.linear1), (ours.ffn.W_2, theirs.linear2)):
        yield a.weight.grad, b.weight.grad
        yield a.bias.grad, b.bias.grad
    for name in ("norm1", "norm2", "norm3") if hasattr(theirs, "norm3") else ("norm1", "norm2"):
        yield getattr(ours, name).weight.grad, getattr(theirs, name).weight.grad
        yield getattr(ours, name).bias.grad, getattr(theirs, name).bias.grad


@pytest.mark.parametrize("backend", ["fused", "readable"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_full_transformer_equals_torch_transformer_with_gradients(norm_first, backend, device):
    """The whole encoder-decoder (both stacks, masks, final norms) against torch.nn.Transformer on
    copied weights: logits and the gradient of every parameter. The embeddings, * sqrt(d), the
    course's positional encoding and the output layer are applied around torch's model by hand.
    (torch.nn.Transformer ends both stacks with a layer norm even when post-norm; the paper's
    post-norm model, like ours, has none there, so those two norms are removed from the reference.)"""
    V_src, V_tgt, d = 11, 9, 16
    cfg = TransformerConfig(d_model=d, n_heads=4, d_ff=24, dropout=0.0, activation="gelu", norm_first=norm_first,
                            src_vocab_size=V_src, tgt_vocab_size=V_tgt, n_encoder_layers=2, n_decoder_layers=3,
                            attention_backend=backend)
    model = Transformer(cfg)
    _randomise(model)
    ref = nn.Transformer(d, 4, num_encoder_layers=2, num_decoder_layers=3, dim_feedforward=24, dropout=0.0,
                         activation="gelu", batch_first=True, norm_first=norm_first)
    if not norm_first:
        ref.encoder.norm = ref.decoder.norm = None
    _copy_into_torch_transformer(model, ref)
    src_embed = nn.Embedding.from_pretrained(model.src_embed.weight.detach().clone(), freeze=False)
    tgt_embed = nn.Embedding.from_pretrained(model.tgt_embed.weight.detach().clone(), freeze=False)
    head = nn.Linear(d, V_tgt)
    head.load_state_dict(model.lm_head.state_dict())
    model.to(device), ref.to(device), src_embed.to(device), tgt_embed.to(device), head.to(device)

    src = torch.tensor([[3, 4, 5, 6, 7, 0], [8, 9, 10, 0, 0, 0]], device=device)
    tgt = torch.tensor([[1, 5, 6, 7, 8], [1, 3, 4, 0, 0]], device=device)
    pe = sinusoidal_positional_encoding(16, d).to(device)
    x = src_embed(src) * math.sqrt(d) + pe[: src.shape[1]]
    y = tgt_embed(tgt) * math.sqrt(d) + pe[: tgt.shape[1]]
    hidden = ref(x, y, tgt_mask=causal_mask(tgt.shape[1], device=device), src_key_padding_mask=src == 0,
                 tgt_key_padding_mask=tgt == 0, memory_key_padding_mask=src == 0)
    expected = head(hidden)  # (B, T, V_tgt)
    logits = model(src, tgt)
    torch.testing.assert_close(logits, expected, **TOL)

    weight = torch.randn(logits.shape, device=device)
    (logits * weight).sum().backward()
    (expected * weight).sum().backward()
    pairs = [(model.src_embed.weight.grad, src_embed.weight.grad), (model.tgt_embed.weight.grad, tgt_embed.weight.grad),
             (model.lm_head.weight.grad, head.weight.grad), (model.lm_head.bias.grad, head.bias.grad)]
    for ours, theirs in zip(model.encoder, ref.encoder.layers):
        pairs += list(_block_grads(ours, theirs))
    for ours, theirs in zip(model.decoder, ref.decoder.layers):
        pairs += list(_block_grads(ours, theirs))
    if norm_first:
        for ours, theirs in ((model.encoder_norm, ref.encoder.norm), (model.decoder_norm, ref.decoder.norm)):
            pairs += [(ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)]
    # the padding rows of the embeddings: ours is a padding_idx (never trained), from_pretrained's is not
    pairs[0] = (pairs[0][0][1:], pairs[0][1][1:])
    pairs[1] = (pairs[1][0][1:], pairs[1][1][1:])
    assert len(pairs) == 4 + 2 * 12 + 3 * 18 + (4 if norm_first else 0)
    for i, (ours, theirs) in enumerate(pairs):
        assert ours is not None and theirs is not None, i
        torch.testing.assert_close(ours, theirs, **TOL, msg=lambda m, i=i: f"gradient pair {i}: {m}")


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_stack_equals_torch_decoder(norm_first, device):
    """Our decoder stack (Transformer.decode without embeddings) against nn.TransformerDecoder on the
    same memory and masks, values and the gradient with respect to the memory."""
    cfg = TransformerConfig(d_model=16, n_heads=2, d_ff=24, dropout=0.0, src_vocab_size=11, tgt_vocab_size=11,
                            n_encoder_layers=1, n_decoder_layers=3, norm_first=norm_first)
    model = Transformer(cfg)
    _randomise(model)
    layer = nn.TransformerDecoderLayer(16, 2, 24, dropout=0.0, batch_first=True, norm_first=norm_first)
    ref = nn.TransformerDecoder(layer, num_layers=3, norm=nn.LayerNorm(16) if norm_first else None)
    with torch.no_grad():
        for ours, theirs in zip(model.decoder, ref.layers):
            _copy_mha(ours.self_attn, theirs.self_attn)
            _copy_mha(ours.cross_attn, theirs.multihead_attn)
            _copy_common(ours, theirs)
        if norm_first:
            ref.norm.load_state_dict(model.decoder_norm.state_dict())
    model.to(device), ref.to(device)
    src = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]], device=device)
    tgt = torch.tensor([[1, 5, 6, 0, 0], [1, 2, 3, 4, 5]], device=device)
    memory = torch.randn(2, 4, 16, device=device, requires_grad=True)
    logits = model.decode(tgt, memory, src)
    y = model.tgt_pos(model.tgt_embed(tgt) * 4.0)  # sqrt(16) = 4
    hidden = ref(y, memory, tgt_mask=causal_mask(5, device=device), tgt_key_padding_mask=tgt == 0,
                 memory_key_padding_mask=src == 0)
    expected = model.lm_head(hidden)
    torch.testing.assert_close(logits, expected, **TOL)
    (g_ours,) = torch.autograd.grad(logits.pow(2).sum(), memory)
    (g_ref,) = torch.autograd.grad(expected.pow(2).sum(), memory)
    torch.testing.assert_close(g_ours, g_ref, **TOL)


# ---------------------------------------------------------------------------------- full model
def test_decoder_is_causal_and_shapes_follow_the_comments():
    cfg = TransformerConfig(d_model=16, n_heads=2, d_ff=32, dropout=0.0, src_vocab_size=13, tgt_vocab_size=9)
    model = Transformer(cfg).eval()
    src, tgt = torch.randint(1, 13, (2, 5)), torch.randint(1, 9, (2, 4))
    logits = model(src, tgt)
    assert logits.shape == (2, 4, 9)
    tgt2 = tgt.clone()
    tgt2[:, 3] = (tgt[:, 3] % 8) + 1  # change the last target token only
    torch.testing.assert_close(model(src, tgt2)[:, :3], logits[:, :3])  # earlier positions do not see it
    maps = model.attention_maps(src, tgt)
    assert [w.shape for w in maps["encoder"]] == [(2, 2, 5, 5)] * 2
    assert [w.shape for w in maps["decoder_cross"]] == [(2, 2, 4, 5)] * 2
    assert set_attention_backend(model, "readable") == 2 + 2 * 2  # encoder self + decoder self and cross
    torch.testing.assert_close(model(src, tgt), logits, **TOL)  # both paths give the same logits
    with pytest.raises(ValueError, match="backend must be one of"):
        set_attention_backend(model, "flash")


@pytest.mark.parametrize("norm_first", [False, True])
def test_all_padding_source_gives_finite_equal_outputs_in_both_paths(norm_first):
    """A source that is nothing but padding leaves every query with no key (encoder self-attention
    and decoder cross-attention): both attention paths give zeros there (see neuraltext.transformer.multihead),
    so the logits and gradients are finite and the same; the other batch element is unaffected."""
    cfg = TransformerConfig(d_model=16, n_heads=2, d_ff=24, dropout=0.0, src_vocab_size=11, tgt_vocab_size=9,
                            norm_first=norm_first)
    model = Transformer(cfg)
    _randomise(model)
    src = torch.tensor([[3, 4, 5, 0], [0, 0, 0, 0]])  # batch element 1: all padding
    tgt = torch.tensor([[1, 5, 6], [1, 7, 8]])
    results = []
    for backend in ("readable", "fused"):
        set_attention_backend(model, backend)
        model.zero_grad()
        logits = model(src, tgt)
        logits.pow(2).mean().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        assert torch.isfinite(logits).all() and all(torch.isfinite(g).all() for g in grads)
        results.append((logits.detach(), grads))
    torch.testing.assert_close(results[0][0], results[1][0], **TOL)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, **TOL)
    alone = model(src[:1], tgt[:1])
    torch.testing.assert_close(results[1][0][:1], alone.detach(), **TOL)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="not a multiple of n_heads"):
        TransformerConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="n_heads must be a positive integer.*got 0"):
        TransformerConfig(d_model=16, n_heads=0)
    for field, bad, allowed in (("d_ff", 0, "a positive integer"), ("max_len", -1, "a positive integer"),
                                ("n_encoder_layers", -1, "a non-negative integer"),
                                ("dropout", 1.0, r"a probability in \[0, 1\)"),
                                ("dropout", float("nan"), r"a probability in \[0, 1\)"),
                                ("norm_eps", 0.0, "positive")):
        with pytest.raises(ValueError, match=rf"{field} must be {allowed}, got {bad}"):
            TransformerConfig(**{field: bad})
    with pytest.raises(ValueError, match="activation must be one of"):
        TransformerConfig(activation="swish")
    with pytest.raises(ValueError, match="src_vocab_size and tgt_vocab_size must be set.*got 0 and 0"):
        Transformer(TransformerConfig())
    model = Transformer(TransformerConfig(d_model=8, n_heads=2, d_ff=8, src_vocab_size=5, tgt_vocab_size=5))
    with pytest.raises(ValueError, match=r"src has ids outside \[0, 5\)"):
        model(torch.tensor([[1, 7]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match=r"src must be integer token ids of shape \(B, length\), got \(3,\)"):
        model(torch.tensor([1, 2, 3]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match=r"src \(1, 2\) and tgt \(2, 1\)"):
        model(torch.tensor([[1, 2]]), torch.tensor([[1], [2]]))


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread (and far faster than on two busy shared cores)."""
    from neuraltext.seq2seq import cpu_threads

    with cpu_threads(1):
        yield


def test_greedy_decoding_learns_to_reverse_sequences(one_thread):
    """A tiny transformer learns to reverse 4 symbols in a few hundred steps; greedy decoding then
    reproduces the reversed sequence (and matches decoding by hand with the full model)."""
    PAD, BOS, EOS, V, n = 0, 1, 2, 9, 4
    cfg = TransformerConfig(d_model=32, n_heads=4, d_ff=64, dropout=0.0, src_vocab_size=V, tgt_vocab_size=V,
                            n_encoder_layers=1, n_decoder_layers=1, max_len=16)
    model = Transformer(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(600):
        src = torch.randint(3, V, (64, n))
        tgt = torch.cat([torch.full((64, 1), BOS), src.flip(1), torch.full((64, 1), EOS)], dim=1)
        logits = model(src, tgt[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), tgt[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    src = torch.randint(3, V, (100, n))
    out = greedy_decode(model, src, BOS, EOS, max_len=n + 3)
    assert out.shape[1] <= n + 3
    exact = (out[:, :n] == src.flip(1)).all(1) & (out[:, n] == EOS)
    assert exact.float().mean() >= 0.9, f"only {exact.float().mean():.2f} reversed exactly"
    assert (out[:, n + 1:] == PAD).all()  # nothing but padding after <eos>
    # greedy by hand for the first example, with the full model
    ys = torch.tensor([[BOS]])
    for _ in range(n + 1):
        ys = torch.cat([ys, model(src[:1], ys)[:, -1:].argmax(-1)], dim=1)
    assert ys[0, 1:].tolist() == out[0, : n + 1].tolist()


def test_loss_and_translate_on_character_batches():
    """transformer_loss = cross-entropy over non-pad targets; translate = greedy_decode + decode."""
    from neuraltext.data.dates import CharVocab

    vocab = CharVocab("0123456789-")
    cfg = TransformerConfig(d_model=16, n_heads=2, d_ff=16, dropout=0.0, src_vocab_size=len(vocab),
                            tgt_vocab_size=len(vocab), n_encoder_layers=1, n_decoder_layers=1)
    model = Transformer(cfg).eval()
    src, lengths = vocab.batch(["12-3", "4"], eos=True)
    tgt, _ = vocab.batch(["3-21", "4"], bos=True, eos=True)
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    logits = model(src, tgt_in)
    keep = tgt_out != vocab.pad_id
    expected = nn.functional.cross_entropy(logits[keep], tgt_out[keep])
    torch.testing.assert_close(transformer_loss(model, (src, lengths, tgt_in, tgt_out)), expected)
    preds = translate(model, ["12-3", "4"], vocab, vocab, max_len=6)
    ids = greedy_decode(model, src, vocab.bos_id, vocab.eos_id, max_len=6)
    assert preds == [vocab.decode(row) for row in ids.tolist()]


def test_bad_decoding_arguments_and_pad_id_are_named():
    cfg = TransformerConfig(d_model=8, n_heads=2, d_ff=8, src_vocab_size=7, tgt_vocab_size=5)
    model = Transformer(cfg)
    src = torch.tensor([[3, 4]])
    for bad in (0, -3):
        with pytest.raises(ValueError, match=rf"max_len must be a positive integer.*got {bad}"):
            greedy_decode(model, src, 1, 2, max_len=bad)
    with pytest.raises(ValueError, match=r"eos_id must be a token id in \[0, 5\).*got 5"):
        greedy_decode(model, src, 1, 5, max_len=3)
    for bad in (5, -1):
        with pytest.raises(ValueError, match=rf"pad_id must be a token id in \[0, 5\).*got {bad}"):
            Transformer(TransformerConfig(d_model=8, n_heads=2, d_ff=8, src_vocab_size=7, tgt_vocab_size=5,
                                          pad_id=bad))


def test_greedy_decode_same_result_whatever_the_sync_interval():
    import neuraltext.transformer.model as tr

    cfg = TransformerConfig(d_model=16, n_heads=2, d_ff=16, dropout=0.0, src_vocab_size=7, tgt_vocab_size=5,
                            n_encoder_layers=1, n_decoder_layers=1)
    model = Transformer(cfg)
    with torch.no_grad():
        model.lm_head.bias[2] += 2.0  # <eos> likely: sequences end at different steps
    src = torch.randint(1, 7, (6, 4))
    outs = {}
    for every in (1, 8):
        tr.SYNC_EVERY = every
        try:
            outs[every] = greedy_decode(model, src, 1, 2, max_len=10)
        finally:
            tr.SYNC_EVERY = 8
    assert torch.equal(outs[1], outs[8])


def test_train_with_amp_runs_a_transformer_step_in_bfloat16_on_the_cpu():
    """train(amp=True) on the CPU: the forward pass runs under bfloat16 autocast, the weights stay
    float32 and change, the losses are finite."""
    from neuraltext.training import train

    cfg = TransformerConfig(d_model=16, n_heads=2, d_ff=32, dropout=0.0, src_vocab_size=9, tgt_vocab_size=9,
                            n_encoder_layers=1, n_decoder_layers=1)
    model = Transformer(cfg)
    src, tgt = torch.randint(3, 9, (4, 5)), torch.randint(3, 9, (4, 6))
    batch = (src, torch.full((4,), 5), tgt[:, :-1], tgt[:, 1:])
    seen = []

    def loss_fn(m, b):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        logits = m(b[0], b[2])
        seen.append(logits.dtype)
        return transformer_loss(m, b)

    before = [p.detach().clone() for p in model.parameters()]
    history = train(model, loss_fn, [batch, batch], amp=True, device="cpu", lr=1e-2)
    assert seen[0] == (True, torch.bfloat16) and seen[1] == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history.steps == 2 and all(math.isfinite(v) for v in history.loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_from_torch_layer_builds_an_equal_block(norm_first, activation):
    enc = nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first, layer_norm_eps=1e-6)
    dec = nn.TransformerDecoderLayer(16, 4, 24, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first, layer_norm_eps=1e-6)
    _randomise(enc), _randomise(dec)
    ours_enc, ours_dec = from_torch_layer(enc).eval(), from_torch_layer(dec).eval()
    assert isinstance(ours_enc, EncoderBlock) and isinstance(ours_dec, DecoderBlock)
    assert ours_enc.norm1.eps == 1e-6 and ours_enc.norm_first == norm_first
    x, m = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    torch.testing.assert_close(ours_enc(x), enc.eval()(x), **TOL)
    torch.testing.assert_close(ours_dec(x, m), dec.eval()(x, m, tgt_mask=causal_mask(5)), **TOL)
    with pytest.raises(ValueError, match="batch_first=True"):
        from_torch_layer(nn.TransformerEncoderLayer(16, 4, 24))
