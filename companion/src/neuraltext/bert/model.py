"""BERT (Devlin et al., 2019): a stack of post-norm transformer encoder blocks, pre-trained by filling
in masked words, then fine-tuned.

The input of every position is the sum of three learned embeddings, then a layer norm:

    x_0 = LayerNorm(E_tok[w_t] + E_pos[t] + E_seg[s_t])       (s_t = 0 for sentence A, 1 for B)

then ``N`` encoder blocks of chapter 6 (post-norm, GELU, :class:`neuraltext.transformer.model.EncoderBlock`),
each position attending to **every** position, left and right (no causal mask: bidirectional):

    h = LN_1(x + MultiHead(x, x, x));   x' = LN_2(h + W_2 GELU(W_1 h + b_1) + b_2)

Pooler (the [CLS] vector as a summary of the pair): ``p = tanh(W_p h_[CLS] + b_p)``.

The two pre-training objectives of the course (lecture notes, eqs. 6 and 7):

    L_MLM = -(1/|M|) sum_{t in M} log P(w_t | context)      M: the masked positions (15% of tokens)
    P(. | context) = softmax(E_tok LN(GELU(W_T h_t + b_T)) + b)          (decoder tied to E_tok)

    L_NSP = -[y log y_hat + (1 - y) log(1 - y_hat)]    y = 1 if B follows A, y_hat = P(IsNext | p)

BERT-base: hidden size 768, 12 blocks x 12 heads, feed-forward 3,072, 512 positions, a WordPiece
vocabulary of 30,522 tokens: 110M parameters (:func:`count_parameters` recomputes it from a config).

:func:`neuraltext.bert.from_pretrained` (in :mod:`neuraltext.bert.loading`) loads any Hugging Face BERT-architecture checkpoint (safetensors, or
``pytorch_model.bin``) into these modules, checking every key and shape first. The masking and NSP
pairs are in :mod:`neuraltext.bert.pretraining`; classification and sentence embeddings in
:mod:`neuraltext.bert.finetune`. Shapes: ``B`` batch, ``T`` length, ``H`` hidden size, ``V`` vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.transformer.model import EncoderBlock, TransformerConfig, check_ids

__all__ = [
    "BertConfig", "BertEmbeddings", "BertPooler", "BertModel", "BertMLMHead", "BertNSPHead",
    "BertForPreTraining", "BertOutput", "mlm_loss", "nsp_loss", "count_parameters",
]

IGNORE_INDEX = -100  # label of the positions the MLM loss skips (torch's and transformers' convention)


@dataclass
class BertConfig:
    """BERT's sizes; the defaults are BERT-base (uncased). Field names follow the paper;
    :meth:`from_hf` / :meth:`to_hf` translate to and from a transformers ``config.json``."""

    vocab_size: int = 30_522
    hidden_size: int = 768  # H
    n_layers: int = 12  # N encoder blocks
    n_heads: int = 12
    intermediate_size: int = 3_072  # feed-forward hidden size (4 H)
    max_position: int = 512  # context size
    type_vocab_size: int = 2  # segments A and B
    dropout: float = 0.1  # on embeddings, attention weights and every sub-layer output
    norm_eps: float = 1e-12
    pad_id: int = 0
    attention_backend: str = "fused"

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "n_layers", "n_heads", "intermediate_size", "max_position",
                     "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.n_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not a multiple of n_heads={self.n_heads}")
        if isinstance(self.pad_id, bool) or not isinstance(self.pad_id, int) or not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"BertConfig.pad_id must be a token id in [0, {self.vocab_size}) (the vocabulary), "
                             f"got {self.pad_id!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"BertConfig.dropout must be a probability in [0, 1), got {self.dropout!r}")
        if not isinstance(self.norm_eps, (int, float)) or not 0 < self.norm_eps < 1:
            raise ValueError(f"BertConfig.norm_eps must be a small number > 0, got {self.norm_eps!r}")

    def block_config(self) -> TransformerConfig:
        """The chapter-6 block configuration of one BERT layer: post-norm, exact GELU, biases."""
        return TransformerConfig(d_model=self.hidden_size, n_heads=self.n_heads, d_ff=self.intermediate_size,
                                 dropout=self.dropout, activation="gelu", norm_first=False,
                                 norm_eps=self.norm_eps, bias=True, attention_backend=self.attention_backend)

    @classmethod
    def from_hf(cls, cfg: dict) -> "BertConfig":
        """From a transformers BERT ``config.json`` (as a dict)."""
        return cls(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], n_layers=cfg["num_hidden_layers"],
                   n_heads=cfg["num_attention_heads"], intermediate_size=cfg["intermediate_size"],
                   max_position=cfg["max_position_embeddings"], type_vocab_size=cfg.get("type_vocab_size", 2),
                   dropout=cfg.get("hidden_dropout_prob", 0.1), norm_eps=cfg.get("layer_norm_eps", 1e-12),
                   pad_id=cfg.get("pad_token_id") or 0)

    def to_hf(self) -> dict:
        """The same sizes as transformers ``BertConfig`` keyword arguments."""
        return dict(vocab_size=self.vocab_size, hidden_size=self.hidden_size, num_hidden_layers=self.n_layers,
                    num_attention_heads=self.n_heads, intermediate_size=self.intermediate_size,
                    max_position_embeddings=self.max_position, type_vocab_size=self.type_vocab_size,
                    hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.dropout,
                    layer_norm_eps=self.norm_eps, pad_token_id=self.pad_id, hidden_act="gelu")


class BertOutput(NamedTuple):
    last_hidden_state: torch.Tensor  #: (B, T, H)
    pooler_output: torch.Tensor  #: (B, H)
    hidden_states: tuple[torch.Tensor, ...] | None = None  #: N + 1 tensors (B, T, H) when asked


# ------------------------------------------------------------------------------------ modules
class BertEmbeddings(nn.Module):
    """x_0 = LayerNorm(E_tok[w_t] + E_pos[t] + E_seg[s_t]), then dropout."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.token = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_id)
        self.position = nn.Embedding(cfg.max_position, cfg.hidden_size)
        self.segment = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        T = input_ids.shape[1]
        if T > self.position.num_embeddings:
            raise ValueError(f"input_ids has length {T}, more than the model's {self.position.num_embeddings} "
                             f"positions (max_position)")
        check_ids("input_ids", input_ids, self.token.num_embeddings)
        positions = torch.arange(T, device=input_ids.device)  # (T,): absolute positions 0..T-1
        x = self.token(input_ids) + self.position(positions)  # (B, T, H)
        if token_type_ids is None:
            x = x + self.segment.weight[0]  # everything is sentence A
        else:
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(f"token_type_ids {tuple(token_type_ids.shape)} must have the shape of "
                                 f"input_ids {tuple(input_ids.shape)}")
            check_ids("token_type_ids", token_type_ids, self.segment.num_embeddings,
                      "the segments: 0 = sentence A, 1 = sentence B")
            x = x + self.segment(token_type_ids)  # (B, T, H)
        return self.dropout(self.norm(x))


class BertPooler(nn.Module):
    """p = tanh(W_p h_[CLS] + b_p): the first position's final vector, through a dense layer."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(h[:, 0]))  # (B, T, H) -> (B, H)


class BertModel(nn.Module):
    """Embeddings, ``n_layers`` post-norm encoder blocks of chapter 6, pooler.

    ``forward(input_ids (B, T), attention_mask (B, T) 1 = token / 0 = padding, token_type_ids (B, T))``
    returns a :class:`BertOutput`. A model made by :func:`from_pretrained` carries its ``tokenizer``
    and can :meth:`encode` texts into sentence vectors.
    """

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        block = cfg.block_config()
        self.encoder = nn.ModuleList(EncoderBlock(block) for _ in range(cfg.n_layers))
        self.pooler = BertPooler(cfg)
        self.tokenizer: Any = None  # set by from_pretrained
        self.apply(_init_weights)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False) -> BertOutput:
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.long, torch.int):
            raise ValueError(f"input_ids must be integer ids of shape (B, T), got {tuple(input_ids.shape)} "
                             f"{input_ids.dtype}")
        padding = None
        if attention_mask is not None:
            if attention_mask.shape != input_ids.shape:
                raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must have the shape of "
                                 f"input_ids {tuple(input_ids.shape)}")
            # without padding, give attention no mask at all: the fused kernel then takes its
            # mask-free path (transformers does the same). Asked only of CPU tensors: on a GPU the
            # answer is a host sync per forward, so the mask goes through as is there (a caller that
            # knows its batch has no padding passes attention_mask=None)
            if attention_mask.device.type != "cpu" or not bool(attention_mask.all()):
                padding = attention_mask == 0  # (B, T): True at padding, the MultiHeadAttention convention
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        states = [x] if output_hidden_states else None
        for block in self.encoder:
            x = block(x, key_padding_mask=padding)  # (B, T, H)
            if states is not None:
                states.append(x)
        return BertOutput(x, self.pooler(x), tuple(states) if states is not None else None)


class BertMLMHead(nn.Module):
    """P(. | context) = softmax(E_tok LN(GELU(W_T h + b_T)) + b): a transform, then the token
    embedding matrix again as output layer (weight tying: no second V x H matrix)."""

    def __init__(self, cfg: BertConfig, token_embedding: nn.Embedding):
        super().__init__()
        self.transform = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.decoder = token_embedding  # shared, not copied
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = self.norm(F.gelu(self.transform(h)))  # (B, T, H)
        return F.linear(z, self.decoder.weight, self.bias)  # (B, T, V)


class BertNSPHead(nn.Module):
    """Two logits from the pooled vector: index 0 = IsNext, 1 = NotNext (the original layout)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.classifier = nn.Linear(cfg.hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)  # (B, 2)


class BertForPreTraining(nn.Module):
    """BERT with its two pre-training heads: ``forward(...) -> (mlm_logits (B, T, V), nsp_logits (B, 2))``."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.bert = BertModel(cfg)
        self.mlm = BertMLMHead(cfg, self.bert.embeddings.token)
        self.nsp = BertNSPHead(cfg)
        for module in (self.mlm.transform, self.mlm.norm, self.nsp.classifier):
            _init_weights(module)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        return self.mlm(out.last_hidden_state), self.nsp(out.pooler_output)


def _init_weights(module: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases, unit layer norms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ------------------------------------------------------------------------------------- losses
def mlm_loss(mlm_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_MLM = -(1/|M|) sum_{t in M} log P(w_t | context): cross-entropy over the masked positions
    only. ``labels`` (B, T) holds the original token at masked positions and -100 elsewhere.

    A batch with no masked position (|M| = 0: each token is chosen with probability 15%, so a batch of
    short sentences can have none) has nothing to predict: its L_MLM is 0, not the 0/0 = NaN of a plain
    mean (which a training loop would report as a diverging learning rate). The count stays on the
    device: ``sum / max(|M|, 1)``."""
    if mlm_logits.shape[:-1] != labels.shape:
        raise ValueError(f"mlm_logits {tuple(mlm_logits.shape)} and labels {tuple(labels.shape)} must agree on (B, T)")
    flat = labels.reshape(-1)
    total = F.cross_entropy(mlm_logits.reshape(-1, mlm_logits.shape[-1]), flat, ignore_index=IGNORE_INDEX,
                            reduction="sum")
    return total / (flat != IGNORE_INDEX).sum().clamp(min=1)


def nsp_loss(nsp_logits: torch.Tensor, is_next: torch.Tensor) -> torch.Tensor:
    """L_NSP = -[y log y_hat + (1 - y) log(1 - y_hat)], averaged over the batch, with y = ``is_next``
    (B,) and y_hat = softmax(nsp_logits)[IsNext]. With two logits this binary cross-entropy is exactly
    the two-class cross-entropy that BERT's code computes (class 0 = IsNext). ``is_next``: bool, or
    integers 0/1 (floats only if every value is exactly 0 or 1)."""
    if nsp_logits.dim() != 2 or nsp_logits.shape[1] != 2 or is_next.shape != nsp_logits.shape[:1]:
        raise ValueError(f"nsp_logits must be (B, 2) and is_next (B,), got {tuple(nsp_logits.shape)} "
                         f"and {tuple(is_next.shape)}")
    if is_next.is_floating_point() and not bool(((is_next == 0) | (is_next == 1)).all()):
        bad = is_next[(is_next != 0) & (is_next != 1)][0].item()
        raise ValueError(f"is_next must hold 1 (IsNext) or 0 (NotNext) for each pair, got {bad}")
    if is_next.dtype != torch.bool:
        check_ids("is_next", is_next.long(), 2, "1 = IsNext, 0 = NotNext")
    target = 1 - is_next.long()  # y = 1 (IsNext) -> class 0
    return F.cross_entropy(nsp_logits, target)


def count_parameters(cfg: BertConfig, pooler: bool = True) -> int:
    """Number of parameters of a :class:`BertModel` with this config, from the formula (no model built):
    embeddings (V + P + S) H + 2H; per block 4 (H^2 + H) + 2 H F + F + H + 4H; pooler H^2 + H."""
    H, F_, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    embeddings = (V + cfg.max_position + cfg.type_vocab_size) * H + 2 * H
    block = 4 * (H * H + H) + (H * F_ + F_) + (F_ * H + H) + 2 * 2 * H
    return embeddings + cfg.n_layers * block + (H * H + H if pooler else 0)
