"""Use case 2, constrained decoding by hand: the allowed-token mask from a regex's partial match.

Greedy decoding picks ``argmax_v p(v | prompt, y_<t)`` over the whole vocabulary; constrained
decoding picks it over the tokens that keep the output *a prefix of some string the key's regular
expression accepts*:

    allowed_t = { v : y_<t + v is a partial match of R }      (+ end of turn iff y_<t fully matches R)
    y_t = argmax_{v in allowed_t} p(v | prompt, y_<t)

The ``regex`` module answers "can this string still become a match?" with
``pattern.fullmatch(s, partial=True)``. Two details of byte-level BPE (GPT-2, Llama 3, SmolLM2):

* a token is a sequence of **bytes**, shown by the tokenizer as printable stand-in characters
  (``Ġ`` for a space): :func:`token_bytes` maps them back;
* a token may end in the middle of a UTF-8 character (``é`` is two bytes, sometimes two tokens): an
  unfinished character is allowed when *some* character it could become keeps the partial match
  (all 64 tried for two-byte characters, which covers French letters; three- and four-byte
  characters are allowed only when a token completes them -- conservative, never wrong).

The pipeline uses the maintained library (``outlines``: it compiles the regex to an automaton over
the vocabulary once, instead of testing every token at every step); this module is for seeing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex
import torch

__all__ = ["token_bytes", "allowed_tokens", "Step", "constrained_greedy"]


def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character of each byte, inverted (the tokenizer's byte alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(tokenizer) -> list[bytes | None]:
    """The bytes of every token id (``None`` for special tokens such as ``<|im_end|>``)."""
    decoder = _byte_decoder()
    special = set(tokenizer.all_special_ids)
    out: list[bytes | None] = []
    for i, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if i in special or piece is None or any(c not in decoder for c in piece):
            out.append(None)
        else:
            out.append(bytes(decoder[c] for c in piece))
    return out


def _complete_text(data: bytes) -> str | None:
    """``data`` decoded up to its last complete UTF-8 character; ``None`` if it is not UTF-8 at all."""
    for cut in range(0, 4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _possible(pattern: regex.Pattern, data: bytes) -> bool:
    """Can ``data`` (bytes, maybe ending mid-character) still grow into a full match of ``pattern``?"""
    try:
        return pattern.fullmatch(data.decode("utf-8"), partial=True) is not None
    except UnicodeDecodeError:
        pass
    for cut in (1, 2, 3):  # split into complete characters + an unfinished one
        head, tail = data[:-cut], data[-cut:]
        need = 2 if 0xC2 <= tail[0] <= 0xDF else 3 if 0xE0 <= tail[0] <= 0xEF else 4 if 0xF0 <= tail[0] <= 0xF4 else 0
        if need <= cut or any(not 0x80 <= b <= 0xBF for b in tail[1:]):
            continue
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if need == 2:  # 64 possible characters: try them all
            return any(pattern.fullmatch(text + bytes([tail[0], c]).decode("utf-8"), partial=True) is not None
                       for c in range(0x80, 0xC0))
        return False  # 3-4 byte characters (’, …, emoji) only as whole tokens: conservative, exact for French
    return False


def allowed_tokens(pattern: regex.Pattern, generated: bytes, vocab: list[bytes | None]) -> list[int]:
    """Token ids ``v`` such that ``generated + vocab[v]`` can still become a full match of ``pattern``."""
    return [i for i, piece in enumerate(vocab) if piece and _possible(pattern, generated + piece)]


@dataclass
class Step:
    """One decoding step: how many tokens were allowed, the free choice and the constrained one."""

    allowed: int
    free_token: str
    chosen_token: str
    text: str


@torch.no_grad()
def constrained_greedy(model, tokenizer, prompt_ids: torch.Tensor, pattern: str, max_new_tokens: int = 16,
                       vocab: list[bytes | None] | None = None, end_id: int | None = None) -> tuple[str, list[Step]]:
    """Greedy decoding under ``pattern``; returns the text and the steps (for display).

    ``end_id``: the end-of-turn token, allowed only when the text is a full match (default: the
    tokenizer's EOS). ``vocab``: :func:`token_bytes` of the tokenizer (pass it to avoid recomputing).
    """
    compiled = regex.compile(pattern)
    vocab = vocab if vocab is not None else token_bytes(tokenizer)
    end_id = tokenizer.eos_token_id if end_id is None else end_id
    generated, steps = b"", []
    out = model(input_ids=prompt_ids, use_cache=True)
    cache, logits = out.past_key_values, out.logits[0, -1]
    for _ in range(max_new_tokens):
        allowed = allowed_tokens(compiled, generated, vocab)
        text = _complete_text(generated) or ""
        if compiled.fullmatch(text) is not None:
            allowed.append(end_id)
        if not allowed:
            break
        mask = torch.full_like(logits, float("-inf"))
        mask[allowed] = 0.0
        choice = int(torch.argmax(logits + mask))
        steps.append(Step(allowed=len(allowed), free_token=tokenizer.decode([int(torch.argmax(logits))]),
                          chosen_token=tokenizer.decode([choice]), text=text))
        if choice == end_id:
            break
        generated += vocab[choice]
        out = model(input_ids=torch.tensor([[choice]], device=prompt_ids.device), past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[0, -1]
    return _complete_text(generated) or "", steps
