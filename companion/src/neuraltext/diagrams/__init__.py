"""Architecture diagrams of the course, drawn with Matplotlib from code.

Every function returns a ``matplotlib.figure.Figure``; a notebook shows it with ``plt.show()`` or
saves it with ``fig.savefig(path)``. The symbols are the chapters' (``h_t``, ``C_t``, ``\\bar h_j``,
``alpha_tj`` ...), so a change of notation is one edit here.

    from neuraltext import diagrams
    diagrams.unrolled_rnn()              # chapter 4, equation (rnn)
    diagrams.lstm_cell()                 # chapter 4, equation (lstm)
    diagrams.gru_cell()                  # chapter 4, equation (gru), reset gate before the product
    diagrams.encoder_decoder_attention() # chapter 5, equations (s2s-alpha), (s2s-context)
    diagrams.transformer_block()         # chapter 6, pre-norm or post-norm encoder block
    diagrams.bert_inputs()               # chapter 7, token + segment + position embeddings
    diagrams.decoder_only_blocks()       # chapter 8, GPT-2 beside the Llama variant
    diagrams.kv_cache()                  # chapter 8, one generation step with a KV cache
    diagrams.rlhf_steps()                # chapter 9, SFT -> reward model -> PPO, and DPO
    diagrams.ddp_diagram()               # appendix A, data-parallel training with torchrun
    diagrams.extraction_pipeline()       # chapter 11, prefix -> key -> validate/ground -> retry -> table
    diagrams.token_mask(tokens, steps)   # chapter 11, constrained decoding's allowed tokens per step

One module per part of the book (:mod:`~neuraltext.diagrams.recurrent`,
:mod:`~neuraltext.diagrams.transformers`, :mod:`~neuraltext.diagrams.training`,
:mod:`~neuraltext.diagrams.clinical`); the drawing helpers
(`box`, `arrow`, `new_figure`, in :mod:`~neuraltext.diagrams.drawing`) are public so that a new
diagram is drawn in the same style.
"""

from neuraltext.diagrams import drawing, recurrent, transformers, training, clinical
from neuraltext.diagrams.drawing import new_figure, box, arrow
from neuraltext.diagrams.recurrent import unrolled_rnn, lstm_cell, gru_cell, encoder_decoder_attention
from neuraltext.diagrams.transformers import transformer_block, bert_inputs, decoder_only_blocks, kv_cache
from neuraltext.diagrams.training import rlhf_steps, ddp_diagram
from neuraltext.diagrams.clinical import extraction_pipeline, token_mask
from neuraltext.diagrams.alignment import ppo_vs_dpo, reward_histograms  # chapter 9

__all__ = ["drawing", "recurrent", "transformers", "training", "new_figure", "box", "arrow", "unrolled_rnn",
           "lstm_cell", "gru_cell", "encoder_decoder_attention", "transformer_block", "bert_inputs",
           "decoder_only_blocks", "kv_cache", "rlhf_steps", "ddp_diagram", "clinical", "extraction_pipeline",
           "token_mask"]
