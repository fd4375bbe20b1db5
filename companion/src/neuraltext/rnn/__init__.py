"""Recurrent networks and language models (chapter 4).

* :mod:`~neuraltext.rnn.cells` -- the RNN, LSTM and GRU cells from the course's equations, and the
  layers that unroll them over a padded batch;
* :mod:`~neuraltext.rnn.lm` -- a language model around a recurrent layer: batches of a token stream,
  perplexity, sampling;
* :mod:`~neuraltext.rnn.torch_weights` -- the mapping to and from ``torch.nn.LSTM/GRU/RNN`` weights,
  which the reference tests use.

The hand-written backward pass through time that ``LSTM`` uses by default is
:mod:`neuraltext.fast.bptt`, explained in the performance appendix.
"""

from neuraltext.rnn import cells, lm, torch_weights
from neuraltext.rnn.cells import (RNNCell, LSTMCell, GRUCell, RNN, LSTM, GRU, LSTMLayerBPTT, lstm_layer_bptt,
                                  lengths_from_mask)
from neuraltext.rnn.lm import (lm_windows, LMBatches, LMConfig, RNNLM, lm_loss, perplexity,
                               perplexity_from_log_probs, evaluate_perplexity, sample, temperature_probs,
                               hidden_gradient_norms, gradient_vs_distance)
from neuraltext.rnn.torch_weights import (cell_from_torch, cell_to_torch, module_from_torch, module_to_torch)

__all__ = ["cells", "lm", "torch_weights", "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU",
           "LSTMLayerBPTT", "lstm_layer_bptt", "lengths_from_mask", "lm_windows", "LMBatches", "LMConfig",
           "RNNLM", "lm_loss", "perplexity", "perplexity_from_log_probs", "evaluate_perplexity", "sample",
           "temperature_probs", "hidden_gradient_norms", "gradient_vs_distance", "cell_from_torch",
           "cell_to_torch", "module_from_torch", "module_to_torch"]
