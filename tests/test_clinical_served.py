"""The OpenAI-compatible client, for real over HTTP on loopback, against a small stand-in server.

The stand-in answers ``/v1/chat/completions`` from the rules backend and records the requests, so
the tests check what is sent (prompts, per-key constraints in each server's form) and how replies and
faults are handled: a server that is down, answers HTTP 4xx/5xx, is too slow, or answers text that
breaks the schema. Each fault is a typed exception (retryable or final), each report of a run gets one
recorded state naming it, and the run goes on. A real server enforcing the schema:
``tests/test_clinical_llamacpp.py``; ``transformers serve``: ``tests/test_clinical_served_real.py``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from neuraltext.clinical import Report
from neuraltext.clinical import Extractor, ExtractConfig
from neuraltext.clinical import QUESTIONS, key_candidates
from neuraltext.clinical import RulesBackend
from neuraltext.clinical import read_results, run_pipeline, synthetic_reports
from neuraltext.clinical import ServedBackend
from neuraltext.clinical.served import (MalformedReply, NotInsideHospital, RequestRefused, SchemaViolation,
                                        ServerError, ServerTimeout, ServerUnavailable, check_url)

CA = Report(id="P9_CA_00_20161201", type="CA", text=(
    "Prélevé le 01/12/2016\nEnregistré le 01/12/2016\n\nExamen n° [REDACTED]\n\nCR édité le : 05/12/2016\n"
    "Validé le : 05/12/2016\n\nLocalisation du prélèvement : Biopsie du psoas droit\n\n"
    "Diagnostic : Métastase d'un carcinome épidermoïde bien différencié de l'exo col\n"))
KEY_OF = {q: k for k, q in QUESTIONS.items()}


class Handler(BaseHTTPRequestHandler):
    """``mode``: ok, error (500), busy (429), refuse (422), context (400 context length), malformed,
    notjson, freeform (ignores the schema), offlist (a value outside the enum), slow (sleeps ``delay``),
    trailing (the whole object but finish_reason "length"), cut (the object cut inside its value)."""

    mode = "ok"
    delay = 0.0
    requests: list = []

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append((self.path, body))
        status = {"error": 500, "busy": 429, "refuse": 422}.get(Handler.mode)
        if status:
            return self._send(status, {"error": "boom"})
        if Handler.mode == "context":
            return self._send(400, {"error": {"message": "This model's maximum context length is 64 tokens"}})
        if Handler.mode == "slow":
            time.sleep(Handler.delay)
        if Handler.mode == "notjson":
            return self._send(200, None, raw=b"<html>proxy error</html>")
        key = KEY_OF[body["messages"][1]["content"]]
        text = body["messages"][0]["content"].split("Compte rendu :\n", 1)[1]
        raw, _ = RulesBackend().answer(Report(id="x", type=_type_of(key), text=text), key)
        if Handler.mode == "offlist":
            raw = "15/08/1999"
        content = json.dumps({"value": raw}) if "response_format" in body and Handler.mode != "freeform" else raw
        if Handler.mode == "malformed":
            return self._send(200, {"nothing": True})
        finish = "stop"
        if Handler.mode == "trailing":  # llama-server: the whole object, then whitespace tokens up to max_tokens
            content, finish = json.dumps({"value": raw}, indent=2), "length"
        elif Handler.mode == "cut":  # max_tokens reached inside the value
            content, finish = json.dumps({"value": raw})[:-4], "length"
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}],
                         "usage": {"total_tokens": 10}})

    def _send(self, status, payload, raw=None):
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _type_of(key):
    from neuraltext.clinical import KEYS
    return next(t for t, keys in KEYS.items() if key in keys)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def _reset():
    Handler.mode, Handler.delay, Handler.requests = "ok", 0.0, []
    yield
    Handler.mode = "ok"


def _value_schema(body):
    return body["response_format"]["json_schema"]["schema"]["properties"]["value"]


def test_served_backend_extracts_with_per_key_json_schema(server):
    backend = ServedBackend(server, "smollm2", constraint="json_schema")
    record = Extractor(backend).extract(CA)
    assert record["state"] == "extracted", record["flags"]
    assert record["values"]["date_validation"] == "2016-12-05"
    assert record["values"]["grade_histologique"] == "bien différencié"
    assert all(p == "/v1/chat/completions" for p, _ in Handler.requests)
    by_key = {KEY_OF[b["messages"][1]["content"]]: b for _, b in Handler.requests}
    assert _value_schema(by_key["date_creation"]) == {"enum": ["01/12/2016", "05/12/2016"]}
    assert _value_schema(by_key["grade_histologique"]) == {"enum": ["bien différencié"]}
    # every key with a candidate list is sent as an enum of exactly the in-process backend's candidates
    for key, body in by_key.items():
        found = key_candidates(CA, key)
        assert found is not None and _value_schema(body) == {"enum": found[0]}
        assert body["response_format"]["json_schema"]["strict"] is True and body["temperature"] == 0.0
    # keys without any candidate in the report are "not found" without asking the server
    empty = [k for k in by_key if not key_candidates(CA, k)[0]]
    assert not empty and backend.tokens_processed == 10 * len(Handler.requests)


def test_regex_keys_are_sent_as_an_anchored_pattern(server):
    cc = next(r for r in synthetic_reports(6, seed=1) if r.type == "CC")
    ServedBackend(server, "m").answer(cc, "liste_cancers", 2048)
    value = _value_schema(Handler.requests[-1][1])
    assert value["type"] == "string" and value["pattern"].startswith("^(") and value["pattern"].endswith(")$")


def test_json_object_is_the_llama_cpp_python_form(server):
    text, _ = ServedBackend(server, "m", constraint="json_object").answer(CA, "date_creation", 2048)
    fmt = Handler.requests[-1][1]["response_format"]
    assert text == "01/12/2016" and fmt["type"] == "json_object"
    assert fmt["schema"]["properties"]["value"] == {"enum": ["01/12/2016", "05/12/2016"]}


def test_vllm_style_constraints(server):
    ServedBackend(server, "m", constraint="vllm").answer(CA, "date_creation", 2048)
    assert Handler.requests[-1][1]["guided_choice"] == ["01/12/2016", "05/12/2016"]
    ServedBackend(server, "m", constraint="structured_outputs").answer(CA, "date_creation", 2048)
    assert Handler.requests[-1][1]["structured_outputs"] == {"choice": ["01/12/2016", "05/12/2016"]}
    assert "response_format" not in Handler.requests[-1][1]


@pytest.mark.parametrize("mode, error, retryable", [
    ("error", ServerUnavailable, True), ("busy", ServerUnavailable, True), ("refuse", RequestRefused, False),
    ("malformed", MalformedReply, False), ("notjson", MalformedReply, False),
    ("freeform", SchemaViolation, False), ("offlist", SchemaViolation, False)])
def test_each_fault_is_a_typed_error(server, mode, error, retryable):
    Handler.mode = mode
    with pytest.raises(error) as caught:
        ServedBackend(server, "m").answer(CA, "date_creation", 2048)
    assert type(caught.value) is error and caught.value.retryable is retryable
    assert "Prélevé" not in str(caught.value) and "01/12/2016" not in str(caught.value)


def test_a_slow_server_is_a_retryable_timeout(server):
    Handler.mode, Handler.delay = "slow", 1.5
    with pytest.raises(ServerTimeout, match="no reply within 0.3 s") as caught:
        ServedBackend(server, "m", timeout=0.3).answer(CA, "date_creation", 2048)
    assert caught.value.retryable


def test_a_server_that_is_down_is_retryable():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServerUnavailable, match="unreachable") as caught:
        ServedBackend(f"http://127.0.0.1:{port}/v1", "m", timeout=2).answer(CA, "date_creation", 2048)
    assert caught.value.retryable and isinstance(caught.value, ServerError)


@pytest.mark.parametrize("mode, name", [("error", "ServerUnavailable"), ("refuse", "RequestRefused"),
                                        ("freeform", "SchemaViolation"), ("notjson", "MalformedReply")])
def test_a_run_against_a_faulty_server_records_every_report_and_goes_on(server, tmp_path, mode, name):
    reports = synthetic_reports(2, seed=5)
    Handler.mode = mode
    out = tmp_path / "r.jsonl"
    summary = run_pipeline(reports, Extractor(ServedBackend(server, "m"), ExtractConfig(retry=False)), out)
    records = read_results(out)
    assert summary.processed == len(reports) == len(records)  # nothing lost, the run went on
    assert sorted(r["id"] for r in records) == sorted(r.id for r in reports)
    for record in records:  # a key answered locally ("not found") may leave a report with flags only
        assert record["state"] in ("failed", "extracted_with_flags")
        reasons = json.dumps([record["reason"], record["flags"]], ensure_ascii=False)
        assert name in reasons, reasons
    text = out.read_text(encoding="utf-8")
    assert all(r.text[:30] not in text for r in reports)


def test_context_errors_go_to_the_retry_pass(server):
    Handler.mode = "context"
    record = Extractor(ServedBackend(server, "m", max_context=8192)).extract(CA)
    assert record["state"] == "failed" and record["passes"] == 2
    assert record["reason"] == "report does not fit the 8192-token context"


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="constraint must be one of .*got 'grammar'"):
        ServedBackend("http://127.0.0.1:1/v1", "m", constraint="grammar")
    with pytest.raises(ValueError, match="timeout must be > 0"):
        ServedBackend("http://127.0.0.1:1/v1", "m", timeout=0)
    with pytest.raises(ValueError, match="http:// or https:// URL"):
        ServedBackend("ftp://127.0.0.1/v1", "m")


# ------------------------------------------------------------------------ nominative data stay inside
@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
                                 "https://127.0.0.2/v1"])
def test_loopback_urls_are_accepted(url):
    assert ServedBackend(url, "m").base_url == url.rstrip("/")


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "http://10.0.0.5:8000/v1", "https://gpu01.chu.fr/v1",
                                 "http://127.0.0.1.evil.example/v1"])
def test_another_host_is_refused_unless_inside_the_hospital(url):
    with pytest.raises(NotInsideHospital, match="never leaves the hospital.*inside_hospital=True"):
        ServedBackend(url, "m")


def test_inside_the_hospital_needs_https_to_another_host():
    assert ServedBackend("https://gpu01.chu.fr/v1", "m", inside_hospital=True).base_url == "https://gpu01.chu.fr/v1"
    with pytest.raises(NotInsideHospital, match="plain http.*unencrypted.*https://"):
        ServedBackend("http://10.0.0.5:8000/v1", "m", inside_hospital=True)
    assert check_url("http://127.0.0.1:8000/v1/", inside_hospital=True) == "http://127.0.0.1:8000/v1"


def test_requests_ignore_proxy_variables(server, monkeypatch):
    """A proxy variable would route report text through another host: the client never uses one."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    text, _ = ServedBackend(server, "m").answer(CA, "date_creation", 2048)
    assert text == "01/12/2016" and len(Handler.requests) == 1


def test_a_whole_answer_stopped_by_max_tokens_is_complete_and_a_cut_one_truncated(server):
    """llama-server stops a grammar-constrained answer at ``max_tokens`` when the model spends the tokens left
    on the whitespace the grammar allows around the object: finish_reason "length", yet the content is the
    whole object -- a complete, checked answer. An object cut inside its value stays truncated (its prefix)."""
    backend = ServedBackend(server, "smollm2", constraint="json_schema")
    Handler.mode = "trailing"
    raw, truncated = backend.answer(CA, "date_validation", 8192)
    assert not truncated and raw in key_candidates(CA, "date_validation")[0]
    Handler.mode = "cut"
    text, truncated = backend.answer(CA, "date_validation", 8192)
    assert truncated and len(text) < len(raw) and raw.startswith(text)
