"""A vocabulary: the table that turns tokens into integer ids and back.

Every model in the course reads integers, not strings. A ``Vocab`` is two lookups kept in step,

* ``itos``: id -> token (a list: the id is the position),
* ``stoi``: token -> id (a dict),

plus the special tokens the course names (the ids 0..4 by default):

========== =====================================================================
``<pad>``  fills short sequences so a batch is rectangular (and is masked out)
``<unk>``  stands for every token that is not in the table
``<s>``    start of a sequence
``</s>``   end of a sequence
``<mask>`` the hidden token a masked language model must guess (chapter 7)
========== =====================================================================

Ordinary tokens follow the specials, most frequent first (ties in alphabetical order), so the
same corpus always gives the same ids.

This one class serves every chapter: the word and subword tokenizers (chapter 1), the count-based
and word2vec vocabularies (chapters 2-3, built with no specials) and the character vocabularies of
the date task (chapters 5-6, :meth:`Vocab.from_characters`, which encode a string character by
character and decode back to a string). The special tokens and their ids are the same everywhere.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["Vocab", "PAD", "UNK", "BOS", "EOS", "MASK", "SPECIAL_TOKENS"]

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<s>", "</s>", "<mask>"
#: The special tokens, in the order they receive ids 0, 1, 2, 3, 4.
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS, MASK)


class Vocab:
    """Token <-> id table with special tokens and unknown-token handling.

    Args:
        tokens: the ordinary tokens, in id order (after the specials). Duplicates and tokens equal
            to a special are ignored.
        specials: special tokens, given the first ids in this order.
        unk: the token unknown words map to (must be one of ``specials``); ``None`` makes encoding an
            unknown token an error.

    Build one from data with :meth:`Vocab.build`.
    """

    def __init__(self, tokens: Iterable[str] = (), specials: Sequence[str] = SPECIAL_TOKENS,
                 unk: str | None = UNK, characters: bool = False):
        specials = list(specials)
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials contain duplicates: {specials}")
        if unk is not None and unk not in specials:
            raise ValueError(f"unk token {unk!r} must be one of the specials {specials}")
        self.specials: list[str] = specials
        self.unk: str | None = unk
        #: a character vocabulary: ``encode`` takes a string, ``decode`` returns one
        self.characters: bool = bool(characters)
        self.itos: list[str] = list(specials)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        #: token frequencies seen by :meth:`build` (empty for a hand-made vocabulary)
        self.counts: dict[str, int] = {}
        for tok in tokens:
            if not isinstance(tok, str):
                raise TypeError(f"tokens must be strings, got {type(tok).__name__}: {tok!r}")
            if characters and len(tok) != 1:
                raise ValueError(f"a character vocabulary holds single characters, got {tok!r}")
            if tok not in self.stoi:
                self.stoi[tok] = len(self.itos)
                self.itos.append(tok)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = SPECIAL_TOKENS, unk: str | None = UNK) -> "Vocab":
        """Count tokens over ``sequences`` (an iterable of token lists) and keep the frequent ones.

        Args:
            sequences: e.g. ``[["je", "suis", "malade"], ["je", "vais", "bien"]]``.
            min_freq: drop tokens seen fewer times than this.
            max_size: keep at most this many tokens *in total*, specials included
                (the most frequent ordinary tokens win; ties are broken alphabetically).
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(specials):
            raise ValueError(f"max_size={max_size} is smaller than the {len(specials)} special tokens")
        counts: Counter[str] = Counter()
        for i, seq in enumerate(sequences):
            if isinstance(seq, str):
                raise TypeError(
                    f"sequence {i} is a string ({seq[:30]!r}); Vocab.build expects token lists, "
                    "e.g. [text.split()] for words or [list(text)] for characters")
            counts.update(seq)
        for s in specials:
            counts.pop(s, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        vocab = cls(kept, specials=specials, unk=unk)
        vocab.counts = {t: counts[t] for t in kept}
        return vocab

    @classmethod
    def from_characters(cls, chars: str, specials: Sequence[str] = SPECIAL_TOKENS,
                        unk: str | None = UNK) -> "Vocab":
        """A vocabulary of single characters from a fixed alphabet (not learned from data, so the ids
        stay the same across seeds and splits), e.g. the date task's ``"0123456789-"``.

        ``encode("2017")`` reads the string character by character; ``decode`` returns a string,
        stopping at the first ``</s>`` and skipping ``<pad>``/``<s>``.
        """
        if not isinstance(chars, str):
            raise TypeError(f"chars must be a string of characters, got {type(chars).__name__}")
        return cls(dict.fromkeys(chars), specials=specials, unk=unk, characters=True)

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        """The id of ``token`` (the ``<unk>`` id if it is unknown)."""
        idx = self.stoi.get(token)
        if idx is not None:
            return idx
        if self.unk is None:
            raise KeyError(f"token {token!r} is not in the vocabulary ({len(self)} tokens) and it has no unk token")
        return self.stoi[self.unk]

    def __iter__(self):
        return iter(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.itos, self.specials, self.unk, self.characters) == (
            other.itos, other.specials, other.unk, other.characters)

    def __repr__(self) -> str:
        head = ", ".join(self.itos[len(self.specials):len(self.specials) + 5])
        kind = "characters" if self.characters else "tokens"
        return f"Vocab({len(self)} {kind}: specials {self.specials}, then {head}, ...)"

    def _special_id(self, token: str) -> int:
        if token not in self.stoi:
            raise KeyError(f"{token!r} is not in this vocabulary's specials {self.specials}")
        return self.stoi[token]

    @property
    def pad_id(self) -> int:
        return self._special_id(PAD)

    @property
    def unk_id(self) -> int:
        return self._special_id(UNK if self.unk is None else self.unk)

    @property
    def bos_id(self) -> int:
        return self._special_id(BOS)

    @property
    def eos_id(self) -> int:
        return self._special_id(EOS)

    @property
    def mask_id(self) -> int:
        return self._special_id(MASK)

    # ------------------------------------------------------------------ encode / decode
    def encode(self, tokens: Iterable[str], bos: bool = False, eos: bool = False) -> list[int]:
        """Token list -> id list; unknown tokens become the ``<unk>`` id. ``bos``/``eos`` add ``<s>``
        before and ``</s>`` after. A character vocabulary also takes a string (one token per
        character)."""
        if isinstance(tokens, str) and not self.characters:
            raise TypeError("Vocab.encode expects a list of tokens, not a string; "
                            "use a tokenizer's encode() for raw text")
        ids = [self[t] for t in tokens]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int], skip_specials: bool = False) -> list[str] | str:
        """Id list -> token list (``skip_specials`` drops ``<pad>``, ``<s>`` ...).

        A character vocabulary returns a string instead: the characters up to the first ``</s>``,
        without ``<pad>``, ``<s>`` and ``<mask>`` (what a decoder's output means)."""
        n = len(self.itos)
        skip = set(self.specials) if skip_specials else set()
        stop = None
        if self.characters:
            skip = {t for t in (PAD, BOS, MASK) if t in self.stoi} | skip - {self.unk}
            stop = self.stoi.get(EOS)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise IndexError(f"id {i} is outside the vocabulary (0..{n - 1})")
            if i == stop:
                break
            tok = self.itos[i]
            if tok not in skip:
                out.append(tok)
        return "".join(out) if self.characters else out

    def batch(self, sequences: Sequence, bos: bool = False, eos: bool = False, device=None):
        """Encode and pad a batch: ``ids`` (B, T) long, padded with ``<pad>``, and ``lengths`` (B,)
        long. ``sequences``: token lists (or strings, for a character vocabulary)."""
        import torch
        from torch.nn.utils.rnn import pad_sequence

        if len(sequences) == 0:
            raise ValueError("Vocab.batch: empty batch (no sequences)")
        seqs = [torch.tensor(self.encode(s, bos=bos, eos=eos), dtype=torch.long) for s in sequences]
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        ids = pad_sequence(seqs, batch_first=True, padding_value=self.pad_id)
        return ids.to(device), lengths.to(device)

    # ------------------------------------------------------------------ save / load
    def to_dict(self) -> dict:
        d = {"itos": self.itos, "specials": self.specials, "unk": self.unk}
        if self.characters:  # only then: word vocabularies keep the file format they always had
            d["characters"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        missing = {"itos", "specials", "unk"} - set(d)
        if missing:
            raise ValueError(f"vocabulary data lacks the field(s) {sorted(missing)}")
        specials = list(d["specials"])
        if list(d["itos"][: len(specials)]) != specials:
            raise ValueError("vocabulary data is inconsistent: itos must start with the specials")
        return cls(d["itos"][len(specials):], specials=specials, unk=d["unk"],
                   characters=bool(d.get("characters", False)))

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON (UTF-8, human-readable)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        path = Path(path)
        data = read_json(path, "vocabulary")
        try:
            return cls.from_dict(data)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def read_json(path: Path, what: str) -> dict:
    """Read a JSON object written by ``save``; every error names the file (and the line when there
    is one), whatever went wrong: missing file, bytes that are not UTF-8, broken JSON, or JSON that is
    not an object. Shared by the vocabulary and the tokenizers."""
    from neuraltext.data.files import read_text  # here, not at the top: neuraltext.data imports Vocab

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} file at {path}")
    text = read_text(path)  # TextFileError (a ValueError) with file, line and column for bad bytes
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}, line {e.lineno}, column {e.colno}: not valid JSON ({e.msg}); "
                         f"expected a {what} saved by neuraltext") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object (a {what} saved by neuraltext), "
                         f"got a JSON {type(data).__name__}")
    return data
