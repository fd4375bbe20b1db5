"""A decoder-only transformer language model (GPT, Radford et al. 2018, 2019), in small modules.

A language model factorises the probability of a text by the chain rule,

    P(w_1 .. w_M) = prod_t P(w_t | w_<t),

and GPT computes every factor in one pass: the tokens are embedded, a stack of *causal*
self-attention blocks lets position ``t`` read positions ``<= t`` only, and the last layer's vector
``E_t`` at position ``t`` is mapped back to the vocabulary by the de-embedding matrix ``D``:

    x_0 = W_te[w_t] + W_pe[t]                                     (token + learned position embedding)
    x   = x + CausalSelfAttention(LN_1(x))                        (pre-norm block, GPT-2)
    x   = x + FFN(LN_2(x)),   FFN(x) = W_2 GELU(W_1 x + b_1) + b_2
    E_t = LN_f(x_L)[t]
    P(w_{t+1} | w_<=t) = softmax(D E_t / T),   D = W_te            (tied weights; T the temperature)

Training minimises the mean cross-entropy of the next token over every position at once (the
causal mask is what makes that honest: no position sees the token it must predict).

The model follows the generation contract of :mod:`neuraltext.gpt.sampling`:
``model(input_ids, attention_mask=None, position_ids=None, past=None) -> (logits, present)`` where
``present`` is one ``(k, v)`` pair per block, ``(B, h, S, d_head)``: the KV cache. With a cache, a
new token's query attends to the stored keys and values and its own; nothing before it is recomputed.

The block is the pre-norm :mod:`neuraltext.transformer.model` block with a causal mask; its feed-forward
network is :class:`neuraltext.transformer.model.FeedForward`. The attention is written here because the
chapter 6 :class:`~neuraltext.transformer.multihead.MultiHeadAttention` has no cache; it computes the scores with
:func:`neuraltext.transformer.multihead.attention` (readable or fused path). :meth:`GPT.from_hf_gpt2` copies the
weights of a ``transformers`` ``GPT2LMHeadModel`` (whose ``Conv1D`` layers store ``W^T``); the tests
check that both give the same logits and gradients (1e-5).

Shapes: ``B`` batch, ``T`` new tokens, ``S`` keys (cached + new), ``d`` = ``d_model``, ``h`` heads,
``d_head = d / h``, ``V`` vocabulary size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.transformer.multihead import BACKENDS, attention
from neuraltext.gpt.sampling import position_ids_for
from neuraltext.transformer.model import ACTIVATIONS, FeedForward, TransformerConfig, check_ids

__all__ = ["GPTConfig", "CausalSelfAttention", "Block", "GPT", "attention_mask_for", "gpt_loss"]

KV = tuple[torch.Tensor, torch.Tensor]


@dataclass
class GPTConfig:
    """Everything that shapes a GPT. GPT-2 small is ``GPTConfig(50257, 1024, 768, 12, 12)``."""

    vocab_size: int
    max_len: int = 256  # number of learned positions (GPT-2: n_positions = 1024)
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None  # hidden size of the feed-forward network; None = 4 * d_model
    dropout: float = 0.0
    activation: str = "gelu_tanh"  # GPT-2's "gelu_new"
    norm_eps: float = 1e-5
    bias: bool = True
    attention_backend: str = "fused"  # "fused" | "readable" (see neuraltext.transformer.multihead)

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "d_model", "n_heads", "n_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be an integer >= 1, got {value!r}")
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"GPTConfig: d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"GPTConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.attention_backend not in BACKENDS:
            raise ValueError(f"GPTConfig.attention_backend must be one of {BACKENDS}, got {self.attention_backend!r}")

    def block_config(self) -> TransformerConfig:
        """The chapter 6 config of one pre-norm block (for :class:`~neuraltext.transformer.model.FeedForward`)."""
        return TransformerConfig(d_model=self.d_model, n_heads=self.n_heads, d_ff=self.d_ff, dropout=self.dropout,
                                 activation=self.activation, norm_first=True, norm_eps=self.norm_eps,
                                 bias=self.bias, attention_backend=self.attention_backend)


def attention_mask_for(attention_mask: torch.Tensor | None, B: int, T: int, S: int,
                       device: torch.device) -> torch.Tensor | None:
    """The boolean mask (True = may attend) of ``T`` new queries over ``S = S_past + T`` keys:
    ``(B, 1, T, S)``, ``(T, S)`` without padding, or None when plain causal attention is enough (no
    padding, and no cache or a single new token: pass ``is_causal=T > 1``). Used by both decoders of
    the chapter (:class:`GPT`, :class:`neuraltext.gpt.llama.Llama`).

    Query ``i`` (absolute column ``S_past + i``) may attend to key ``j`` when ``j <= S_past + i``
    (causal) and key ``j`` is a real token. A padding query attends to itself only: its output is
    never used, but a row with no allowed key would give NaN, which would leak through ``0 * NaN``.
    """
    S_past = S - T
    if attention_mask is None and (S_past == 0 or T == 1):
        return None  # is_causal=True does it (T > 1), or one new token may see every key (T = 1)
    j = torch.arange(S, device=device)
    i_abs = S_past + torch.arange(T, device=device)
    allowed = j[None, :] <= i_abs[:, None]  # (T, S): the causal part
    if attention_mask is None:
        return allowed
    if tuple(attention_mask.shape) != (B, S):
        raise ValueError(
            f"attention_mask must have shape (B, S_past + T) = ({B}, {S}) (cached and new tokens), "
            f"got {tuple(attention_mask.shape)}"
        )
    real = attention_mask.to(device=device, dtype=torch.bool)[:, None, :]  # (B, 1, S)
    self_key = j[None, :] == i_abs[:, None]  # (T, S): the diagonal
    return (allowed & (real | self_key))[:, None]  # (B, 1, T, S)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t, with a KV cache.

    Same parameters as chapter 6's :class:`~neuraltext.transformer.multihead.MultiHeadAttention` (``W_q``, ``W_k``,
    ``W_v``, ``W_o``, each ``d -> d``); the keys and values of earlier tokens come from ``past``.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_model // cfg.n_heads
        self.W_q = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_k = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_v = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_o = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.backend = cfg.attention_backend

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, h, T, d_head)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, past: KV | None = None):
        """x ``(B, T, d)``; mask from :func:`attention_mask_for`; past ``(k, v)`` ``(B, h, S_past, d_head)``.
        Returns ``(output (B, T, d), present (k, v) (B, h, S_past + T, d_head))``."""
        B, T, d = x.shape
        q, k, v = self._heads(self.W_q(x)), self._heads(self.W_k(x)), self._heads(self.W_v(x))
        if past is not None:  # the cache: keys and values of the earlier tokens do not change
            k = torch.cat([past[0], k], dim=2)  # (B, h, S, d_head)
            v = torch.cat([past[1], v], dim=2)
        p = self.dropout if self.training else 0.0
        if mask is None:  # (one new token after a cache sees every key: no causal mask then)
            out = attention(q, k, v, None, p, is_causal=T > 1, backend=self.backend)  # (B, h, T, d_head)
        else:
            out = attention(q, k, v, mask, p, backend=self.backend)
        out = out.transpose(1, 2).reshape(B, T, d)  # (B, T, d): heads side by side
        return F.dropout(self.W_o(out), p, self.training), (k, v)


class Block(nn.Module):
    """Pre-norm decoder block: ``x = x + Attn(LN_1(x)); x = x + FFN(LN_2(x))``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.ffn = FeedForward(cfg.block_config())  # W_2 GELU(W_1 x + b_1) + b_2, from chapter 6
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, past: KV | None = None):
        a, present = self.attn(self.ln_1(x), mask, past)
        x = x + a  # (B, T, d)
        x = x + F.dropout(self.ffn(self.ln_2(x)), self.dropout, self.training)  # (B, T, d)
        return x, present


class GPT(nn.Module):
    """The decoder-only language model; ``forward`` follows :mod:`neuraltext.gpt.sampling`'s contract."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.W_te = nn.Embedding(cfg.vocab_size, cfg.d_model)  # token embedding (and D, tied)
        self.W_pe = nn.Embedding(cfg.max_len, cfg.d_model)  # learned position embedding
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.apply(self._init_weights)
        for block in self.blocks:  # GPT-2: residual projections scaled by 1/sqrt(2 L) at init
            for w in (block.attn.W_o.weight, block.ffn.W_2.weight):
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def D(self) -> torch.Tensor:
        """The de-embedding matrix ``D`` (``V x d``): the token embedding itself (tied weights)."""
        return self.W_te.weight

    def forward(self, input_ids: torch.Tensor, *, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past: list[KV | None] | None = None):
        """input_ids ``(B, T)``; attention_mask ``(B, S_past + T)`` (1 = real token); position_ids
        ``(B, T)``; past: one ``(k, v)`` per block or None. Returns ``(logits (B, T, V), present)``."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        if past is not None and len(past) != len(self.blocks):
            raise ValueError(f"past must hold one (k, v) per block ({len(self.blocks)}), got {len(past)}")
        S_past = 0 if past is None or past[0] is None else past[0][0].shape[2]
        if S_past + T > self.config.max_len:  # positions never exceed the column (no host sync)
            raise ValueError(
                f"{S_past + T} tokens (cached + new) exceed the model's max_len={self.config.max_len} "
                f"learned positions: shorten the prompt or generate fewer tokens"
            )
        if attention_mask is not None and tuple(attention_mask.shape) != (B, S_past + T):
            raise ValueError(
                f"attention_mask must have shape (B, S_past + T) = ({B}, {S_past + T}) (cached and new "
                f"tokens), got {tuple(attention_mask.shape)}"
            )
        if position_ids is None:
            position_ids = position_ids_for(attention_mask, B, T, S_past, input_ids.device)
        if position_ids.shape != (B, T):
            raise ValueError(f"position_ids must have shape (B, T) = ({B}, {T}), got {tuple(position_ids.shape)}")
        check_ids("input_ids", input_ids, self.config.vocab_size)
        check_ids("position_ids", position_ids, self.config.max_len, "the model's max_len learned positions")
        mask = attention_mask_for(attention_mask, B, T, S_past + T, input_ids.device)

        x = self.W_te(input_ids) + self.W_pe(position_ids)  # (B, T, d): x_0
        x = F.dropout(x, self.config.dropout, self.training)
        present = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, mask, None if past is None else past[i])
            present.append(kv)
        E = self.ln_f(x)  # (B, T, d): the final embeddings E_t
        return E @ self.D.T, present  # (B, T, V): D E_t for every position

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def from_hf_gpt2(cls, hf_model) -> "GPT":
        """A :class:`GPT` with the weights of a ``transformers`` ``GPT2LMHeadModel`` (or ``GPT2Model``).

        GPT-2's ``Conv1D`` stores ``W^T`` (``in x out``) and fuses ``W_q, W_k, W_v`` into one
        ``c_attn`` of width ``3 d``: transpose and split.
        """
        hf_cfg = hf_model.config
        if getattr(hf_cfg, "model_type", None) != "gpt2":
            raise ValueError(f"from_hf_gpt2 reads GPT-2 checkpoints, got model_type={getattr(hf_cfg, 'model_type', None)!r}")
        if hf_cfg.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"from_hf_gpt2 supports GPT-2's tanh GELU, got activation_function={hf_cfg.activation_function!r}")
        cfg = GPTConfig(vocab_size=hf_cfg.vocab_size, max_len=hf_cfg.n_positions, d_model=hf_cfg.n_embd,
                        n_heads=hf_cfg.n_head, n_layers=hf_cfg.n_layer, d_ff=hf_cfg.n_inner or 4 * hf_cfg.n_embd,
                        norm_eps=hf_cfg.layer_norm_epsilon)
        model = cls(cfg)
        sd = {k.removeprefix("transformer."): v for k, v in hf_model.state_dict().items()}
        d = cfg.d_model
        with torch.no_grad():
            model.W_te.weight.copy_(sd["wte.weight"])
            model.W_pe.weight.copy_(sd["wpe.weight"])
            model.ln_f.weight.copy_(sd["ln_f.weight"])
            model.ln_f.bias.copy_(sd["ln_f.bias"])
            for i, block in enumerate(model.blocks):
                p = f"h.{i}."
                w_qkv, b_qkv = sd[p + "attn.c_attn.weight"].T, sd[p + "attn.c_attn.bias"]  # (3d, d), (3d,)
                for j, lin in enumerate((block.attn.W_q, block.attn.W_k, block.attn.W_v)):
                    lin.weight.copy_(w_qkv[j * d:(j + 1) * d])
                    lin.bias.copy_(b_qkv[j * d:(j + 1) * d])
                pairs = [(block.attn.W_o, "attn.c_proj"), (block.ffn.W_1, "mlp.c_fc"), (block.ffn.W_2, "mlp.c_proj")]
                for lin, name in pairs:
                    lin.weight.copy_(sd[p + name + ".weight"].T)
                    lin.bias.copy_(sd[p + name + ".bias"])
                for ln, name in ((block.ln_1, "ln_1"), (block.ln_2, "ln_2")):
                    ln.weight.copy_(sd[p + name + ".weight"])
                    ln.bias.copy_(sd[p + name + ".bias"])
        return model.to(next(hf_model.parameters()).device)


def gpt_loss(model: GPT, batch) -> torch.Tensor:
    """Mean next-token cross-entropy ``-(1/M) sum_t log P(w_t | w_<t)`` of an ``(inputs, targets)``
    batch (targets = inputs shifted by one, :class:`neuraltext.rnn.lm.LMBatches`); the ``loss_fn`` of
    :func:`neuraltext.training.loop.train`."""
    inputs, targets = batch
    logits, _ = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
