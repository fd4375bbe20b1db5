"""The OpenAI-compatible client, for real over HTTP on loopback, against a small stand-in server.

The stand-in answers ``/v1/chat/completions`` from the rules backend and records the requests, so
the test checks what is sent (prompts, per-key constraints) and how replies and errors are handled.
Against a real ``transformers serve`` (the ``llm`` extra): ``tests/test_clinical_served_real.py``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from neuraltext.clinical import Report
from neuraltext.clinical import Extractor
from neuraltext.clinical import QUESTIONS
from neuraltext.clinical import RulesBackend
from neuraltext.clinical import ServedBackend, ServerError

CA = Report(id="P9_CA_00_20161201", type="CA", text=(
    "Prélevé le 01/12/2016\nEnregistré le 01/12/2016\n\nExamen n° [REDACTED]\n\nCR édité le : 05/12/2016\n"
    "Validé le : 05/12/2016\n\nLocalisation du prélèvement : Biopsie du psoas droit\n\n"
    "Diagnostic : Métastase d'un carcinome épidermoïde bien différencié de l'exo col\n"))
KEY_OF = {q: k for k, q in QUESTIONS.items()}


class Handler(BaseHTTPRequestHandler):
    mode = "ok"
    requests: list = []

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append((self.path, body))
        if Handler.mode == "error":
            return self._send(500, {"error": "boom"})
        if Handler.mode == "context":
            return self._send(400, {"error": {"message": "This model's maximum context length is 64 tokens"}})
        key = KEY_OF[body["messages"][1]["content"]]
        report = Report(id="x", type=body["messages"][0]["content"][0:0] or "CA",
                        text=body["messages"][0]["content"].split("Compte rendu :\n", 1)[1])
        raw, _ = RulesBackend().answer(report, key)
        content = json.dumps({"value": raw}) if "response_format" in body else raw
        if Handler.mode == "malformed":
            return self._send(200, {"nothing": True})
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                         "usage": {"total_tokens": 10}})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_served_backend_extracts_with_per_key_constraints(server):
    Handler.mode, Handler.requests = "ok", []
    backend = ServedBackend(server, "smollm2", constraint="json_schema")
    record = Extractor(backend).extract(CA)
    assert record["state"] == "extracted", record["flags"]
    assert record["values"]["date_validation"] == "2016-12-05"
    assert record["values"]["grade_histologique"] == "bien différencié"
    assert len(Handler.requests) == 8 and all(p == "/v1/chat/completions" for p, _ in Handler.requests)
    by_key = {KEY_OF[b["messages"][1]["content"]]: b for _, b in Handler.requests}
    schema = by_key["date_creation"]["response_format"]["json_schema"]["schema"]["properties"]["value"]
    assert schema == {"enum": ["01/12/2016", "05/12/2016"]}  # the report's own dates
    grade = by_key["grade_histologique"]["response_format"]["json_schema"]["schema"]["properties"]["value"]
    assert grade == {"enum": ["bien différencié"]}
    assert backend.tokens_processed == 80


def test_vllm_style_constraints(server):
    Handler.mode, Handler.requests = "ok", []
    ServedBackend(server, "m", constraint="vllm").answer(CA, "date_creation", 2048)
    assert Handler.requests[-1][1]["guided_choice"] == ["01/12/2016", "05/12/2016"]


def test_server_errors_are_recorded_failures_and_context_errors_go_to_the_retry_pass(server):
    backend = ServedBackend(server, "m")
    Handler.mode = "error"
    with pytest.raises(ServerError, match="HTTP 500"):
        backend.answer(CA, "date_creation", 2048)
    record = Extractor(backend).extract(CA)
    assert record["state"] == "failed" and "backend error (ServerError)" in record["reason"]
    Handler.mode = "malformed"
    record = Extractor(backend).extract(CA)
    assert record["state"] == "failed" and "Prélevé" not in json.dumps(record)
    Handler.mode, Handler.requests = "context", []
    record = Extractor(ServedBackend(server, "m", max_context=8192)).extract(CA)
    assert record["state"] == "failed" and record["passes"] == 2
    assert record["reason"] == "report does not fit the 8192-token context"
    Handler.mode = "ok"


def test_unreachable_server_is_a_named_error():
    backend = ServedBackend("http://127.0.0.1:9/v1", "m", timeout=2)
    with pytest.raises(ServerError, match="unreachable"):
        backend.answer(CA, "date_creation", 2048)
    with pytest.raises(ValueError, match="constraint"):
        ServedBackend("http://x", "m", constraint="grammar")
