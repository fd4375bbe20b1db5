"""The served backend against a real ``transformers serve`` on loopback, serving the packaged SmolLM2.

``transformers serve`` (transformers 5.23, extra ``transformers[serving]``: fastapi, uvicorn, openai;
in the companion's ``llm`` extra) is started as a subprocess on 127.0.0.1 and a free port, offline
(``HF_HUB_OFFLINE=1``: the CLI otherwise looks online for a newer version), on the packaged
SmolLM2-135M-Instruct converted to an ordinary transformers folder
(:func:`neuraltext.weights.resolve`; the server also reads ``<repo>:<file>.gguf`` names, but a
local folder needs no hub lookup). It preloads the model, and the test waits for ``/health``.

What the server supports, as found here (and documented in
:mod:`neuraltext.clinical.served`): ``/v1/chat/completions`` *ignores* ``response_format``
(logged, then free generation), refuses vLLM's ``guided_*`` fields with HTTP 422, and has no regex
constraint; ``/v1/systemone`` scores the options of a ``choice`` question -- the backend's
``constraint="choice"``. So the tests check: choice scoring end to end (every key parsed or a
recorded failure, the requests in the server's own access log, choice answers grounded), the
``json_schema`` request degrading to free generation whose non-JSON answers are refused by the
client (:class:`~neuraltext.clinical.served.SchemaViolation`), and the 422 becoming a recorded
final failure (:class:`~neuraltext.clinical.served.RequestRefused`). A server that enforces the
schema: ``tests/test_clinical_llamacpp.py``. No assertion on the 135M model's accuracy.

Time on an idle machine: about 6 s for the server to start, then a few seconds per report.
"""

from __future__ import annotations

import pytest

from neuraltext.clinical import synthetic_reports
from neuraltext.clinical import STATES, ExtractConfig, Extractor
from neuraltext.clinical import key_candidates
from neuraltext.clinical import read_results, run_pipeline
from neuraltext.clinical import KEYS
from neuraltext.clinical.served import MAX_CHOICES
from neuraltext.clinical import ServedBackend
from neuraltext.clinical import grounding_problem

from llm_servers import start_transformers_serve, stop  # tests/llm_servers.py: the servers' one launcher

pytestmark = pytest.mark.pretrained


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``(base_url, model, log_path)`` of a running ``transformers serve``; stopped at the end."""
    pytest.importorskip("fastapi", reason="needs transformers[serving] (the companion's 'llm' extra)")
    pytest.importorskip("uvicorn", reason="needs transformers[serving] (the companion's 'llm' extra)")
    from neuraltext.weights import ModelNotAvailableError, resolve
    from neuraltext.weights.registry import _converted

    try:
        model = _converted(resolve("smollm2-135m-instruct")).path
    except ModelNotAvailableError as err:
        pytest.skip(str(err))
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    proc, url = start_transformers_serve(model, log_path)
    yield url, model, log_path
    stop(proc)


@pytest.fixture(scope="module")
def reports():
    by_type = {}
    for r in synthetic_reports(4, seed=3):
        by_type.setdefault(r.type, r)
    return [by_type["CA"], by_type["RC"]]  # keys answered by choice scoring (CC's lists are generated)


def _all_grounded(report, key, candidates) -> bool:
    """Every candidate is supported by the report: then so is the one chosen."""
    from neuraltext.clinical import InvalidAnswer, parse_answer

    try:
        return all(grounding_problem(key, parse_answer(key, c), report.text) is None for c in candidates)
    except InvalidAnswer:
        return False


def _check_one_state_per_key(records, reports):
    """Every report: one record, a known state; every key: a value, or a flag saying why not."""
    assert sorted(r["id"] for r in records) == sorted(r.id for r in reports)
    for record in records:
        assert record["state"] in STATES
        for key in KEYS[record["type"]]:
            assert key in record["values"]
            assert record["values"][key] is not None or key in record["flags"], (record["id"], key)


def test_choice_scoring_through_transformers_serve(server, reports, tmp_path):
    url, model, log_path = server
    backend = ServedBackend(url, model, constraint="choice", max_tokens=16, max_context=8192)
    out = tmp_path / "served.jsonl"
    summary = run_pipeline(reports, Extractor(backend), out)
    records = read_results(out)
    assert summary.processed == len(reports)
    _check_one_state_per_key(records, reports)
    # the requests reached the server: its own access log has one 200 line per request sent
    log = log_path.read_text()
    assert backend.requests.get("/systemone", 0) > 0
    assert log.count('"POST /v1/systemone HTTP/1.1" 200') == backend.requests["/systemone"]
    assert log.count('"POST /v1/chat/completions HTTP/1.1" 200') == backend.requests.get("/chat/completions", 0)
    assert backend.tokens_processed > 0
    # a choice-scored answer is one of the report's own candidates: grounded, never flagged as invented
    by_id = {r.id: r for r in reports}
    scored = 0
    for record in records:
        report = by_id[record["id"]]
        for key in KEYS[report.type]:
            found = key_candidates(report, key)
            if found is not None and 0 < len(found[0]) <= MAX_CHOICES:
                scored += 1
                if _all_grounded(report, key, found[0]):  # (a yes/no key offers both answers, one ungrounded)
                    assert "possible hallucination" not in record["flags"].get(key, ""), (report.id, key)
                assert record["values"][key] is not None or key in record["flags"]
    assert scored >= 8
    # the server saw report text (it runs inside the hospital); the records hold none beyond values
    for record in records:
        assert by_id[record["id"]].text[:40] not in str(record)


def test_json_schema_is_ignored_by_transformers_serve_and_its_answers_are_refused(server, reports):
    """transformers serve generates freely: an answer that is not the schema's JSON never becomes a value."""
    url, model, log_path = server
    backend = ServedBackend(url, model, constraint="json_schema", max_tokens=10, max_context=8192)
    report = reports[0]
    record = Extractor(backend, ExtractConfig(retry=False)).extract(report)
    assert "Ignoring unsupported fields in the request: {'response_format'}" in log_path.read_text()
    asked = [k for k in KEYS[report.type] if key_candidates(report, k) is None or key_candidates(report, k)[0]]
    assert backend.requests == {"/chat/completions": len(asked)}
    _check_one_state_per_key([record], [report])
    for key in asked:  # each answer: schema-valid (then grounded or flagged), or a recorded SchemaViolation
        value, flag = record["values"][key], record["flags"].get(key, "")
        if "SchemaViolation" in flag:
            assert value is None
        elif value is not None and grounding_problem(key, value, report.text) is not None:
            assert flag.startswith("possible hallucination"), (key, flag)
    assert any("SchemaViolation" in record["flags"].get(k, "") for k in asked)


def test_vllm_fields_are_refused_and_recorded_as_failures(server, reports):
    url, model, _ = server
    record = Extractor(ServedBackend(url, model, constraint="vllm", max_context=8192)).extract(reports[0])
    assert record["state"] == "failed"
    assert "backend error (RequestRefused)" in record["reason"]  # HTTP 422: final, not worth a retry
