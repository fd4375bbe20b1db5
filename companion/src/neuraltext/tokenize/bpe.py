"""Byte Pair Encoding (Sennrich et al., 2016), trained from scratch.

The course's recipe: *start with one token per character, count every pair of adjacent tokens,
merge the most frequent pair into a new token, repeat* until the vocabulary has the size you asked
for. Frequent words end up as single tokens, rare words as a few pieces, and no word is ever
unknown.

Training, step by step (``merges_`` records the pairs in order, ``merge_counts_`` their counts):

1. *Pre-tokenize*: cut the text into chunks with :data:`PATTERN` (a word with the space before
   it, a number, a run of punctuation, or whitespace). Merges never cross a chunk boundary, so
   ``" le"`` can become one token but ``"e l"`` cannot. The chunks cover the text exactly.
2. *Alphabet*: every character seen, sorted by code point, gets an id after the special tokens
   (and after the 256 byte tokens ``<0x00>`` ... ``<0xFF>`` when ``byte_fallback=True``).
3. *Merge*: the pair ``(a, b)`` with the largest count

   $$ (a, b)^\\star = \\arg\\max_{(a, b)} \\sum_{w} n_w \\, \\#\\{i : w_i = a, w_{i+1} = b\\} $$

   (``n_w`` = how often chunk ``w`` occurs; ties go to the smallest ids) becomes the token ``ab``;
   stop at ``vocab_size`` tokens or when the best count falls below ``min_frequency``.

Encoding a chunk applies the learned merges in the order they were learned (lowest rank first).
With ``byte_fallback=True`` a character never seen in training is written as its UTF-8 bytes
(``"€"`` -> ``<0xE2> <0x82> <0xAC>``), so ``decode(encode(text)) == text`` for *any* text.

These choices are those of the Hugging Face ``tokenizers`` BPE trainer (alphabet sorted by code
point, ties to the smallest pair of ids), so on the same pre-tokenization both learn the same
merges: ``tests/test_bpe.py`` checks it.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from neuraltext.vocab import SPECIAL_TOKENS, UNK, Vocab, read_json

__all__ = ["BPETokenizer", "PATTERN", "pretokenize", "byte_token", "train_hf_bpe"]

#: Pre-tokenization: letters with an optional leading space, digits likewise, other symbols
#: likewise, then whitespace (a run of spaces leaves its last space to the next word). Every
#: character falls in exactly one chunk.
PATTERN = r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"
_PATTERN_RE = re.compile(PATTERN)


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into the chunks BPE works inside; ``"".join(chunks) == text``."""
    return _PATTERN_RE.findall(text)


def byte_token(b: int) -> str:
    """The byte-fallback token for byte ``b`` (``<0xE9>``), spelled as in ``tokenizers``."""
    return f"<0x{b:02X}>"


_BYTE_TOKENS = [byte_token(b) for b in range(256)]


class BPETokenizer:
    """Byte Pair Encoding tokenizer: ``train`` (alias ``fit``), ``encode``, ``decode``, ``save``/``load``.

    Args:
        vocab_size: total size of the vocabulary to reach, special (and byte) tokens included.
        min_frequency: stop merging when the most frequent pair occurs fewer times than this.
        byte_fallback: add the 256 byte tokens so unseen characters are encoded as UTF-8 bytes
            (exact round trip on any text); without it they become ``<unk>``.
        specials: special tokens, given the first ids.

    Learned attributes: ``vocab_`` (a :class:`Vocab`), ``alphabet_`` (the characters seen),
    ``merges_`` (list of ``(left, right)`` strings, in the order learned) and ``merge_counts_``.
    """

    def __init__(self, vocab_size: int = 1000, min_frequency: int = 2, byte_fallback: bool = True,
                 specials: Sequence[str] = SPECIAL_TOKENS):
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.byte_fallback = byte_fallback
        self.specials = tuple(specials)
        self.vocab_: Vocab | None = None
        self.alphabet_: list[str] = []
        self.merges_: list[tuple[str, str]] = []
        self.merge_counts_: list[int] = []

    # ------------------------------------------------------------------ training
    def train(self, texts: Iterable[str]) -> "BPETokenizer":
        """Learn the alphabet and the merges from an iterable of texts; returns ``self``.

        Count the pre-tokenized chunks, start from their characters, then repeatedly merge the most
        frequent adjacent pair (ties: the smallest pair of ids) until ``vocab_size`` symbols exist or
        no pair occurs ``min_frequency`` times."""
        if isinstance(texts, str):
            raise TypeError("train expects an iterable of texts (e.g. a list of lines), not one string")
        if self.min_frequency < 1:
            raise ValueError(f"min_frequency must be >= 1, got {self.min_frequency}")
        chunk_counts: Counter[str] = Counter()
        for text in texts:
            chunk_counts.update(pretokenize(text))
        if not chunk_counts:
            raise ValueError("cannot train BPE on an empty corpus (no characters in the texts)")
        itos, stoi, alphabet = self._initial_symbols(chunk_counts)
        merges, merge_counts = self._learn_merges(chunk_counts, itos, stoi)
        self.alphabet_ = alphabet
        self.merges_ = merges
        self.merge_counts_ = merge_counts
        self.vocab_ = Vocab(itos[len(self.specials):], specials=self.specials,
                            unk=UNK if UNK in self.specials else None)
        self._prepare()
        return self

    def _initial_symbols(self, chunk_counts: Counter[str]) -> tuple[list[str], dict[str, int], list[str]]:
        """Ids before any merge: specials, byte tokens, then the alphabet sorted by code point."""
        itos = list(self.specials) + (_BYTE_TOKENS if self.byte_fallback else [])
        alphabet = sorted({c for chunk in chunk_counts for c in chunk})
        if len(itos) + len(alphabet) > self.vocab_size:
            raise ValueError(
                f"vocab_size={self.vocab_size} is too small: the special tokens"
                f"{' and 256 byte tokens' if self.byte_fallback else ''} and the {len(alphabet)} "
                f"characters of the corpus already need {len(itos) + len(alphabet)}")
        stoi = {t: i for i, t in enumerate(itos)}
        for c in alphabet:
            if c not in stoi:
                stoi[c] = len(itos)
                itos.append(c)
        return itos, stoi, alphabet

    def _learn_merges(self, chunk_counts: Counter[str], itos: list[str], stoi: dict[str, int]):
        """The merge loop; grows ``itos``/``stoi`` in place, returns (merges, their counts)."""
        # each distinct chunk as a list of ids, with its count n_w; every pair's count and chunks
        words = [[stoi[c] for c in chunk] for chunk in chunk_counts]
        counts = list(chunk_counts.values())
        pair_counts: defaultdict[tuple[int, int], int] = defaultdict(int)
        where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
        for w, (ids, n) in enumerate(zip(words, counts)):
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += n
                where[pair].add(w)
        # max-heap on count, ties to the smallest pair of ids (entries may be stale: see below)
        heap = [(-c, pair) for pair, c in pair_counts.items()]
        heapq.heapify(heap)
        merges: list[tuple[str, str]] = []
        merge_counts: list[int] = []
        while len(itos) < self.vocab_size and heap:
            neg, pair = heapq.heappop(heap)
            count = pair_counts.get(pair, 0)
            if -neg != count:  # stale: counts only ever go down, so re-queue with the true count
                if count > 0:
                    heapq.heappush(heap, (-count, pair))
                continue
            if count < self.min_frequency:
                break
            a, b = pair
            new = itos[a] + itos[b]
            new_id = stoi.get(new)
            if new_id is None:  # the same string can come from two different pairs
                new_id = stoi[new] = len(itos)
                itos.append(new)
            merges.append((itos[a], itos[b]))
            merge_counts.append(count)
            for p in _apply_merge(words, counts, pair_counts, where, pair, new_id):
                if pair_counts[p] > 0:  # new pairs enter the queue with their full count
                    heapq.heappush(heap, (-pair_counts[p], p))
        return merges, merge_counts

    fit = train

    def _prepare(self) -> None:
        """Build the lookups encoding needs: merge ranks by id pair, and a chunk cache."""
        stoi = self.vocab.stoi
        self._ranks = {(stoi[a], stoi[b]): (rank, stoi[a + b]) for rank, (a, b) in enumerate(self.merges_)}
        self._cache: dict[str, list[int]] = {}

    # ------------------------------------------------------------------ encoding
    @property
    def vocab(self) -> Vocab:
        if self.vocab_ is None:
            raise RuntimeError("this BPETokenizer is not trained yet: call train(texts) first")
        return self.vocab_

    def __len__(self) -> int:
        return len(self.vocab)

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = self._cache.get(chunk)
        if ids is not None:
            return ids
        stoi = self.vocab.stoi
        ids = []
        for c in chunk:
            i = stoi.get(c)
            if i is not None:
                ids.append(i)
            elif self.byte_fallback:
                ids.extend(stoi[byte_token(b)] for b in c.encode("utf-8"))
            else:
                ids.append(self.vocab[c])  # <unk>, or KeyError without one
        ranks = self._ranks
        while len(ids) > 1:
            # the pair learned earliest among those present
            best = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, (1 << 62,))[0])
            if best not in ranks:
                break
            ids = _merge(ids, best[0], best[1], ranks[best][1])
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Text -> ids (``add_special_tokens`` wraps them in ``<s> ... </s>``)."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a string, got {type(text).__name__}")
        vocab = self.vocab
        ids = [i for chunk in pretokenize(text) for i in self._encode_chunk(chunk)]
        if add_special_tokens:
            ids = [vocab.bos_id, *ids, vocab.eos_id]
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings (handy to look at the pieces)."""
        return self.vocab.decode(self.encode(text))

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Ids -> text: concatenate the token strings, byte tokens decoded as UTF-8 together
        (an invalid byte sequence, which ``encode`` never produces, becomes U+FFFD)."""
        vocab = self.vocab
        specials = set(vocab.specials)
        byte_ids = {vocab.stoi[t]: int(t[3:5], 16) for t in _BYTE_TOKENS if t in vocab.stoi}
        out: list[str] = []
        pending = bytearray()
        for tok_id in ids:
            tok_id = int(tok_id)
            if tok_id in byte_ids:
                pending.append(byte_ids[tok_id])
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            tok = vocab.decode([tok_id])[0]
            if skip_special_tokens and tok in specials and tok != vocab.unk:
                continue
            out.append(tok)
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)

    def compression(self, texts: Iterable[str]) -> float:
        """Characters per token over ``texts`` (higher = shorter sequences)."""
        n_chars = n_tokens = 0
        for t in texts:
            n_chars += len(t)
            n_tokens += len(self.encode(t))
        return n_chars / max(n_tokens, 1)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Write configuration, vocabulary and merges as one JSON file."""
        path = Path(path)
        data = {
            "type": type(self).__name__,
            "config": {"vocab_size": self.vocab_size, "min_frequency": self.min_frequency,
                       "byte_fallback": self.byte_fallback, "specials": list(self.specials)},
            "alphabet": self.alphabet_,
            "merges": [list(m) for m in self.merges_],
            "merge_counts": self.merge_counts_,
            "vocab": self.vocab.to_dict(),
        }
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        path = Path(path)
        data = read_json(path, "tokenizer")
        for key in ("type", "config", "alphabet", "merges", "vocab"):
            if key not in data:
                raise ValueError(f"{path}: BPE file lacks the field {key!r}")
        if data["type"] != cls.__name__:
            raise ValueError(f"{path} holds a {data['type']}, not a {cls.__name__}")
        tok = cls(**data["config"])
        tok.alphabet_ = list(data["alphabet"])
        tok.merges_ = [tuple(m) for m in data["merges"]]
        tok.merge_counts_ = list(data.get("merge_counts", []))
        tok.vocab_ = Vocab.from_dict(data["vocab"])
        for a, b in tok.merges_:
            if a + b not in tok.vocab_.stoi:
                raise ValueError(f"{path}: merge ({a!r}, {b!r}) produces a token missing from the vocabulary")
        tok._prepare()
        return tok

    def __repr__(self) -> str:
        if self.vocab_ is None:
            return f"BPETokenizer(vocab_size={self.vocab_size}, not trained)"
        return (f"BPETokenizer({len(self.vocab_)} tokens: {len(self.alphabet_)} characters, "
                f"{len(self.merges_)} merges)")


def _apply_merge(words: list[list[int]], counts: list[int], pair_counts: dict, where: dict,
                 pair: tuple[int, int], new_id: int) -> set[tuple[int, int]]:
    """Merge ``pair`` into ``new_id`` in every chunk that has it, keeping the pair counts (weighted
    by each chunk's count) and the pair -> chunks index up to date. Returns the new pairs made."""
    touched: set[tuple[int, int]] = set()
    for w in where.pop(pair):
        old = words[w]
        merged = _merge(old, pair[0], pair[1], new_id)
        if len(merged) == len(old):
            continue
        n = counts[w]
        for p in zip(old, old[1:]):
            pair_counts[p] -= n
        for p in zip(merged, merged[1:]):
            pair_counts[p] += n
            if new_id in p:
                where[p].add(w)
                touched.add(p)
        words[w] = merged
    pair_counts.pop(pair, None)
    return touched


def _merge(ids: list[int], a: int, b: int, new_id: int) -> list[int]:
    """Replace every non-overlapping ``a b`` (left to right) in ``ids`` by ``new_id``."""
    out = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_hf_bpe(texts: Iterable[str], vocab_size: int = 1000, min_frequency: int = 2,
                 byte_fallback: bool = True, specials: Sequence[str] = SPECIAL_TOKENS):
    """The reference: a Hugging Face ``tokenizers`` BPE set up like :class:`BPETokenizer`.

    Same pre-tokenization (``Split`` on :data:`PATTERN`, matches kept), same special tokens first,
    the 256 byte tokens next when ``byte_fallback``, same ``vocab_size`` and ``min_frequency``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE(byte_fallback=byte_fallback, unk_token=UNK if UNK in specials else None))
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(PATTERN), behavior="isolated")
    hf.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    extra = _BYTE_TOKENS if byte_fallback else []
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=list(specials) + extra)
    hf.train_from_iterator(texts, trainer)
    return hf
