"""Every config field read: BERT, GPT and Llama built from a config whose *every* field differs from its
default, against transformers' reference built from the same config (logits and gradients to 1e-5);
and dropout, whose train/eval mode matters.

Why: a test on a config that keeps a default cannot see a field that the code never reads (it gets the
default either way). Here a field silently not read (``norm_eps``, ``rms_eps``, ``d_head``, ``pad_id``,
``type_vocab_size``, ``rope_theta``, ``tie_embeddings``, ``d_ff``, ...) changes the numbers. The fields
transformers' GPT-2 cannot express (``bias=False``, another activation) are checked on their own.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from neuraltext.bert import BertConfig, BertForPreTraining, load_state_dict_from_hf, mlm_loss, nsp_loss
from neuraltext.bert.loading import _hf_name
from neuraltext.gpt import GPT, GPTConfig, Llama, LlamaConfig, config_from_hf, generate, load_hf_state_dict

transformers = pytest.importorskip("transformers")
TOL = dict(atol=1e-5, rtol=1e-5)


def _all_differ(cfg, required: dict | None = None) -> None:
    """Every field of ``cfg`` differs from the dataclass default (fields without a default: ``required``)."""
    for f in dataclasses.fields(cfg):
        default = f.default if f.default is not dataclasses.MISSING else (required or {}).get(f.name)
        assert getattr(cfg, f.name) != default, f"{type(cfg).__name__}.{f.name} keeps its default {default!r}"


def _perturb_norms(model: torch.nn.Module) -> None:
    """Layer norms and biases away from (1, 0), so that a norm read from the wrong place shows; query
    and key weights 15x larger, so that attention is sharp and positions (RoPE's theta) matter (with
    the N(0, 0.02) initialisation the scores are ~0 and attention is uniform whatever the positions)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() or name.endswith("bias") or ".ln" in name or name.startswith("ln"):
                p.add_(0.2 * torch.randn_like(p))
            if any(k in name for k in ("q_proj.weight", "k_proj.weight", "self.query.weight", "self.key.weight")):
                p.mul_(15.0)


# -------------------------------------------------------------------------------- BERT
BERT_ODD = BertConfig(vocab_size=61, hidden_size=24, n_layers=2, n_heads=3, intermediate_size=40, max_position=20,
                      type_vocab_size=3, dropout=0.25, norm_eps=1e-3, pad_id=5, attention_backend="readable")


def test_bert_every_field_differs_and_matches_transformers():
    _all_differ(BERT_ODD)
    assert BertConfig.from_hf(BERT_ODD.to_hf()) == dataclasses.replace(BERT_ODD, attention_backend="fused")
    transformers.set_seed(0)
    ref = transformers.BertForPreTraining(transformers.BertConfig(**BERT_ODD.to_hf(), attn_implementation="eager"))
    _perturb_norms(ref)
    ours = BertForPreTraining(BERT_ODD)
    load_state_dict_from_hf(ours, ref.state_dict())
    ref.eval(), ours.eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 61, (3, 17), generator=g)
    ids[1, 12:] = BERT_ODD.pad_id
    mask = (ids != BERT_ODD.pad_id).long()
    seg = torch.randint(0, 3, (3, 17), generator=g)  # segment 2 exists in this config
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[2, 9] = 7, 33
    is_next = torch.tensor([True, False, True])
    r = ref(input_ids=ids, attention_mask=mask, token_type_ids=seg, labels=labels,
            next_sentence_label=(~is_next).long())
    mlm_logits, nsp_logits = ours(ids, mask, seg)
    keep = mask.bool()
    torch.testing.assert_close(mlm_logits[keep], r.prediction_logits[keep], **TOL)
    torch.testing.assert_close(nsp_logits, r.seq_relationship_logits, **TOL)
    loss = mlm_loss(mlm_logits, labels) + nsp_loss(nsp_logits, is_next)
    loss.backward(), r.loss.backward()
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():  # the pad row's gradient is 0 on both sides (padding_idx)
        torch.testing.assert_close(p.grad, theirs[("bert." if name.startswith("bert.") else "") + _hf_name(name)].grad,
                                   **TOL, msg=name)


def test_bert_dropout_acts_in_train_mode_only():
    torch.manual_seed(0)
    model = BertForPreTraining(BERT_ODD)
    ids = torch.randint(6, 61, (2, 9))
    model.eval()
    a, b = model(ids)[0], model(ids)[0]
    assert torch.equal(a, b)  # eval: deterministic
    model.train()
    c, d = model(ids)[0], model(ids)[0]
    assert not torch.allclose(c, a) and not torch.allclose(c, d)  # train: dropout on, fresh masks each call
    model.eval()
    assert torch.equal(model(ids)[0], a)  # and back


# --------------------------------------------------------------------------------- GPT
GPT_ODD = GPTConfig(vocab_size=61, max_len=24, d_model=24, n_heads=3, n_layers=3, d_ff=40, dropout=0.2,
                    activation="relu", norm_eps=1e-3, bias=False, attention_backend="readable")


def _gpt2_pair(cfg: GPTConfig):
    """transformers' GPT-2 and our GPT from the same config (GPT-2 has biases and the tanh GELU)."""
    hf_cfg = transformers.GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.max_len, n_embd=cfg.d_model,
                                     n_head=cfg.n_heads, n_layer=cfg.n_layers, n_inner=cfg.d_ff,
                                     layer_norm_epsilon=cfg.norm_eps, activation_function="gelu_new",
                                     resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout)
    hf_cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    ref = transformers.GPT2LMHeadModel(hf_cfg)
    _perturb_norms(ref)
    ours = GPT(cfg)
    ours.load_state_dict(GPT.from_hf_gpt2(ref).state_dict())
    return ref.eval(), ours.eval()


def test_gpt_every_field_differs_and_matches_transformers():
    _all_differ(GPT_ODD, required={"vocab_size": None})
    cfg = dataclasses.replace(GPT_ODD, activation="gelu_tanh", bias=True)  # what GPT-2 can express
    ref, ours = _gpt2_pair(cfg)
    ids = torch.randint(0, 61, (2, 20), generator=torch.Generator().manual_seed(0))
    logits, _ = ours(ids)
    r = ref(ids, labels=ids)
    torch.testing.assert_close(logits, r.logits, **TOL)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, 61), ids[:, 1:].reshape(-1))
    loss.backward(), r.loss.backward()
    torch.testing.assert_close(ours.W_te.weight.grad, ref.transformer.wte.weight.grad, **TOL)
    torch.testing.assert_close(ours.blocks[2].ln_2.weight.grad, ref.transformer.h[2].ln_2.weight.grad, **TOL)
    with pytest.raises(ValueError, match="exceed the model's max_len=24"):
        ours(torch.zeros(1, 25, dtype=torch.long))


def test_gpt_bias_and_activation_fields_are_read():
    torch.manual_seed(0)
    model = GPT(GPT_ODD).eval()
    assert all(m.bias is None for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.LayerNorm)))
    ffn, x = model.blocks[0].ffn, torch.randn(2, 5, 24)
    torch.testing.assert_close(ffn(x), ffn.W_2(F.relu(ffn.W_1(x))), **TOL)  # relu, not GELU
    assert ffn.W_1.out_features == 40 and model.blocks[0].ln_1.eps == 1e-3


def test_gpt_dropout_acts_in_train_mode_only_and_generation_is_in_eval():
    _, model = _gpt2_pair(dataclasses.replace(GPT_ODD, activation="gelu_tanh", bias=True))
    ids = torch.randint(0, 61, (2, 10), generator=torch.Generator().manual_seed(0))
    a = model(ids)[0]
    assert torch.equal(a, model(ids)[0])
    model.train()
    torch.manual_seed(1)
    c = model(ids)[0]
    torch.manual_seed(2)
    assert not torch.allclose(c, a) and not torch.allclose(c, model(ids)[0])
    model.eval()
    greedy = generate(model, ids[:1, :4], max_new_tokens=6, temperature=0)
    assert torch.equal(greedy, generate(model, ids[:1, :4], max_new_tokens=6, temperature=0))


# ------------------------------------------------------------------------------- Llama
LLAMA_ODD = LlamaConfig(vocab_size=61, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=40, d_head=12,
                        rope_theta=50.0, rms_eps=1e-2, max_len=16, tie_embeddings=False, bos_id=1, eos_id=2,
                        pad_id=3)


def test_llama_every_field_differs_and_matches_transformers():
    _all_differ(LLAMA_ODD)
    c = LLAMA_ODD
    hf_cfg = transformers.LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.d_model, num_hidden_layers=c.n_layers,
                                      num_attention_heads=c.n_heads, num_key_value_heads=c.n_kv_heads,
                                      intermediate_size=c.d_ff, head_dim=c.d_head, rope_theta=c.rope_theta,
                                      rms_norm_eps=c.rms_eps, max_position_embeddings=c.max_len,
                                      tie_word_embeddings=c.tie_embeddings, bos_token_id=c.bos_id,
                                      eos_token_id=c.eos_id, pad_token_id=c.pad_id, attn_implementation="eager")
    assert config_from_hf(hf_cfg.to_dict()) == c
    torch.manual_seed(0)
    ref = transformers.LlamaForCausalLM(hf_cfg)
    _perturb_norms(ref)
    ref.eval()
    ours = load_hf_state_dict(Llama(c), {k: v.clone() for k, v in ref.state_dict().items()}).eval()
    ids = torch.randint(0, 61, (2, 20), generator=torch.Generator().manual_seed(0))  # past max_len: tables grow
    logits, _ = ours(ids)
    r = ref(ids, labels=ids)
    torch.testing.assert_close(logits, r.logits, **TOL)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, 61), ids[:, 1:].reshape(-1))
    loss.backward(), r.loss.backward()
    torch.testing.assert_close(ours.lm_head.weight.grad, ref.lm_head.weight.grad, **TOL)
    torch.testing.assert_close(ours.blocks[0].attn_norm.weight.grad, ref.model.layers[0].input_layernorm.weight.grad,
                               **TOL)
    # the cache, one token at a time, gives the same last logits
    _, past = ours(ids[:, :-1])
    step, _ = ours(ids[:, -1:], past=past)
    torch.testing.assert_close(step[:, -1], r.logits[:, -1], **TOL)


def _active_dropouts(model, run) -> int:
    """How many dropouts with p > 0 actually act (training=True) during ``run()``: every dropout of the
    package goes through ``torch.nn.functional.dropout`` (``nn.Dropout`` too)."""
    calls = []
    real = F.dropout

    def counting(input, p=0.5, training=True, inplace=False):
        calls.append(p > 0 and training)
        return real(input, p, training, inplace)

    torch.nn.functional.dropout = counting
    try:
        run()
    finally:
        torch.nn.functional.dropout = real
    return sum(calls)


@pytest.mark.parametrize("which", ["gpt", "bert"])
def test_every_dropout_site_follows_the_mode(which):
    """Each of the model's dropout sites acts in train mode and none in eval mode: the embeddings, then
    per block the attention weights, the attention output, the feed-forward's hidden layer (chapter 6's
    FeedForward) and its output: 1 + 4 L. A site that ignores the mode, or whose dropout was lost, changes
    the count (a whole-output comparison cannot see one missing site among several)."""
    torch.manual_seed(0)
    ids = torch.randint(6, 61, (2, 9))
    model = GPT(GPT_ODD) if which == "gpt" else BertForPreTraining(BERT_ODD)
    L = GPT_ODD.n_layers if which == "gpt" else BERT_ODD.n_layers
    model.train()
    assert _active_dropouts(model, lambda: model(ids)) == 1 + 4 * L
    model.eval()
    assert _active_dropouts(model, lambda: model(ids)) == 0
