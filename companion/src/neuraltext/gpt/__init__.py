"""Decoder-only language models (chapter 8).

* :mod:`~neuraltext.gpt.model` -- a GPT from the chapter 6 blocks, with a causal mask;
* :mod:`~neuraltext.gpt.llama` -- the Llama family's block (RMSNorm, rotary positions, SwiGLU,
  grouped-query attention), which runs the packaged SmolLM2-135M-Instruct;
* :mod:`~neuraltext.gpt.sampling` -- the next-token distribution, temperature, top-k, top-p, and
  :func:`generate` with a KV cache.
"""

from neuraltext.gpt import sampling, model, llama
from neuraltext.gpt.sampling import (apply_temperature, top_k_filter, top_p_filter, filter_logits,
                                     sample_next, default_position_ids, next_token_distribution, top_tokens,
                                     generate, pad_left)
from neuraltext.gpt.model import (GPTConfig, CausalSelfAttention, Block, GPT, attention_mask_for, gpt_loss)
from neuraltext.gpt.llama import (LlamaConfig, RMSNorm, RotaryEmbedding, SwiGLU, GroupedQueryAttention,
                                  LlamaBlock, Llama, config_from_hf, load_hf_state_dict, from_pretrained)

__all__ = ["sampling", "model", "llama", "apply_temperature", "top_k_filter", "top_p_filter",
           "filter_logits", "sample_next", "default_position_ids", "next_token_distribution", "top_tokens",
           "generate", "pad_left", "GPTConfig", "CausalSelfAttention", "Block", "GPT", "attention_mask_for",
           "gpt_loss", "LlamaConfig", "RMSNorm", "RotaryEmbedding", "SwiGLU", "GroupedQueryAttention",
           "LlamaBlock", "Llama", "config_from_hf", "load_hf_state_dict", "from_pretrained"]
