"""The transformer of "Attention is all you need", in small modules named after the paper.

    x_0 = Embedding(tokens) * sqrt(d_model) + PE                     (positional encoding)
    post-norm block:  x = LayerNorm(x + Sublayer(x))                  (the paper)
    pre-norm block:   x = x + Sublayer(LayerNorm(x))                  (GPT-2 and most LLMs)
    FeedForward(x) = W_2 act(W_1 x + b_1) + b_2                        (act: ReLU or GELU)

The positional encodings are in :mod:`neuraltext.transformer.positions`.

The encoder and decoder blocks take one :class:`TransformerConfig`; the BERT (encoder-only) and GPT
(decoder-only, i.e. :class:`EncoderBlock` with a causal mask) chapters build on them. Shapes: ``B``
batch, ``S`` source length, ``T`` target length, ``d`` = ``d_model``, ``V`` vocabulary size.
Masks follow ``torch.nn.Transformer``: ``*_padding_mask`` ``(B, length)`` is True at padding. A
source that is nothing but padding leaves its queries no key to attend to: attention gives zeros
there (:mod:`neuraltext.transformer.multihead`), so the model's outputs stay finite.

The range of token ids is checked only for tensors on the CPU: on a GPU that check would make the
host wait for the device at every forward pass (an out-of-range id then fails in the embedding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.transformer.multihead import BACKENDS, MultiHeadAttention, check_heads
from neuraltext.transformer.positions import LearnedPositionalEncoding, SinusoidalPositionalEncoding

__all__ = [
    "TransformerConfig",
    "FeedForward",
    "EncoderBlock",
    "DecoderBlock",
    "Transformer",
    "greedy_decode",
    "from_torch_layer",
    "transformer_loss",
    "check_token_id",
    "check_ids",
]

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact GELU, x * Phi(x) (BERT, torch.nn.Transformer's "gelu")
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's approximation
}


@dataclass
class TransformerConfig:
    """Everything that shapes a transformer. The blocks read only the block fields (``d_model`` to
    ``attention_backend``); the full :class:`Transformer` also reads the vocabulary and stack fields."""

    d_model: int = 128
    n_heads: int = 4
    d_ff: int = 512  # hidden size of the feed-forward network (4 * d_model is the usual choice)
    dropout: float = 0.1
    activation: str = "relu"  # "relu" | "gelu" | "gelu_tanh"
    norm_first: bool = False  # False: post-norm (the paper); True: pre-norm
    norm_eps: float = 1e-5
    bias: bool = True  # biases in attention projections, feed-forward and layer norms
    attention_backend: str = "fused"  # "fused" | "readable" (see neuraltext.transformer.multihead)
    # the full encoder-decoder model
    src_vocab_size: int = 0
    tgt_vocab_size: int = 0
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    max_len: int = 512
    positional: str = "sinusoidal"  # "sinusoidal" | "learned"
    pad_id: int = 0

    def __post_init__(self):
        check_heads(self.d_model, self.n_heads)
        for name in ("d_ff", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("n_encoder_layers", "n_decoder_layers", "src_vocab_size", "tgt_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:  # (also False for NaN)
            raise ValueError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")
        if not self.norm_eps > 0.0:
            raise ValueError(f"norm_eps must be positive, got {self.norm_eps!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.attention_backend not in BACKENDS:
            raise ValueError(f"attention_backend must be one of {BACKENDS}, got {self.attention_backend!r}")
        if self.positional not in ("sinusoidal", "learned"):
            raise ValueError(f"positional must be 'sinusoidal' or 'learned', got {self.positional!r}")


# ------------------------------------------------------------------------------------- blocks
class FeedForward(nn.Module):
    """FFN(x) = W_2 act(W_1 x + b_1) + b_2, applied to every position separately."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.W_1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.W_2 = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.act = ACTIVATIONS[cfg.activation]
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.W_2(self.dropout(self.act(self.W_1(x))))  # (B, T, d) -> (B, T, d_ff) -> (B, T, d)


class EncoderBlock(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a layer norm.

    post-norm: x = LN_1(x + SelfAttn(x));  x = LN_2(x + FFN(x))
    pre-norm:  x = x + SelfAttn(LN_1(x));  x = x + FFN(LN_2(x))

    With ``is_causal=True`` it is the GPT block (each position sees only the past).
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm_first = cfg.norm_first
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout, cfg.bias, cfg.attention_backend)
        self.ffn = FeedForward(cfg)
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)

    def _sa(self, x, key_padding_mask, attn_mask, is_causal, need_weights):
        out, w = self.self_attn(x, x, x, key_padding_mask, attn_mask, is_causal, need_weights)
        return self.dropout1(out), w

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None, is_causal: bool = False, need_weights: bool = False):
        """x ``(B, T, d)`` -> ``(B, T, d)``; with ``need_weights`` also the weights ``(B, h, T, T)``."""
        if self.norm_first:
            a, w = self._sa(self.norm1(x), key_padding_mask, attn_mask, is_causal, need_weights)
            x = x + a  # (B, T, d)
            x = x + self.dropout2(self.ffn(self.norm2(x)))  # (B, T, d)
        else:
            a, w = self._sa(x, key_padding_mask, attn_mask, is_causal, need_weights)
            x = self.norm1(x + a)  # (B, T, d)
            x = self.norm2(x + self.dropout2(self.ffn(x)))  # (B, T, d)
        return (x, w) if need_weights else x


class DecoderBlock(nn.Module):
    """Masked self-attention, cross-attention to the encoder's output ("memory"), feed-forward.

    post-norm: y = LN_1(y + SelfAttn(y, causal)); y = LN_2(y + CrossAttn(y, m)); y = LN_3(y + FFN(y))
    pre-norm:  y = y + SelfAttn(LN_1(y), causal); y = y + CrossAttn(LN_2(y), m); y = y + FFN(LN_3(y))
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm_first = cfg.norm_first
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout, cfg.bias, cfg.attention_backend)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout, cfg.bias, cfg.attention_backend)
        self.ffn = FeedForward(cfg)
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.norm3 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, tgt_padding_mask: torch.Tensor | None = None,
                memory_padding_mask: torch.Tensor | None = None, tgt_mask: torch.Tensor | None = None,
                is_causal: bool = True, need_weights: bool = False):
        """y ``(B, T, d)``, memory ``(B, S, d)`` -> ``(B, T, d)``; with ``need_weights`` also
        ``(self-attention weights (B, h, T, T), cross-attention weights (B, h, T, S))``."""
        def self_attn(z):
            out, w = self.self_attn(z, z, z, tgt_padding_mask, tgt_mask, is_causal, need_weights)
            return self.dropout1(out), w

        def cross_attn(z):
            out, w = self.cross_attn(z, memory, memory, memory_padding_mask, None, False, need_weights)
            return self.dropout2(out), w

        if self.norm_first:
            a, w_self = self_attn(self.norm1(y))
            y = y + a  # (B, T, d)
            c, w_cross = cross_attn(self.norm2(y))
            y = y + c  # (B, T, d): each target position gathers from the source
            y = y + self.dropout3(self.ffn(self.norm3(y)))  # (B, T, d)
        else:
            a, w_self = self_attn(y)
            y = self.norm1(y + a)  # (B, T, d)
            c, w_cross = cross_attn(y)
            y = self.norm2(y + c)  # (B, T, d)
            y = self.norm3(y + self.dropout3(self.ffn(y)))  # (B, T, d)
        return (y, (w_self, w_cross)) if need_weights else y


def from_torch_layer(layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer) -> EncoderBlock | DecoderBlock:
    """Our block with the configuration and weights of a ``torch.nn.TransformerEncoderLayer`` (->
    :class:`EncoderBlock`) or ``TransformerDecoderLayer`` (-> :class:`DecoderBlock`); give both the
    same input and masks to see them agree. The layer must be ``batch_first=True``."""
    if not isinstance(layer, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        raise TypeError(f"expected nn.TransformerEncoderLayer or nn.TransformerDecoderLayer, got {type(layer).__name__}")
    if not layer.self_attn.batch_first:
        raise ValueError("the torch layer must be built with batch_first=True (shapes (B, T, d))")
    act = layer.activation
    activation = {F.relu: "relu", F.gelu: "gelu"}.get(act) if callable(act) else act
    if activation not in ACTIVATIONS:
        raise ValueError(f"unsupported activation {act!r}: use 'relu' or 'gelu'")
    cfg = TransformerConfig(
        d_model=layer.self_attn.embed_dim, n_heads=layer.self_attn.num_heads, d_ff=layer.linear1.out_features,
        dropout=layer.dropout.p, activation=activation, norm_first=layer.norm_first, norm_eps=layer.norm1.eps,
        bias=layer.linear1.bias is not None,
    )
    decoder = isinstance(layer, nn.TransformerDecoderLayer)
    block = DecoderBlock(cfg) if decoder else EncoderBlock(cfg)
    pairs = [(block.self_attn, layer.self_attn)] + ([(block.cross_attn, layer.multihead_attn)] if decoder else [])
    with torch.no_grad():
        for ours, theirs in pairs:  # torch keeps W^Q, W^K, W^V stacked in one (3d, d) matrix
            for W, w in zip((ours.W_q, ours.W_k, ours.W_v), theirs.in_proj_weight.chunk(3)):
                W.weight.copy_(w)
            if cfg.bias:
                for W, b in zip((ours.W_q, ours.W_k, ours.W_v), theirs.in_proj_bias.chunk(3)):
                    W.bias.copy_(b)
            ours.W_o.load_state_dict(theirs.out_proj.state_dict())
        block.ffn.W_1.load_state_dict(layer.linear1.state_dict())
        block.ffn.W_2.load_state_dict(layer.linear2.state_dict())
        for name in ("norm1", "norm2", "norm3") if decoder else ("norm1", "norm2"):
            getattr(block, name).load_state_dict(getattr(layer, name).state_dict())
    return block


# ---------------------------------------------------------------------------------- the model
class Transformer(nn.Module):
    """Encoder-decoder transformer: source tokens ``(B, S)`` and target tokens ``(B, T)`` in,
    next-token logits ``(B, T, V_tgt)`` out (teacher forcing: the target is fed shifted right)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.src_vocab_size < 1 or cfg.tgt_vocab_size < 1:
            raise ValueError(
                f"src_vocab_size and tgt_vocab_size must be set to the vocabularies' sizes (>= 1) for the full "
                f"model, got {cfg.src_vocab_size} and {cfg.tgt_vocab_size}"
            )
        # pad_id indexes both embeddings (its row stays zero) and marks padding in the masks
        check_token_id("pad_id", cfg.pad_id, min(cfg.src_vocab_size, cfg.tgt_vocab_size))
        self.cfg = cfg
        Positional = SinusoidalPositionalEncoding if cfg.positional == "sinusoidal" else LearnedPositionalEncoding
        self.src_embed = nn.Embedding(cfg.src_vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        for embed in (self.src_embed, self.tgt_embed):
            # std d^-1/2, so that after the * sqrt(d) below the token vectors have entries of size ~1,
            # like the positional encoding (with the default std 1 they would drown it)
            nn.init.normal_(embed.weight, std=cfg.d_model ** -0.5)
            with torch.no_grad():
                embed.weight[cfg.pad_id].zero_()
        self.src_pos = Positional(cfg.d_model, cfg.max_len)
        self.tgt_pos = Positional(cfg.d_model, cfg.max_len)
        self.dropout = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_encoder_layers))
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_decoder_layers))
        # pre-norm stacks end with a layer norm (their residual stream is never normalised otherwise)
        self.encoder_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias) if cfg.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias) if cfg.norm_first else nn.Identity()
        self.lm_head = nn.Linear(cfg.d_model, cfg.tgt_vocab_size)

    def _check_tokens(self, name: str, tokens: torch.Tensor, vocab: int) -> None:
        if tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int):
            raise ValueError(f"{name} must be integer token ids of shape (B, length), got {tuple(tokens.shape)} {tokens.dtype}")
        # the range check reads the ids on the host: free on the CPU, but a synchronisation per call on
        # a GPU (where an out-of-range id fails in the embedding kernel instead; debug on the CPU)
        if tokens.device.type == "cpu" and tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab):
            raise ValueError(f"{name} has ids outside [0, {vocab}): min {int(tokens.min())}, max {int(tokens.max())}")

    def encode(self, src: torch.Tensor, need_weights: bool = False):
        """src ``(B, S)`` -> memory ``(B, S, d)`` (and the encoder's weights per layer)."""
        self._check_tokens("src", src, self.cfg.src_vocab_size)
        src_pad = src == self.cfg.pad_id  # (B, S): True at padding
        x = self.src_embed(src) * math.sqrt(self.cfg.d_model)  # (B, S, d)
        x = self.dropout(self.src_pos(x))  # (B, S, d): + PE
        weights = []
        for block in self.encoder:
            if need_weights:
                x, w = block(x, key_padding_mask=src_pad, need_weights=True)  # (B, S, d), (B, h, S, S)
                weights.append(w)
            else:
                x = block(x, key_padding_mask=src_pad)  # (B, S, d)
        x = self.encoder_norm(x)  # (B, S, d)
        return (x, weights) if need_weights else x

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src: torch.Tensor, need_weights: bool = False):
        """tgt ``(B, T)`` + memory ``(B, S, d)`` -> logits ``(B, T, V_tgt)`` (and weights per layer)."""
        self._check_tokens("tgt", tgt, self.cfg.tgt_vocab_size)
        src_pad = src == self.cfg.pad_id  # (B, S)
        tgt_pad = tgt == self.cfg.pad_id  # (B, T)
        y = self.tgt_embed(tgt) * math.sqrt(self.cfg.d_model)  # (B, T, d)
        y = self.dropout(self.tgt_pos(y))  # (B, T, d)
        weights = []
        for block in self.decoder:
            out = block(y, memory, tgt_pad, src_pad, is_causal=True, need_weights=need_weights)
            if need_weights:
                y, w = out  # (B, T, d), ((B, h, T, T), (B, h, T, S))
                weights.append(w)
            else:
                y = out  # (B, T, d)
        logits = self.lm_head(self.decoder_norm(y))  # (B, T, V_tgt)
        return (logits, weights) if need_weights else logits

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """src ``(B, S)``, tgt ``(B, T)`` -> logits ``(B, T, V_tgt)``."""
        if src.dim() == 2 and tgt.dim() == 2 and src.shape[0] != tgt.shape[0]:
            raise ValueError(f"src {tuple(src.shape)} and tgt {tuple(tgt.shape)} must have the same batch size")
        memory = self.encode(src)  # (B, S, d)
        return self.decode(tgt, memory, src)  # (B, T, V_tgt)

    def attention_maps(self, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Attention weights of every layer and head, for heatmaps: ``{"encoder": [(B, h, S, S)] * n,
        "decoder_self": [(B, h, T, T)] * n, "decoder_cross": [(B, h, T, S)] * n}``."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            memory, enc_w = self.encode(src, need_weights=True)
            _, dec_w = self.decode(tgt, memory, src, need_weights=True)
        self.train(was_training)
        return {"encoder": enc_w, "decoder_self": [w[0] for w in dec_w], "decoder_cross": [w[1] for w in dec_w]}

    def decode_greedy(self, src: torch.Tensor, bos_id: int, eos_id: int, max_len: int) -> torch.Tensor:
        """:func:`greedy_decode` of this model (what chapter 5's ``translate`` calls)."""
        return greedy_decode(self, src, bos_id, eos_id, max_len)


def check_token_id(name: str, value, vocab_size: int) -> None:
    """``value`` must be an int id in ``[0, vocab_size)``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
        raise ValueError(f"{name} must be a token id in [0, {vocab_size}) (the vocabulary), got {value!r}")


def check_ids(name: str, ids: torch.Tensor, n: int, allowed: str = "the vocabulary") -> None:
    """Every id of the tensor ``ids`` in ``[0, n)``, else one error naming ``name``, the offending id and
    the range (an embedding lookup would raise a bare IndexError). One ``aminmax``, on CPU tensors
    only: on a GPU reading it back would make the host wait at every forward (there the lookup's
    device-side assert stops a wrong id; callers that can afford one wait per call check before)."""
    if ids.device.type != "cpu" or ids.numel() == 0:
        return
    lo, hi = (int(v) for v in torch.aminmax(ids))
    if lo < 0 or hi >= n:
        raise ValueError(f"{name} must hold ids in [0, {n}) ({allowed}), got {lo if lo < 0 else hi}")


#: decoding loops look at the host (``done.all()``) every this many steps, not at every step
SYNC_EVERY = 8


@torch.no_grad()
def greedy_decode(model: Transformer, src: torch.Tensor, bos_id: int, eos_id: int, max_len: int) -> torch.Tensor:
    """Greedy decoding: start from ``<bos>``, append the arg-max token, stop at ``<eos>`` or
    ``max_len`` new tokens. Returns ``(B, <= max_len)`` token ids without ``<bos>``; positions after a
    sequence's ``<eos>`` are filled with ``pad_id``.

    Whether every sequence has finished is asked of the device only every :data:`SYNC_EVERY` steps
    (a host synchronisation); the extra steps only append padding, trimmed at the end."""
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer (new tokens to generate), got {max_len!r}")
    V = model.cfg.tgt_vocab_size
    check_token_id("bos_id", bos_id, V)
    check_token_id("eos_id", eos_id, V)
    was_training = model.training
    model.eval()
    memory = model.encode(src)  # (B, S, d): the source is encoded once
    B = src.shape[0]
    ys = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    alive = []  # per step: was any sequence still unfinished? (device scalars)
    for t in range(max_len):
        alive.append(~done.all())
        logits = model.decode(ys, memory, src)  # (B, t, V): the whole prefix again (no cache)
        nxt = logits[:, -1].argmax(-1)  # (B,)
        nxt = nxt.masked_fill(done, model.cfg.pad_id)
        ys = torch.cat([ys, nxt[:, None]], dim=1)  # (B, t + 1)
        done |= nxt == eos_id
        if (t + 1) % SYNC_EVERY == 0 and done.all():
            break
    model.train(was_training)
    n = int(torch.stack(alive).sum())  # the steps before every sequence had finished: one sync
    return ys[:, 1:1 + n]


# ------------------------------------------------------------- training on (source, target) pairs
def transformer_loss(model: Transformer, batch) -> torch.Tensor:
    """Teacher-forced cross-entropy, averaged over real (non-pad) target symbols.

    ``batch = (src (B, S), src_lengths (B,), tgt_in (B, T), tgt_out (B, T))`` -- the format of
    :func:`neuraltext.seq2seq.model.make_batches`, so the transformer trains on the very batches of the
    recurrent model: tgt_in = <bos> y_1 .. y_n, tgt_out = y_1 .. y_n <eos>.
    """
    src, _, tgt_in, tgt_out = batch
    logits = model(src, tgt_in)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=model.cfg.pad_id)
