"""Use case 2, a served model: an OpenAI-compatible client (chat completions, choice scoring) as a backend.

In production the model runs on the hospital's GPUs behind a server (vLLM, or ``transformers serve``
for a demonstration), and many extraction workers call it; nothing leaves the hospital network.
:class:`ServedBackend` sends the same prompts as the local backend (one system text per report type
with the report, one question per key) and passes the **per-key constraint the way the server
supports it** (``constraint``):

* ``"json_schema"`` -- the OpenAI ``response_format`` with a JSON schema ``{"value": ...}`` whose
  ``enum`` lists the candidates (enumerations, the report's dates...) or whose ``pattern`` is the
  key's regex; vLLM enforces it during decoding;
* ``"vllm"`` -- vLLM's ``guided_choice`` / ``guided_regex`` request fields;
* ``"choice"`` -- choice scoring on ``transformers serve``'s ``/v1/systemone`` endpoint: the key's
  candidates (the same as the local backend's, :func:`~neuraltext.clinical.llm.key_candidates`)
  become the options ``A``, ``B``, ... of a ``choice`` question, the server reads the next-token
  probabilities of the labels and the most probable option is the answer -- grounded by
  construction. Keys without candidates (a regex key) or with more than 26 (the server's A-Z labels)
  are asked by free chat completion;
* ``"none"`` -- free generation (the answer is still parsed, validated and grounded downstream).

**What ``transformers serve`` (5.23) supports**, tried on loopback with SmolLM2-135M-Instruct
(``tests/test_clinical_served_real.py``): ``/v1/chat/completions`` *ignores* ``response_format``
(it logs "Ignoring unsupported fields in the request: {'response_format'}" and generates freely, so
``"json_schema"`` there is free generation), refuses vLLM's ``guided_*`` fields with HTTP 422
("Unexpected fields"), and has no regex constraint; its ``/v1/systemone`` endpoint scores options,
which ``"choice"`` uses. Against vLLM use ``"json_schema"`` or ``"vllm"``.

Only the standard library talks HTTP (no ``openai`` package needed). A server error becomes an
exception naming the HTTP status only (the pipeline records it as a failed key); a server's
"context length" error becomes :class:`~neuraltext.clinical.extract.ContextTooLong`, so
the retry pass applies as with a local model.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from neuraltext.clinical.extract import ContextTooLong
from neuraltext.clinical.llm import QUESTIONS, REGEX, SYSTEM, key_candidates
from neuraltext.clinical.schema import KEYS

__all__ = ["ServedBackend", "ServerError", "CONSTRAINTS"]

CONSTRAINTS = ("json_schema", "vllm", "choice", "none")
MAX_CHOICES = 26  # transformers serve labels a choice question's options A to Z


class ServerError(RuntimeError):
    """The server answered with an error status (the message holds the status, never report text)."""


class ServedBackend:
    """One key at a time against ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``) serving ``model``."""

    def __init__(self, base_url: str, model: str, constraint: str = "json_schema", max_tokens: int = 32,
                 timeout: float = 120.0, max_context: int | None = None, api_key: str | None = None):
        if constraint not in CONSTRAINTS:
            raise ValueError(f"constraint must be one of {', '.join(map(repr, CONSTRAINTS))}, got {constraint!r}")
        self.base_url, self.model, self.constraint = base_url.rstrip("/"), model, constraint
        self.max_tokens, self.timeout, self.max_context, self.api_key = max_tokens, timeout, max_context, api_key
        self.name = f"served-{constraint}"
        self.tokens_processed = 0
        self.requests: dict[str, int] = {}  # endpoint -> number of requests sent

    def _constraint(self, report, key: str) -> dict:
        found = key_candidates(report, key)  # the same candidates as the local backend
        if self.constraint in ("none", "choice"):  # "choice" reaches chat only for keys it cannot score
            return {}
        if self.constraint == "vllm":
            return {"guided_choice": found[0]} if found and found[0] else {"guided_regex": REGEX.get(key, ".{1,200}")}
        value = {"enum": found[0]} if found and found[0] else {"type": "string", "pattern": REGEX.get(key, ".{1,200}")}
        schema = {"type": "object", "properties": {"value": value}, "required": ["value"], "additionalProperties": False}
        return {"response_format": {"type": "json_schema", "json_schema": {"name": key, "schema": schema, "strict": True}}}

    def _post(self, body: dict, context: int, endpoint: str = "/chat/completions") -> dict:
        self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
        request = urllib.request.Request(self.base_url + endpoint, data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            if err.code == 400 and re.search(r"context|maximum.*tokens", detail, flags=re.I):
                raise ContextTooLong(None, context) from None
            raise ServerError(f"server answered HTTP {err.code}") from None
        except (urllib.error.URLError, TimeoutError) as err:
            raise ServerError(f"server unreachable ({type(err).__name__})") from None

    def answer(self, report, key: str, context: int) -> tuple[str, bool]:
        if key not in KEYS.get(report.type, ()):
            raise KeyError(f"key {key!r} is not a key of report type {report.type!r}")
        if self.constraint == "choice":
            found = key_candidates(report, key)
            if found is not None and len(found[0]) <= MAX_CHOICES:
                return self._choose(report, key, found[0], context), False
        messages = [{"role": "system", "content": SYSTEM[report.type] + report.text},
                    {"role": "user", "content": QUESTIONS[key]}]
        body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens, "temperature": 0.0,
                **self._constraint(report, key)}
        reply = self._post(body, context)
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise ServerError("malformed server reply (no choices[0].message.content)") from None
        self.tokens_processed += int((reply.get("usage") or {}).get("total_tokens", 0))
        if self.constraint == "json_schema" and text.lstrip().startswith("{"):
            try:
                text = str(json.loads(text).get("value", ""))
            except (json.JSONDecodeError, AttributeError):
                pass  # left to the parser: recorded as a malformed answer
        return text, choice.get("finish_reason") == "length"

    def _choose(self, report, key: str, candidates: list[str], context: int) -> str:
        """The most probable candidate by ``/v1/systemone`` choice scoring (``""`` if there is none)."""
        if not candidates:
            return ""
        body = {"model": self.model, "state": SYSTEM[report.type] + report.text,
                "questions": {key: {"type": "choice", "instructions": QUESTIONS[key],
                                    "criteria": {c: None for c in candidates}}}}
        reply = self._post(body, context, endpoint="/systemone")
        try:
            choice = reply["answers"][key]["choice"]
        except (KeyError, TypeError):
            raise ServerError("malformed server reply (no answers[key].choice)") from None
        if choice not in candidates:
            raise ServerError("the server chose an option that was not offered")
        self.tokens_processed += int((reply.get("usage") or {}).get("input_tokens", 0))
        return choice
