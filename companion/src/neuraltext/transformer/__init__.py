"""The transformer (chapter 6).

* :mod:`~neuraltext.transformer.multihead` -- scaled dot-product attention (the readable formula and
  PyTorch's fused kernel), masks, multi-head attention;
* :mod:`~neuraltext.transformer.model` -- positional encodings, the encoder and decoder blocks, the
  encoder-decoder :class:`Transformer` and its greedy decoding.
"""

from neuraltext.transformer import multihead, model
from neuraltext.transformer.multihead import (BACKENDS, scaled_dot_product_attention, attention, causal_mask,
                                              padding_mask, MultiHeadAttention, set_attention_backend,
                                              check_heads)
from neuraltext.transformer.model import (TransformerConfig, sinusoidal_positional_encoding,
                                          SinusoidalPositionalEncoding, LearnedPositionalEncoding,
                                          FeedForward, EncoderBlock, DecoderBlock, Transformer,
                                          greedy_decode, from_torch_layer, transformer_loss, check_token_id)

__all__ = ["multihead", "model", "BACKENDS", "scaled_dot_product_attention", "attention", "causal_mask",
           "padding_mask", "MultiHeadAttention", "set_attention_backend", "check_heads", "TransformerConfig",
           "sinusoidal_positional_encoding", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding",
           "FeedForward", "EncoderBlock", "DecoderBlock", "Transformer", "greedy_decode", "from_torch_layer",
           "transformer_loss", "check_token_id"]
