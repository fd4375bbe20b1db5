"""Word-level and character-level tokenizers.

The course contrasts two extremes (``Je suis malade``):

* **words**: ``["je", "suis", "malade"]``: meaningful units, but a large vocabulary, no sharing
  between ``malade`` and ``maladie``, and any typo or unseen word becomes ``<unk>``;
* **characters**: ``["j", "e", " ", "s", ...]``: a tiny vocabulary and no unknown words, but
  sequences several times longer and single symbols that carry little meaning.

Both tokenizers here share one interface: ``fit(texts)`` builds the :class:`~neuraltext.tokenize.Vocab`,
``encode(text) -> list[int]``, ``decode(ids) -> str``, ``save``/``load`` (JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from neuraltext.vocab import SPECIAL_TOKENS, UNK, Vocab, read_json

__all__ = ["WordTokenizer", "CharTokenizer", "read_tokenizer"]


class _VocabTokenizer:
    """What word and character tokenizers share: a vocabulary fitted on texts."""

    def __init__(self, lowercase: bool = False, min_freq: int = 1, max_size: int | None = None,
                 specials: Sequence[str] = SPECIAL_TOKENS):
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_size = max_size
        self.specials = tuple(specials)
        self.vocab_: Vocab | None = None

    # subclasses define how text becomes tokens and back
    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def detokenize(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def _config(self) -> dict:
        return {"lowercase": self.lowercase, "min_freq": self.min_freq, "max_size": self.max_size,
                "specials": list(self.specials)}

    # ------------------------------------------------------------------ fitting
    def fit(self, texts: Iterable[str]):
        """Build the vocabulary from an iterable of raw texts; returns ``self``."""
        if isinstance(texts, str):
            raise TypeError("fit expects an iterable of texts (e.g. a list of sentences), not one string")
        seqs = [self.tokenize(t) for t in texts]
        if not any(seqs):
            raise ValueError("cannot fit a tokenizer on an empty corpus (no tokens in the texts)")
        self.vocab_ = Vocab.build(seqs, min_freq=self.min_freq, max_size=self.max_size,
                                  specials=self.specials, unk=UNK if UNK in self.specials else None)
        return self

    @property
    def vocab(self) -> Vocab:
        """The fitted vocabulary (``vocab_``)."""
        if self.vocab_ is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit(texts) first")
        return self.vocab_

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------ encode / decode
    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Text -> ids; unknown tokens -> ``<unk>``; ``add_special_tokens`` wraps in ``<s> ... </s>``."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a string, got {type(text).__name__}")
        ids = self.vocab.encode(self.tokenize(text))
        if add_special_tokens:
            ids = [self.vocab.bos_id, *ids, self.vocab.eos_id]
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Ids -> text. Special tokens are dropped unless ``skip_special_tokens=False``
        (``<unk>`` is always kept: it marks where a word was lost)."""
        tokens = self.vocab.decode(ids)
        if skip_special_tokens:
            drop = set(self.vocab.specials) - {self.vocab.unk}
            tokens = [t for t in tokens if t not in drop]
        return self.detokenize(tokens)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Write configuration and vocabulary as one JSON file."""
        path = Path(path)
        data = {"type": type(self).__name__, "config": self._config(), "vocab": self.vocab.to_dict()}
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path):
        path = Path(path)
        data = read_json(path, "tokenizer")
        for key in ("type", "config", "vocab"):
            if key not in data:
                raise ValueError(f"{path}: tokenizer file lacks the field {key!r}")
        if data["type"] != cls.__name__:
            raise ValueError(f"{path} holds a {data['type']}, not a {cls.__name__}")
        tok = cls(**data["config"])
        tok.vocab_ = Vocab.from_dict(data["vocab"])
        return tok

    def __repr__(self) -> str:
        size = "not fitted" if self.vocab_ is None else f"{len(self.vocab_)} tokens"
        return f"{type(self).__name__}({size})"


# A French-aware word pattern, tried in this order at each position:
#   1. a few words written with an apostrophe inside (aujourd'hui, presqu'île);
#   2. an elided article/pronoun/conjunction, apostrophe kept: l' j' qu' d' jusqu' lorsqu' ...;
#   3. a word: letters, possibly hyphenated (grand-père, rendez-vous, gastro-entérologue);
#   4. a number (3, 12,5, 1.000);
#   5. an ellipsis, or any other single non-space symbol (punctuation) as its own token.
_LETTER = r"[^\W\d_]"
_WORD_RE = re.compile(
    rf"""
    (?:aujourd|presqu|prud)'{_LETTER}+
    | (?:jusqu|lorsqu|puisqu|quoiqu|qu|[cdjlmnst])'(?={_LETTER})
    | {_LETTER}+(?:-{_LETTER}+)*
    | \d+(?:[.,]\d+)*
    | \.\.\.
    | \S
    """,
    re.VERBOSE | re.IGNORECASE,
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2018": "'"})
_NO_SPACE_BEFORE = {".", ",", ")", "]", "}", "...", "%"}
_NO_SPACE_AFTER = {"(", "[", "{"}


class WordTokenizer(_VocabTokenizer):
    """Words, elisions and punctuation as tokens, for French text.

    ``"L'oncle de Léa, aujourd'hui, est fier."`` -> ``["l'", "oncle", "de", "léa", ",",
    "aujourd'hui", ",", "est", "fier", "."]``: hyphenated words stay whole (``grand-père``), the elided
    ``l'``, ``j'``, ``qu'`` ... are split off with their apostrophe, typographic apostrophes (’) are
    read as ``'``, and each punctuation mark is a token. Lower-cases by default.

    ``decode`` rejoins tokens with spaces (none after an elision or before ``. , )``), so it gives back
    the text up to case and spacing, not byte for byte: that is what subword tokenizers fix.
    """

    def __init__(self, lowercase: bool = True, min_freq: int = 1, max_size: int | None = None,
                 specials: Sequence[str] = SPECIAL_TOKENS):
        super().__init__(lowercase, min_freq, max_size, specials)

    def tokenize(self, text: str) -> list[str]:
        text = text.translate(_APOSTROPHES)
        if self.lowercase:
            text = text.lower()
        return _WORD_RE.findall(text)

    def detokenize(self, tokens: list[str]) -> str:
        out: list[str] = []
        for tok in tokens:
            if out and not (tok in _NO_SPACE_BEFORE or out[-1].endswith("'") or out[-1] in _NO_SPACE_AFTER):
                out.append(" ")
            out.append(tok)
        return "".join(out)


class CharTokenizer(_VocabTokenizer):
    """One token per Unicode character (spaces and newlines included).

    ``decode(encode(text)) == text`` for any text whose characters were seen by ``fit``; a
    character never seen becomes ``<unk>``. Case is kept unless ``lowercase=True``.
    """

    def __init__(self, lowercase: bool = False, min_freq: int = 1, max_size: int | None = None,
                 specials: Sequence[str] = SPECIAL_TOKENS):
        super().__init__(lowercase, min_freq, max_size, specials)

    def tokenize(self, text: str) -> list[str]:
        return list(text.lower() if self.lowercase else text)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)


def read_tokenizer(path: str | Path):
    """Read any tokenizer saved by this package (word, character or BPE), whatever its type, from
    the JSON file its ``save`` wrote. (Not :func:`neuraltext.weights.registry.load_tokenizer`, which loads
    a packaged Hugging Face tokenizer by name.)"""
    from neuraltext.tokenize.bpe import BPETokenizer

    path = Path(path)
    kind = read_json(path, "tokenizer").get("type")
    classes = {c.__name__: c for c in (WordTokenizer, CharTokenizer, BPETokenizer)}
    if kind not in classes:
        raise ValueError(f"{path}: unknown tokenizer type {kind!r}; expected one of {sorted(classes)}")
    return classes[kind].load(path)
