"""Tokens: from raw text to integer ids (chapter 1).

* :class:`Vocab` with the special tokens ``<pad> <unk> <s> </s> <mask>``;
* :class:`WordTokenizer` (French-aware words) and :class:`CharTokenizer`;
* :class:`BPETokenizer`: byte pair encoding trained from scratch;
* :class:`TfIdf`: TF-IDF as the course defines it.
"""

from neuraltext.tokenize.bpe import BPETokenizer, pretokenize
from neuraltext.tokenize.simple import CharTokenizer, WordTokenizer, read_tokenizer
from neuraltext.tokenize.tfidf import TfIdf
from neuraltext.vocab import BOS, EOS, MASK, PAD, SPECIAL_TOKENS, UNK, Vocab

__all__ = ["Vocab", "PAD", "UNK", "BOS", "EOS", "MASK", "SPECIAL_TOKENS",
           "WordTokenizer", "CharTokenizer", "BPETokenizer", "pretokenize", "read_tokenizer",
           "TfIdf"]
