"""Use case 2, the study's method: one key at a time, a short pass, a 4x retry pass, one final state.

The lecture's study (about 500,000 patient records at Gustave Roussy, local 70B+ models on 8 H100s):

* one prompt per report type, and the output keys **asked separately** rather than "fill this
  dictionary" -- each answer is short, parsed and checked on its own;
* every report first processed within a **3,072-token context** (about 40 s a report; 99% of the
  reports fit), then a **second pass with 4x the context** for the reports that failed.

:class:`Extractor` runs that method over any *backend* -- an object with ``name``,
``max_context`` (tokens, or ``None``: the backend has no context limit, reads any report whole and
ignores ``context``, as the rules do), and ``answer(report, key, context) -> (raw, truncated)`` that
raises :class:`ContextTooLong` when the prompt does not fit ``context``:
:class:`~neuraltext.clinical.rules.RulesBackend` (regular expressions),
:class:`~neuraltext.clinical.llm.TransformersBackend` (a local causal LM, free or
constrained) or :class:`~neuraltext.clinical.served.ServedBackend` (an OpenAI-compatible
server inside the hospital).

The context is **scaled** to the backend: the first pass uses ``min(3072, max_context / 4)`` tokens so
that the retry pass, 4x larger, still fits the model (SmolLM2: 8,192 -> passes of 2,048 and 8,192);
the ratio 4 is the study's. Each answer goes through :func:`parse_answer` and
:func:`grounding_problem`; keys whose answer is malformed are asked again in the retry pass. Every
report ends in exactly one state:

* ``extracted`` -- every key parsed and grounded;
* ``extracted_with_flags`` -- some values flagged (possible hallucination), not found, or failed;
* ``failed`` -- no key has a value, with a reason (too long for the retry context, no key parsed,
  unknown report type).

**Retryable and final errors.** A backend that *cannot answer now* -- connection refused, a timeout,
an HTTP 5xx, CUDA out of memory, any ``RuntimeError`` (:func:`is_retryable`) -- says nothing about
the report: :meth:`Extractor.extract` raises :class:`BackendUnavailable` instead of recording a key
as failed, and the pipeline tries the report again (with back-off, then on the next run). Everything
else is final and recorded: a malformed or ungrounded answer, a report too long after the retry
pass, bad input, or an exception of another kind from the backend (a ``ValueError``, a ``KeyError``:
a bug or bad input, which trying again would not change).

Reasons and flags never quote the report: a record holds its id, values and short reasons only.
"""

from __future__ import annotations

import re
import time
import urllib.error
from dataclasses import dataclass

from neuraltext.clinical.schema import KEYS
from neuraltext.clinical.validate import InvalidAnswer, grounding_problem, parse_answer

__all__ = ["STUDY_CONTEXT", "RETRY_FACTOR", "ContextTooLong", "BackendUnavailable", "is_retryable", "ExtractConfig",
           "Extractor", "STATES"]

STUDY_CONTEXT = 3072
RETRY_FACTOR = 4
STATES = ("extracted", "extracted_with_flags", "failed")


class ContextTooLong(Exception):
    """The prompt of a report does not fit the pass's context (carries token counts, never text)."""

    def __init__(self, needed: int | None, context: int):
        size = f"of {needed} tokens " if needed is not None else ""
        super().__init__(f"prompt {size}does not fit a {context}-token context")
        self.needed, self.context = needed, context


class BackendUnavailable(Exception):
    """The backend could not answer a key for a transient reason: try the whole report again later.
    Carries the key and the exception's type, never its message (which may quote the report)."""

    def __init__(self, key: str, error: BaseException):
        self.key, self.kind = key, type(error).__name__
        super().__init__(f"backend unavailable on key {key!r} ({self.kind})")


def _http_status(error: BaseException) -> int | None:
    status = getattr(error, "status", None) or getattr(error, "code", None)
    if isinstance(status, int):
        return status
    m = re.search(r"\bHTTP (\d{3})\b", str(error))  # e.g. ServedBackend's "server answered HTTP 503"
    return int(m.group(1)) if m else None


def is_retryable(error: BaseException) -> bool:
    """Worth trying again later? An explicit ``error.retryable`` decides; an HTTP status decides next
    (5xx, 408 and 429 yes; other 4xx no); then connection errors, timeouts, ``RuntimeError`` (CUDA out of
    memory is one) and ``MemoryError`` are retryable, any other exception is final."""
    flag = getattr(error, "retryable", None)
    if flag is not None:
        return bool(flag)
    status = _http_status(error)
    if status is not None and 400 <= status < 600:
        return status >= 500 or status in (408, 429)
    return isinstance(error, (ConnectionError, TimeoutError, urllib.error.URLError, RuntimeError, MemoryError))


@dataclass
class ExtractConfig:
    """``context``: first-pass tokens (``None``: the study's 3,072 scaled to the backend);
    ``retry_factor``: the second pass's context multiplier (the study's 4); ``retry``: run it."""

    context: int | None = None
    retry_factor: int = RETRY_FACTOR
    retry: bool = True

    def __post_init__(self):
        if self.context is not None and self.context < 16:
            raise ValueError(f"context must be >= 16 tokens, got {self.context}")
        if self.retry_factor < 1:
            raise ValueError(f"retry_factor must be >= 1, got {self.retry_factor}")


class Extractor:
    """Extract every key of a report's type with ``backend``; :meth:`extract` returns one record."""

    def __init__(self, backend, config: ExtractConfig | None = None):
        self.backend = backend
        self.config = config or ExtractConfig()
        max_context = getattr(backend, "max_context", None)
        first = self.config.context
        if first is None:
            first = STUDY_CONTEXT if max_context is None else min(STUDY_CONTEXT, max_context // self.config.retry_factor)
        self.contexts = (first, first * self.config.retry_factor)

    def _ask(self, report, key: str, context: int) -> tuple[object, str | None]:
        """``(value, error)``; ContextTooLong propagates (the whole report moves to the next pass), and so
        does a retryable backend error, as :class:`BackendUnavailable` (the whole report is tried again)."""
        try:
            raw, truncated = self.backend.answer(report, key, context)
            return parse_answer(key, raw, truncated), None
        except ContextTooLong:
            raise
        except InvalidAnswer as err:
            return None, err.reason
        except Exception as err:  # noqa: BLE001 -- a backend bug must not lose the report; no message (may hold text)
            if is_retryable(err):
                raise BackendUnavailable(key, err) from None
            return None, f"backend error ({type(err).__name__})"

    def _run_pass(self, report, keys, context, values, errors) -> str | None:
        """Answer ``keys`` into ``values``/``errors``; returns a too-long reason or None."""
        for key in keys:
            try:
                value, error = self._ask(report, key, context)
            except ContextTooLong as err:
                for k in keys:
                    errors[k] = "too long for the context"
                size = f"of {err.needed} tokens " if err.needed is not None else ""
                return f"report {size}does not fit the {err.context}-token context"
            if error is None:
                values[key] = value
                errors.pop(key, None)
            else:
                errors[key] = error
        return None

    def extract(self, report) -> dict:
        """One record: ``id, type, state, reason, values, flags, passes, backend, seconds``."""
        start = time.perf_counter()
        record = {"id": report.id, "type": report.type, "state": "failed", "reason": None, "values": {},
                  "flags": {}, "passes": 1, "backend": getattr(self.backend, "name", type(self.backend).__name__)}
        keys = KEYS.get(report.type)
        if keys is None:
            record["reason"] = f"unknown document type {report.type!r} (allowed: {', '.join(KEYS)})"
            record["seconds"] = time.perf_counter() - start
            return record
        values: dict = {}
        errors: dict[str, str] = {}
        too_long = self._run_pass(report, keys, self.contexts[0], values, errors)
        if errors and self.config.retry:
            record["passes"] = 2
            too_long = self._run_pass(report, [k for k in keys if k in errors], self.contexts[1], values, errors)
        flags = {k: f"failed: {reason}" for k, reason in errors.items()}
        for key, value in values.items():
            if value is None:
                flags[key] = "not found in the report"
                continue
            problem = grounding_problem(key, value, report.text)
            if problem is not None:
                flags[key] = f"possible hallucination: {problem}"
        record["values"] = {k: values.get(k) for k in keys} | {"CR": report.id, "document_type": report.type}
        record["flags"] = flags
        if all(values.get(k) in (None, []) for k in keys):
            reasons = sorted(set(errors.values())) or ["nothing found"]
            record["reason"] = too_long or "no key could be extracted: " + "; ".join(reasons)
        else:
            record["state"] = "extracted_with_flags" if flags else "extracted"
        record["seconds"] = time.perf_counter() - start
        return record
