"""Recurrent networks and language models (chapter 4).

* :mod:`~neuraltext.rnn.cells` -- the RNN, LSTM and GRU cells from the course's equations;
* :mod:`~neuraltext.rnn.layers` -- the layers that unroll a cell over a padded batch, stacked and
  bidirectional, with ``torch.nn``'s interface;
* :mod:`~neuraltext.rnn.lm` -- a language model around a recurrent layer: batches of a token stream,
  perplexity, sampling;
* :mod:`~neuraltext.rnn.torch_weights` -- the mapping to and from ``torch.nn.LSTM/GRU/RNN`` weights,
  which the reference tests use.

The hand-written backward pass through time that ``LSTM`` uses by default is
:mod:`neuraltext.fast.bptt`, explained in the performance appendix.
"""

from neuraltext.rnn import cells, layers, lm, torch_weights
from neuraltext.rnn.cells import (RNNCell, LSTMCell, GRUCell)
from neuraltext.rnn.layers import (RNN, LSTM, GRU, lengths_from_mask)
from neuraltext.rnn.lm import (lm_windows, LMBatches, LMConfig, RNNLM, lm_loss, perplexity,
                               perplexity_from_log_probs, evaluate_perplexity, sample, temperature_probs,
                               hidden_gradient_norms, gradient_vs_distance)
from neuraltext.rnn.torch_weights import (permute_blocks, cell_from_torch, cell_to_torch, module_from_torch,
                                          module_to_torch)

__all__ = ["cells", "layers", "lm", "torch_weights", "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU",
           "lengths_from_mask", "lm_windows", "LMBatches", "LMConfig", "RNNLM", "lm_loss", "perplexity",
           "perplexity_from_log_probs", "evaluate_perplexity", "sample", "temperature_probs",
           "hidden_gradient_norms", "gradient_vs_distance", "permute_blocks", "cell_from_torch",
           "cell_to_torch", "module_from_torch", "module_to_torch"]
