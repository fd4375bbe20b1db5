"""The served backend against a real server that enforces the schema: llama.cpp's, on loopback.

``python -m llama_cpp.server`` (``llama-cpp-python[server]``, the companion's ``served`` extra; it
compiles llama.cpp from its sdist) serves the packaged SmolLM2-135M-Instruct GGUF file itself, read
from disk (nothing is downloaded), on 127.0.0.1 and a free port. Its ``response_format`` takes the
``json_object`` form with a schema, which it turns into a grammar that masks the logits: so **per
key, the answer is schema-valid by construction** -- one of the report's candidates, or a match of
the key's regex -- and the client's own check (:class:`~neuraltext.clinical.served.SchemaViolation`)
never fires. The OpenAI ``json_schema`` form is not this server's: it answers HTTP 500, a retryable failure. No assertion on the 135M model's accuracy (``benchmarks/clinical_served.py`` compares it
with in-process constrained decoding).

Skipped when ``llama_cpp`` is not installed (``make served`` installs it).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from neuraltext.clinical import KEYS, STATES, ExtractConfig, Extractor, key_candidates, synthetic_reports
from neuraltext.clinical import InvalidAnswer, grounding_problem, parse_answer
from neuraltext.clinical.llm import REGEX
from neuraltext.clinical.served import FREE_PATTERN, ServedBackend

pytestmark = [pytest.mark.pretrained, pytest.mark.slow]

START_TIMEOUT = 120  # seconds for the server to load the model and answer /v1/models


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path:
    """The packaged SmolLM2 GGUF file (skips the test when the weight package is absent)."""
    from neuraltext.weights import ModelNotAvailableError, resolve

    try:
        resolved = resolve("smollm2-135m-instruct")
    except ModelNotAvailableError as err:
        pytest.skip(str(err))
    return Path(resolved.path) / resolved.gguf_file


def start_llama_cpp_server(model: Path, log_path: Path, n_ctx: int = 8192, threads: int = 1):
    """``(process, base_url)`` of ``python -m llama_cpp.server`` on a free loopback port, ready.

    One thread by default: on a shared 2-core machine ggml's threads wait for each other at every
    operation: two threads took 4 s a token where one took about 0.2 s (load 16)."""
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
               "--n_threads_batch", str(threads)]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/v1/models", timeout=2) as reply:
                if reply.status == 200:
                    return proc, base + "/v1"
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"llama_cpp.server not ready in {START_TIMEOUT} s:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.3)


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _all_grounded(report, key, candidates) -> bool:
    """Every candidate is supported by the report (a yes/no key offers both answers, one ungrounded)."""
    try:
        return all(grounding_problem(key, parse_answer(key, c), report.text) is None for c in candidates)
    except InvalidAnswer:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (make served)")
    model = smollm2_gguf()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    proc, url = start_llama_cpp_server(model, log_path)
    yield url, log_path
    stop(proc)


@pytest.fixture(scope="module")
def reports():
    by_type = {}
    for r in synthetic_reports(6, seed=3, p_long=0.0):
        by_type.setdefault(r.type, r)
    return [by_type["CA"], by_type["CC"], by_type["RC"]]


class Recording(ServedBackend):
    """The served backend, keeping each raw answer: ``answers[(report id, key)] = (text, truncated)``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answers = {}

    def answer(self, report, key, context):
        self.answers[report.id, key] = super().answer(report, key, context)  # a SchemaViolation raises here
        return self.answers[report.id, key]


@pytest.fixture(scope="module")
def extracted(server, reports):
    """``(backend, records)``: every key of the three reports, once, through llama.cpp (one pass)."""
    backend = Recording(server[0], "smollm2", constraint="json_object", max_context=8192)
    extractor = Extractor(backend, ExtractConfig(retry=False))
    return backend, [extractor.extract(report) for report in reports]


def test_every_answer_is_schema_valid_by_construction(extracted, reports):
    backend, _ = extracted
    asked = 0
    for report in reports:
        for key in KEYS[report.type]:
            found = key_candidates(report, key)
            text, truncated = backend.answers[report.id, key]
            if found is not None:
                assert text in found[0] or (not found[0] and text == ""), (report.id, key, text)
            elif not truncated:
                assert re.fullmatch(REGEX.get(key, FREE_PATTERN), text, flags=re.S), (report.id, key, text)
            asked += found is None or bool(found[0])
    assert backend.requests == {"/chat/completions": asked} and asked >= 15
    assert backend.tokens_processed > 0


def test_extraction_through_llama_cpp_grounds_every_candidate_answer(extracted, reports):
    _, records = extracted
    for report, record in zip(reports, records):
        assert record["state"] in STATES and record["id"] == report.id
        for key in KEYS[report.type]:
            flag = record["flags"].get(key, "")
            assert "SchemaViolation" not in flag and "backend error" not in flag, (key, flag)
            found = key_candidates(report, key)
            if found is not None and found[0] and _all_grounded(report, key, found[0]):
                assert "possible hallucination" not in flag, (report.id, key, flag)  # picked among grounded spans


def test_the_openai_json_schema_form_is_not_this_servers_and_fails_as_a_server_error(server, reports, tmp_path):
    """llama-cpp-python's server validates ``response_format.type`` against ``text``/``json_object`` and
    answers the OpenAI ``json_schema`` form with HTTP 500 (its validation error, logged as an internal
    error): by its status a retryable fault, so after ``max_attempts`` the report is a retryable failure,
    recorded and redone by a later run -- the fix is the flavour the server speaks (``json_object``)."""
    from neuraltext.clinical import read_results, run_pipeline
    from neuraltext.clinical.served import ServerUnavailable

    url, log_path = server
    backend = ServedBackend(url, "smollm2", constraint="json_schema", max_context=8192)
    with pytest.raises(ServerUnavailable, match="HTTP 500"):
        backend.answer(reports[0], "date_creation", 8192)
    assert "Input should be 'text' or 'json_object'" in log_path.read_text()
    out = tmp_path / "r.jsonl"
    summary = run_pipeline(reports[:1], Extractor(backend, ExtractConfig(retry=False)), out, max_attempts=2,
                           backoff=0.0)
    (record,) = read_results(out)
    assert summary.processed == 1 and record["state"] == "failed" and record["retryable"] is True
    assert record["attempts"] == 2 and "ServerUnavailable" in record["reason"]
