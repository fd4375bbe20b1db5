"""The transformer (chapter 6).

* :mod:`~neuraltext.transformer.multihead` -- scaled dot-product attention (the readable formula and
  PyTorch's fused kernel), masks, multi-head attention;
* :mod:`~neuraltext.transformer.positions` -- sinusoidal and learned positional encodings;
* :mod:`~neuraltext.transformer.model` -- the encoder and decoder blocks, the encoder-decoder
  :class:`Transformer` and its greedy decoding.
"""

from neuraltext.transformer import multihead, positions, model
from neuraltext.transformer.multihead import (BACKENDS, scaled_dot_product_attention, attention, causal_mask,
                                              padding_mask, MultiHeadAttention, set_attention_backend,
                                              check_heads)
from neuraltext.transformer.positions import (sinusoidal_positional_encoding, SinusoidalPositionalEncoding,
                                              LearnedPositionalEncoding)
from neuraltext.transformer.model import (TransformerConfig, FeedForward, EncoderBlock, DecoderBlock,
                                          Transformer, greedy_decode, from_torch_layer, transformer_loss,
                                          check_token_id, check_ids)

__all__ = ["multihead", "positions", "model", "BACKENDS", "scaled_dot_product_attention", "attention",
           "causal_mask", "padding_mask", "MultiHeadAttention", "set_attention_backend", "check_heads",
           "sinusoidal_positional_encoding", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding",
           "TransformerConfig", "FeedForward", "EncoderBlock", "DecoderBlock", "Transformer",
           "greedy_decode", "from_torch_layer", "transformer_loss", "check_token_id", "check_ids"]
