"""neuraltext.gpt.model against transformers' GPT2LMHeadModel on the same weights, and its KV cache.

A tiny random GPT-2 (transformers) is the reference: its weights are copied with
``GPT.from_hf_gpt2`` (which transposes GPT-2's Conv1D weights and splits the fused q/k/v), and the
logits and the gradients of a loss are compared to 1e-5 in float32, plain and left-padded batches.
Generation: the cache changes nothing (tokens and logits), a left-padded batch gives what each
prompt gives alone, a fixed seed gives the same sample, T -> 0 is greedy.
"""

from __future__ import annotations

import pytest
import torch

from neuraltext.gpt import generate, pad_left
from neuraltext.gpt import GPT, GPTConfig, attention_mask_for, gpt_loss

transformers = pytest.importorskip("transformers")

ATOL = 1e-5


def _close(a, b, atol=ATOL, what=""):
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
    err = (a - b).abs().max().item() if a.numel() else 0.0
    assert err <= atol, f"{what}: max abs difference {err:.3g} > {atol}"


def _hf_gpt2(device, V=97, n_layer=2, d=32, heads=4, n_pos=64):
    cfg = transformers.GPT2Config(vocab_size=V, n_positions=n_pos, n_embd=d, n_layer=n_layer, n_head=heads,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    cfg._attn_implementation = "eager"  # the plain formula, independent of our fused path
    torch.manual_seed(0)
    ref = transformers.GPT2LMHeadModel(cfg).to(device).eval()
    with torch.no_grad():  # non-trivial layer norms and biases (their init is 1 and 0)
        for name, p in ref.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return ref


@pytest.fixture
def tiny_gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=61, max_len=64, d_model=32, n_heads=4, n_layers=2)).eval()


# -------------------------------------------------------------------------------- reference
@pytest.mark.parametrize("backend", ["fused", "readable"])
def test_logits_and_gradients_match_gpt2(device, backend):
    ref = _hf_gpt2(device)
    ours = GPT.from_hf_gpt2(ref).to(device)
    for block in ours.blocks:
        block.attn.backend = backend
    ids = torch.randint(0, 97, (3, 17), device=device)
    targets = torch.randint(0, 97, (3, 17), device=device)

    logits, _ = ours(ids)
    ref_logits = ref(ids).logits
    _close(logits, ref_logits, what="logits")

    gpt_loss(ours, (ids, targets)).backward()
    torch.nn.functional.cross_entropy(ref_logits.reshape(-1, 97), targets.reshape(-1)).backward()
    tr = ref.transformer
    _close(ours.W_te.weight.grad, tr.wte.weight.grad, what="dL/dW_te (tied with D)")
    _close(ours.W_pe.weight.grad, tr.wpe.weight.grad, what="dL/dW_pe")
    _close(ours.ln_f.weight.grad, tr.ln_f.weight.grad, what="dL/d ln_f")
    for i, (b, h) in enumerate(zip(ours.blocks, tr.h)):
        w_qkv = torch.cat([b.attn.W_q.weight.grad, b.attn.W_k.weight.grad, b.attn.W_v.weight.grad])
        _close(w_qkv, h.attn.c_attn.weight.grad.T, what=f"block {i} dL/dW_qkv")
        b_qkv = torch.cat([b.attn.W_q.bias.grad, b.attn.W_k.bias.grad, b.attn.W_v.bias.grad])
        _close(b_qkv, h.attn.c_attn.bias.grad, what=f"block {i} dL/db_qkv")
        _close(b.attn.W_o.weight.grad, h.attn.c_proj.weight.grad.T, what=f"block {i} dL/dW_o")
        _close(b.ffn.W_1.weight.grad, h.mlp.c_fc.weight.grad.T, what=f"block {i} dL/dW_1")
        _close(b.ffn.W_2.weight.grad, h.mlp.c_proj.weight.grad.T, what=f"block {i} dL/dW_2")
        _close(b.ln_1.bias.grad, h.ln_1.bias.grad, what=f"block {i} dL/d ln_1 bias")
        _close(b.ln_2.weight.grad, h.ln_2.weight.grad, what=f"block {i} dL/d ln_2 weight")


def test_left_padded_batch_matches_gpt2(device):
    ref = _hf_gpt2(device)
    ours = GPT.from_hf_gpt2(ref).to(device)
    ids, mask = pad_left([[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]], pad_id=0, device=device)
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    logits, _ = ours(ids, attention_mask=mask)  # default positions = cumsum(mask) - 1
    with torch.no_grad():
        ref_logits = ref(ids, attention_mask=mask.long(), position_ids=positions).logits
    assert torch.isfinite(logits).all()  # padding queries attend to themselves: no NaN anywhere
    _close(logits[mask], ref_logits[mask], what="logits at real tokens")


def test_the_mask_is_causal(tiny_gpt):
    """Changing token t changes no logit before t."""
    ids = torch.randint(0, 61, (2, 12))
    changed = ids.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 61
    a, _ = tiny_gpt(ids)
    b, _ = tiny_gpt(changed)
    _close(a[:, :7], b[:, :7], atol=0.0, what="logits before the change")
    assert (a[:, 7:] - b[:, 7:]).abs().max() > 1e-3


def test_mask_for_cached_queries():
    m = attention_mask_for(torch.tensor([[0, 1, 1, 1]]), 1, 2, 4, torch.device("cpu"))
    assert m.shape == (1, 1, 2, 4)
    assert m[0, 0].int().tolist() == [[0, 1, 1, 0], [0, 1, 1, 1]]
    m = attention_mask_for(torch.tensor([[0, 0, 1]]), 1, 3, 3, torch.device("cpu"))
    assert m[0, 0].int().tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]  # padding sees itself only


# ---------------------------------------------------------------------------------- the cache
def test_cached_forward_equals_full_forward(tiny_gpt):
    ids = torch.randint(0, 61, (2, 10))
    full, _ = tiny_gpt(ids)
    logits, past = tiny_gpt(ids[:, :4])
    steps = [logits]
    for t in range(4, 10):
        logits, past = tiny_gpt(ids[:, t:t + 1], past=past)
        steps.append(logits)
    assert past[0][0].shape == (2, 4, 10, 8)  # (B, h, S, d_head)
    _close(torch.cat(steps, 1), full, what="cached vs full logits")


@pytest.mark.parametrize("kw", [{"temperature": 0}, {"temperature": 0.8, "top_k": 20, "top_p": 0.9, "generator": 1}])
def test_cached_and_uncached_generation_agree(tiny_gpt, kw):
    ids, mask = pad_left([[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]])
    a, la = generate(tiny_gpt, ids, mask, max_new_tokens=20, use_cache=True, return_logits=True, **kw)
    b, lb = generate(tiny_gpt, ids, mask, max_new_tokens=20, use_cache=False, return_logits=True, **kw)
    assert torch.equal(a, b)
    _close(la, lb, what="step logits with and without the cache")


def test_left_padded_batch_generates_what_each_prompt_generates_alone(tiny_gpt):
    prompts = [[1, 2, 3, 4, 5, 6, 7], [8], [9, 10, 11]]
    ids, mask = pad_left(prompts)
    batch, lb = generate(tiny_gpt, ids, mask, max_new_tokens=15, temperature=0, return_logits=True)
    for i, p in enumerate(prompts):
        alone, la = generate(tiny_gpt, torch.tensor([p]), max_new_tokens=15, temperature=0, return_logits=True)
        assert batch[i, ids.shape[1]:].tolist() == alone[0, len(p):].tolist()
        _close(lb[i], la[0], what=f"prompt {i} step logits")


def test_seed_temperature_and_greedy(tiny_gpt):
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    a = generate(tiny_gpt, ids, max_new_tokens=15, temperature=1.2, generator=42)
    assert torch.equal(a, generate(tiny_gpt, ids, max_new_tokens=15, temperature=1.2, generator=42))
    assert not torch.equal(a, generate(tiny_gpt, ids, max_new_tokens=15, temperature=1.2, generator=43))
    greedy = generate(tiny_gpt, ids, max_new_tokens=15, temperature=0)
    assert torch.equal(generate(tiny_gpt, ids, max_new_tokens=15, temperature=1e-6, generator=0), greedy)
    # greedy = argmax of the full forward, token after token
    seq = ids
    for _ in range(15):
        seq = torch.cat([seq, tiny_gpt(seq)[0][:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(seq, greedy)


# --------------------------------------------------------------------------- training, errors
def test_a_tiny_gpt_learns_a_repeating_sequence():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=12, max_len=32, d_model=32, n_heads=2, n_layers=1))
    seq = torch.arange(25) % 10 + 2  # 2 3 ... 11 2 3 ...
    batch = (seq[None, :-1].repeat(4, 1), seq[None, 1:].repeat(4, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = gpt_loss(model, batch).item()
    for _ in range(60):
        opt.zero_grad()
        gpt_loss(model, batch).backward()
        opt.step()
    assert first > 2.0 and gpt_loss(model, batch).item() < 0.05
    model.eval()
    out = generate(model, torch.tensor([[2, 3, 4]]), max_new_tokens=10, temperature=0)
    assert out[0].tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 2, 3, 4]


def test_errors_name_the_problem(tiny_gpt):
    with pytest.raises(ValueError, match="max_len=64"):
        tiny_gpt(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        tiny_gpt(torch.zeros(1, 5, dtype=torch.long), attention_mask=torch.ones(1, 4))
    with pytest.raises(ValueError, match="past"):
        tiny_gpt(torch.zeros(1, 1, dtype=torch.long), past=[None])
    with pytest.raises(ValueError, match="n_heads"):
        GPTConfig(vocab_size=10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        GPTConfig(vocab_size=0)
    with pytest.raises(ValueError, match="max_len"):
        generate(tiny_gpt, torch.zeros(1, 60, dtype=torch.long), max_new_tokens=10)
