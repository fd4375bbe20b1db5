"""The served backend against real servers that enforce the schema: llama.cpp's, on loopback.

Both serve the packaged SmolLM2-135M-Instruct GGUF file, read from disk (nothing is downloaded), on
127.0.0.1 and a free port (launched by ``tests/llm_servers.py``), and turn the request's schema into a
grammar that masks the logits: so **per key, the answer is schema-valid by construction** -- one of
the report's candidates, or a match of the key's regex -- and the client's own check
(:class:`~neuraltext.clinical.served.SchemaViolation`) never fires. The tests marked for both run
once per server:

* ``python -m llama_cpp.server`` (``llama-cpp-python[server]``, the companion's ``served`` extra:
  ``make served``; skipped without it). Its ``response_format`` takes the ``json_object`` form with a
  schema; the OpenAI ``json_schema`` form is not this server's: it answers HTTP 500, a retryable
  failure. It runs one request at a time.
* llama.cpp's own ``llama-server`` (``make llama-server``, opt-in, built from the same llama.cpp
  sources; skipped without the binary). It reads both forms (asked here in the OpenAI
  ``json_schema`` form, the one vLLM and SGLang read too) and decodes the requests in flight together
  (``--parallel`` slots, continuous batching). The bad-input paths hold against it as against the
  fake servers of ``tests/test_clinical_served.py``: a report longer than a slot's context (HTTP 400)
  becomes :class:`~neuraltext.clinical.extract.ContextTooLong`, a ``response_format`` it does not know
  (HTTP 400) a final :class:`~neuraltext.clinical.served.RequestRefused`, vLLM's ``guided_*`` fields,
  which it ignores, free text refused as a ``SchemaViolation``, and no reply in time a retryable
  :class:`~neuraltext.clinical.served.ServerTimeout`.

No assertion on the 135M model's accuracy (``benchmarks/clinical_served.py`` compares it with
in-process constrained decoding, and measures both servers' reports/s with N requests in flight).
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from neuraltext.clinical import KEYS, STATES, ExtractConfig, Extractor, key_candidates, synthetic_reports
from neuraltext.clinical import ContextTooLong, InvalidAnswer, grounding_problem, parse_answer
from neuraltext.clinical.llm import REGEX
from neuraltext.clinical.served import FREE_PATTERN, RequestRefused, ServedBackend, ServerTimeout

from llm_servers import (busy_slots, llama_server_binary, smollm2_gguf, start_llama_cpp_server, start_llama_server,
                         stop)

pytestmark = [pytest.mark.pretrained, pytest.mark.slow]

SERVERS = ("llama_cpp.server", "llama-server")
FLAVOUR = {"llama_cpp.server": "json_object", "llama-server": "json_schema"}  # the schema form each reads
SLOT_CONTEXT = 2048  # llama-server's tokens per slot: a short report fits, a long one (~3,000 tokens) does not


def _all_grounded(report, key, candidates) -> bool:
    """Every candidate is supported by the report (a yes/no key offers both answers, one ungrounded)."""
    try:
        return all(grounding_problem(key, parse_answer(key, c), report.text) is None for c in candidates)
    except InvalidAnswer:
        return False


@pytest.fixture(scope="module")
def llama_cpp_python_server(tmp_path_factory):
    """``(base_url, log_path)`` of ``python -m llama_cpp.server``; stopped at the end of the module."""
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (make served)")
    log_path = tmp_path_factory.mktemp("llama_cpp") / "server.log"
    proc, url = start_llama_cpp_server(smollm2_gguf(), log_path)
    yield url, log_path
    stop(proc)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """``(base_url, log_path)`` of llama.cpp's ``llama-server``, 4 slots of ``SLOT_CONTEXT`` tokens.

    One thread: on the shared 2-core machine a second one mostly waits for the first."""
    binary, why_not = llama_server_binary()
    if binary is None:
        pytest.skip(why_not)
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    proc, url = start_llama_server(binary, smollm2_gguf(), log_path, slots=4, ctx_per_slot=SLOT_CONTEXT, threads=1)
    yield url, log_path
    stop(proc)


@pytest.fixture(scope="module", params=SERVERS)
def server(request):
    """``(name, base_url, log_path)`` of each server in turn."""
    fixture = {"llama_cpp.server": "llama_cpp_python_server", "llama-server": "llama_server"}[request.param]
    return (request.param, *request.getfixturevalue(fixture))


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
    """``(backend, records)``: every key of the three reports, once, through the server (one pass)."""
    name, url, _ = server
    backend = Recording(url, "smollm2", constraint=FLAVOUR[name], max_context=8192)
    extractor = Extractor(backend, ExtractConfig(retry=False))
    return backend, [extractor.extract(report) for report in reports]


def _check_schema_valid(backend, reports) -> int:
    """Every answer recorded by ``backend`` is a candidate or a regex match; returns the requests it needed."""
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
    assert backend.requests == {"/chat/completions": asked}
    return asked


def test_every_answer_is_schema_valid_by_construction(extracted, reports):
    backend, _ = extracted
    assert _check_schema_valid(backend, reports) >= 15
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


def test_the_openai_json_schema_form_is_not_llama_cpp_pythons_and_fails_as_a_server_error(llama_cpp_python_server,
                                                                                         reports, tmp_path):
    """llama-cpp-python's server validates ``response_format.type`` against ``text``/``json_object`` and
    answers the OpenAI ``json_schema`` form with HTTP 500 (its validation error, logged as an internal
    error): by its status a retryable fault, so after ``max_attempts`` the report is a retryable failure,
    recorded and redone by a later run -- the fix is the flavour the server speaks (``json_object``)."""
    from neuraltext.clinical import read_results, run_pipeline
    from neuraltext.clinical.served import ServerUnavailable

    url, log_path = llama_cpp_python_server
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


# ------------------------------------------------------------------------- llama-server only
def test_llama_server_reads_the_json_object_form_too(llama_server, reports):
    backend = Recording(llama_server[0], "smollm2", constraint="json_object", max_context=8192)
    record = Extractor(backend, ExtractConfig(retry=False)).extract(reports[0])
    assert _check_schema_valid(backend, reports[:1]) > 0
    assert not any("SchemaViolation" in flag or "backend error" in flag for flag in record["flags"].values())


def test_requests_in_flight_are_decoded_together_in_llama_servers_slots(llama_server, reports):
    """Four workers, one report each, at the same time: the server decodes several requests in one batch
    (continuous batching: ``/slots`` shows more than one slot busy at once), and each answer is still
    schema-valid by construction (the grammar is per slot)."""
    url, _ = llama_server
    seen = {r.id for r in reports}
    four = reports + [r for r in synthetic_reports(12, seed=3, p_long=0.0) if r.id not in seen][:1]
    backend = Recording(url, "smollm2", constraint="json_schema", max_context=8192)
    extractor = Extractor(backend, ExtractConfig(retry=False))
    most, done = [0], threading.Event()

    def watch():  # /slots answers between two decoding steps
        while not done.wait(0.05):
            try:
                most[0] = max(most[0], busy_slots(url))
            except OSError:  # a poll lost under load: the next one counts
                pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(len(four)) as pool:
            records = list(pool.map(extractor.extract, four))
    finally:
        done.set()
        watcher.join(timeout=30)
    assert _check_schema_valid(backend, four) >= 20
    for record in records:
        assert record["state"] in STATES
        assert not any("SchemaViolation" in flag or "backend error" in flag for flag in record["flags"].values())
    assert most[0] >= 2, "llama-server never had two requests in its batch at once"


def test_a_report_longer_than_a_slot_is_context_too_long_then_a_failed_record(llama_server):
    """HTTP 400 "exceeds the available context size" -> ContextTooLong -> a failed record with the reason."""
    url, log_path = llama_server
    long = max(synthetic_reports(20, seed=3, p_long=1.0), key=lambda r: len(r.text))
    key = next(k for k in KEYS[long.type] if key_candidates(long, k) is None or key_candidates(long, k)[0])
    backend = ServedBackend(url, "smollm2", constraint="json_schema", max_context=SLOT_CONTEXT)
    with pytest.raises(ContextTooLong):
        backend.answer(long, key, SLOT_CONTEXT)
    assert "exceeds the available context size" in log_path.read_text()
    record = Extractor(backend).extract(long)  # both passes (512 and 2,048 tokens) are too long
    assert record["state"] == "failed" and "does not fit" in record["reason"], record["reason"]


class UnknownFormat(ServedBackend):
    """A client asking for a ``response_format`` type that the server does not know."""

    def _constraint_fields(self, candidates, pattern):
        return {"response_format": {"type": "xml"}}


def test_an_unknown_response_format_is_refused_and_recorded_as_final(llama_server, reports):
    url, _ = llama_server
    backend = UnknownFormat(url, "smollm2", constraint="json_schema", max_context=8192)
    with pytest.raises(RequestRefused, match="HTTP 400"):
        backend.answer(reports[0], "date_creation", 8192)
    record = Extractor(backend, ExtractConfig(retry=False)).extract(reports[0])
    assert record["state"] == "failed" and "backend error (RequestRefused)" in record["reason"]


def test_vllm_fields_are_ignored_by_llama_server_and_its_free_answers_refused(llama_server, reports):
    """llama-server reads no ``guided_*`` field: it generates freely, and an answer outside the candidates
    or the regex is a SchemaViolation, never a value."""
    url, _ = llama_server
    backend = ServedBackend(url, "smollm2", constraint="vllm", max_tokens=10, max_context=8192)
    record = Extractor(backend, ExtractConfig(retry=False)).extract(reports[0])
    refused = [k for k, flag in record["flags"].items() if "SchemaViolation" in flag]
    assert refused and all(record["values"][k] is None for k in refused)


def test_no_reply_in_time_is_a_retryable_timeout(llama_server, reports):
    backend = ServedBackend(llama_server[0], "smollm2", constraint="json_schema", timeout=0.001, max_context=8192)
    with pytest.raises(ServerTimeout) as caught:
        backend.answer(reports[0], "date_creation", 8192)
    assert caught.value.retryable
