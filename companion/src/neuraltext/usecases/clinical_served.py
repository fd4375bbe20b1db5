"""Use case 2, a served model: an OpenAI-compatible ``/v1/chat/completions`` client as a backend.

In production the model runs on the hospital's GPUs behind a server (vLLM, or ``transformers serve``
for a demonstration), and many extraction workers call it; nothing leaves the hospital network.
:class:`ServedBackend` sends the same prompts as the local backend (one system text per report type
with the report, one question per key) and passes the **per-key constraint the way the server
supports it** (``constraint``):

* ``"json_schema"`` -- the OpenAI ``response_format`` with a JSON schema ``{"value": ...}`` whose
  ``enum`` lists the candidates (enumerations, the report's dates...) or whose ``pattern`` is the
  key's regex; vLLM and ``transformers serve`` accept it;
* ``"vllm"`` -- vLLM's ``guided_choice`` / ``guided_regex`` request fields;
* ``"none"`` -- free generation (the answer is still parsed, validated and grounded downstream).

Only the standard library talks HTTP (no ``openai`` package needed). A server error becomes an
exception naming the HTTP status only (the pipeline records it as a failed key); a server's
"context length" error becomes :class:`~neuraltext.usecases.clinical_extract.ContextTooLong`, so
the retry pass applies as with a local model.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from neuraltext.usecases.clinical_extract import ContextTooLong
from neuraltext.usecases.clinical_llm import QUESTIONS, REGEX, SYSTEM, key_candidates
from neuraltext.usecases.clinical_schema import KEYS

__all__ = ["ServedBackend", "ServerError"]


class ServerError(RuntimeError):
    """The server answered with an error status (the message holds the status, never report text)."""


class ServedBackend:
    """One key at a time against ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``) serving ``model``."""

    def __init__(self, base_url: str, model: str, constraint: str = "json_schema", max_tokens: int = 32,
                 timeout: float = 120.0, max_context: int | None = None, api_key: str | None = None):
        if constraint not in ("json_schema", "vllm", "none"):
            raise ValueError(f"constraint must be 'json_schema', 'vllm' or 'none', got {constraint!r}")
        self.base_url, self.model, self.constraint = base_url.rstrip("/"), model, constraint
        self.max_tokens, self.timeout, self.max_context, self.api_key = max_tokens, timeout, max_context, api_key
        self.name = f"served-{constraint}"
        self.tokens_processed = 0

    def _constraint(self, report, key: str) -> dict:
        found = key_candidates(report, key)  # the same candidates as the local backend
        if self.constraint == "none":
            return {}
        if self.constraint == "vllm":
            return {"guided_choice": found[0]} if found and found[0] else {"guided_regex": REGEX.get(key, ".{1,200}")}
        value = {"enum": found[0]} if found and found[0] else {"type": "string", "pattern": REGEX.get(key, ".{1,200}")}
        schema = {"type": "object", "properties": {"value": value}, "required": ["value"], "additionalProperties": False}
        return {"response_format": {"type": "json_schema", "json_schema": {"name": key, "schema": schema, "strict": True}}}

    def _post(self, body: dict, context: int) -> dict:
        request = urllib.request.Request(self.base_url + "/chat/completions", data=json.dumps(body).encode("utf-8"),
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
