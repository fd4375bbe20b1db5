"""Use case 2, a served model: an OpenAI-compatible client whose answers the *server* constrains.

In production the model runs on the hospital's GPUs behind a server (vLLM, SGLang, llama.cpp's
server, TGI) and many extraction workers call it. :class:`ServedBackend` sends the same prompts as
the in-process backend (:mod:`neuraltext.clinical.llm`: one system text per report type with the
report, one question per key) and the same **per-key constraint** -- the candidates of
:func:`~neuraltext.clinical.llm.key_candidates` (the report's own dates, the enumeration's values
written in it, its terminology spans and lines) or the key's regex -- in the form the server enforces
*during decoding* (``constraint``, the server's capability):

* ``"json_schema"`` -- the OpenAI ``response_format`` ``{"type": "json_schema", ...}`` with the schema
  ``{"value": {"enum": candidates}}`` or ``{"value": {"type": "string", "pattern": "^(regex)$"}}``
  (vLLM, SGLang, llama.cpp's server: the schema becomes a grammar that masks the logits, the
  chapter's token mask on the server's side);
* ``"json_object"`` -- ``{"type": "json_object", "schema": ...}``, the same schema in the form
  ``llama-cpp-python``'s server reads (its ``response_format`` knows no ``json_schema`` type);
  llama.cpp's own ``llama-server`` reads both;
* ``"structured_outputs"`` -- vLLM >= 0.10's ``structured_outputs: {"choice": [...]}`` or
  ``{"regex": ...}``; ``"vllm"`` -- the older ``guided_choice`` / ``guided_regex`` fields;
* ``"choice"`` -- ``transformers serve``'s ``/v1/systemone`` choice scoring (options ``A``-``Z``);
  other keys go to free chat completion;
* ``"none"`` -- free generation (parsed, validated and grounded downstream).

**Schema-valid by construction, and checked.** With a constraint the server enforces, an answer is
one of the candidates or matches the regex. The client checks it anyway: a server that ignores the
field (``transformers serve`` logs "Ignoring unsupported fields" and generates freely) answers with
text that breaks the schema, and that answer is a :class:`SchemaViolation`, never a value. A key with
no candidate is answered "not found" without a request, as in the in-process backend. Selection
differs from in-process scoring in one way: the server decodes the candidates greedily token by
token, where :class:`~neuraltext.clinical.llm.TransformersBackend` scores each whole candidate.

**Nominative data never leave the hospital.** The constructor refuses a URL whose host is not the
loopback interface unless the caller states ``inside_hospital=True`` (the server runs on the
hospital's own network), and even then refuses plain ``http://`` to another host (report text would
cross the network unencrypted: use ``https://``). Requests ignore proxy variables of the
environment and follow no redirect, so the text goes to that host and nowhere else.

**Faults are typed** (messages name the status or the cause, never report text), so that the
pipeline can tell a transient fault, worth retrying later, from a final one:

* :class:`ServerUnavailable` (``retryable``): connection refused or reset, HTTP 408/425/429/5xx;
  :class:`ServerTimeout`, a subclass: no reply within ``timeout`` seconds;
* :class:`RequestRefused` (final): another HTTP 4xx -- the request is wrong (an unknown field);
* :class:`MalformedReply` (final): a reply that is not the API's JSON;
* :class:`SchemaViolation` (final): an answer outside the constraint;
* a server's "context length" error becomes :class:`~neuraltext.clinical.extract.ContextTooLong`
  (the report goes to the 4x pass, as with a local model).

Only the standard library talks HTTP (no ``openai`` package needed).
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request

from neuraltext.clinical.extract import ContextTooLong
from neuraltext.clinical.llm import QUESTIONS, REGEX, SYSTEM, key_candidates
from neuraltext.clinical.schema import KEYS

__all__ = ["ServedBackend", "ServerError", "ServerUnavailable", "ServerTimeout", "RequestRefused",
           "MalformedReply", "SchemaViolation", "NotInsideHospital", "CONSTRAINTS", "is_loopback",
           "check_url"]

CONSTRAINTS = ("json_schema", "json_object", "structured_outputs", "vllm", "choice", "none")
JSON_CONSTRAINTS = ("json_schema", "json_object")  # the answer is the JSON object {"value": ...}
MAX_CHOICES = 26  # transformers serve labels a choice question's options A to Z
FREE_PATTERN = ".{1,200}"  # a key without candidates and without a regex: one short line
RETRYABLE_STATUS = frozenset({408, 425, 429})  # and every 5xx


class ServerError(RuntimeError):
    """A served-backend fault; ``retryable`` says whether asking again later may succeed."""

    retryable = False


class ServerUnavailable(ServerError):
    """The server is down, overloaded or failing (connection refused, HTTP 5xx/429): retry later."""

    retryable = True


class ServerTimeout(ServerUnavailable):
    """No reply within the backend's ``timeout``: retry later."""


class RequestRefused(ServerError):
    """HTTP 4xx (not a context-length error): the server refuses this request; asking again won't help."""


class MalformedReply(ServerError):
    """A reply that is not the OpenAI-compatible JSON the client expects."""


class SchemaViolation(ServerError):
    """The server's answer breaks the constraint it was sent (a server that ignores the field)."""


class NotInsideHospital(ValueError):
    """A URL that could send nominative report text outside the hospital."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (RFC 6761) and the loopback addresses ``127.0.0.0/8`` and ``::1``."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(base_url: str, inside_hospital: bool = False) -> str:
    """``base_url`` without a trailing ``/``, or :class:`NotInsideHospital` / ``ValueError``.

    Loopback: any ``http``/``https`` URL. Another host: only with ``inside_hospital=True`` (the caller
    states the server runs on the hospital's network), and only over ``https``.
    """
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {base_url!r}")
    if not is_loopback(parts.hostname):
        if not inside_hospital:
            raise NotInsideHospital(
                f"base_url {base_url!r} is not on this machine (allowed: localhost, 127.0.0.1, ::1): nominative "
                "report text never leaves the hospital. If this server runs on the hospital's own network, "
                "pass inside_hospital=True.")
        if parts.scheme != "https":
            raise NotInsideHospital(
                f"base_url {base_url!r} is plain http to another host: nominative report text would cross the "
                "network unencrypted, and it never leaves the hospital's protection. Use https://.")
    return base_url.rstrip("/")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 (urllib's signature)
        return None  # a 3xx becomes an HTTPError: the report text is sent to one host only


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _partial_value(text: str) -> str:
    """The value of a JSON answer cut by the token limit: ``{"value": "carcinome épi`` -> ``carcinome épi``."""
    m = re.match(r'\s*\{\s*"value"\s*:\s*"(.*?)"?\s*\}?\s*$', text, flags=re.S)
    if m is None:
        return text
    try:
        return json.loads('"' + m.group(1) + '"')
    except json.JSONDecodeError:  # cut inside an escape sequence
        return m.group(1)


class ServedBackend:
    """One key at a time against ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``) serving ``model``.

    ``constraint``: one of :data:`CONSTRAINTS`, what the server enforces; ``max_tokens``: the
    generation limit of regex and free keys (candidate keys get enough for their longest candidate);
    ``inside_hospital``: required for a host other than this machine (see :func:`check_url`).
    """

    def __init__(self, base_url: str, model: str, constraint: str = "json_schema", max_tokens: int = 32,
                 timeout: float = 120.0, max_context: int | None = None, api_key: str | None = None,
                 inside_hospital: bool = False):
        if constraint not in CONSTRAINTS:
            raise ValueError(f"constraint must be one of {', '.join(map(repr, CONSTRAINTS))}, got {constraint!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.base_url = check_url(base_url, inside_hospital)
        self.model, self.constraint = model, constraint
        self.max_tokens, self.timeout, self.max_context, self.api_key = max_tokens, timeout, max_context, api_key
        self.name = f"served-{constraint}"
        self.tokens_processed = 0
        self.requests: dict[str, int] = {}  # endpoint -> number of requests sent

    # ------------------------------------------------------------------------------ the constraint
    def _target(self, report, key: str) -> tuple[list[str] | None, str | None]:
        """``(candidates, None)`` or ``(None, regex)``: what the answer to ``key`` must be."""
        found = key_candidates(report, key)  # the same candidates as the in-process backend
        if found is not None:
            return found[0], None
        return None, REGEX.get(key, FREE_PATTERN)

    def _constraint_fields(self, candidates, pattern) -> dict:
        if self.constraint in ("none", "choice"):  # "choice" reaches chat only for keys it cannot score
            return {}
        if self.constraint == "vllm":
            return {"guided_choice": candidates} if candidates else {"guided_regex": pattern}
        if self.constraint == "structured_outputs":
            return {"structured_outputs": {"choice": candidates} if candidates else {"regex": pattern}}
        value = {"enum": candidates} if candidates else {"type": "string", "pattern": f"^({pattern})$"}
        schema = {"type": "object", "properties": {"value": value}, "required": ["value"], "additionalProperties": False}
        if self.constraint == "json_object":
            return {"response_format": {"type": "json_object", "schema": schema}}
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                                             "strict": True}}}

    def _checked(self, key: str, text: str, candidates, pattern) -> str:
        """The answer inside ``text`` if it satisfies the constraint, else :class:`SchemaViolation`."""
        if self.constraint in ("none", "choice"):
            return text
        if self.constraint in JSON_CONSTRAINTS:
            try:
                reply = json.loads(text)
            except json.JSONDecodeError:
                raise SchemaViolation(f"{key}: the answer is not JSON (the server did not enforce the schema)") from None
            if not (isinstance(reply, dict) and set(reply) == {"value"} and isinstance(reply["value"], str)):
                raise SchemaViolation(f"{key}: the answer is not an object {{\"value\": string}}")
            text = reply["value"]
        ok = text in candidates if candidates else re.fullmatch(pattern, text, flags=re.S) is not None
        if not ok:
            what = "one of the report's candidates" if candidates else "a match of the key's pattern"
            raise SchemaViolation(f"{key}: the answer is not {what}")
        return text

    # ------------------------------------------------------------------------------------- HTTP
    def _post(self, body: dict, context: int, endpoint: str = "/chat/completions") -> dict:
        self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
        request = urllib.request.Request(self.base_url + endpoint, data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                data = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            if err.code == 400 and re.search(r"context|maximum.*tokens|too long", detail, flags=re.I):
                raise ContextTooLong(None, context) from None
            if err.code >= 500 or err.code in RETRYABLE_STATUS:
                raise ServerUnavailable(f"server answered HTTP {err.code}") from None
            raise RequestRefused(f"server answered HTTP {err.code}") from None
        except TimeoutError:
            raise ServerTimeout(f"no reply within {self.timeout} s") from None
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                raise ServerTimeout(f"no reply within {self.timeout} s") from None
            raise ServerUnavailable(f"server unreachable ({type(err.reason).__name__})") from None
        except (ConnectionError, OSError) as err:  # reset mid-reply, RemoteDisconnected
            raise ServerUnavailable(f"connection lost ({type(err).__name__})") from None
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MalformedReply("the server's reply is not JSON") from None

    # ------------------------------------------------------------------------------ backend API
    def answer(self, report, key: str, context: int) -> tuple[str, bool]:
        """``(raw answer, truncated)`` for ``key`` of ``report`` (see the module's faults)."""
        if key not in KEYS.get(report.type, ()):
            raise KeyError(f"key {key!r} is not a key of report type {report.type!r}")
        candidates, pattern = self._target(report, key)
        if self.constraint not in ("none",) and candidates == []:
            return "", False  # nothing to choose from: "not found", as the in-process backend answers
        if self.constraint == "choice" and candidates is not None and len(candidates) <= MAX_CHOICES:
            return self._choose(report, key, candidates, context), False
        max_tokens = self.max_tokens
        if candidates and self.constraint != "none":  # room for the longest candidate (>= 1 character a token)
            max_tokens = max(max_tokens, len(json.dumps({"value": max(candidates, key=len)})) + 4)
        messages = [{"role": "system", "content": SYSTEM[report.type] + report.text},
                    {"role": "user", "content": QUESTIONS[key]}]
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0,
                **self._constraint_fields(candidates, pattern)}
        reply = self._post(body, context)
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise MalformedReply("no choices[0].message.content in the server's reply") from None
        self.tokens_processed += int((reply.get("usage") or {}).get("total_tokens", 0))
        if choice.get("finish_reason") == "length":  # stopped by max_tokens
            if self.constraint in JSON_CONSTRAINTS:
                try:  # a whole valid object: llama-server spends the tokens left on the whitespace its grammar allows
                    return self._checked(key, text, candidates, pattern), False
                except SchemaViolation:  # cut inside the object: the parser decides, as in-process
                    return _partial_value(text), True
            return text, True
        return self._checked(key, text, candidates, pattern), False

    def _choose(self, report, key: str, candidates: list[str], context: int) -> str:
        """The most probable candidate by ``/v1/systemone`` choice scoring."""
        body = {"model": self.model, "state": SYSTEM[report.type] + report.text,
                "questions": {key: {"type": "choice", "instructions": QUESTIONS[key],
                                    "criteria": {c: None for c in candidates}}}}
        reply = self._post(body, context, endpoint="/systemone")
        try:
            choice = reply["answers"][key]["choice"]
        except (KeyError, TypeError):
            raise MalformedReply("no answers[key].choice in the server's reply") from None
        if choice not in candidates:
            raise SchemaViolation(f"{key}: the server chose an option that was not offered")
        self.tokens_processed += int((reply.get("usage") or {}).get("input_tokens", 0))
        return choice
