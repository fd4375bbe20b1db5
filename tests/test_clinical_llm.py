"""The LLM backends on two short reports (SmolLM2-135M loaded once), and the hand-made constraint mask."""

from __future__ import annotations

import regex
import pytest

from neuraltext.clinical.constrain import _byte_decoder
from neuraltext.clinical import allowed_tokens, token_bytes
from neuraltext.clinical import Report
from neuraltext.clinical import Extractor
from neuraltext.clinical import read_results, run_pipeline
from neuraltext.clinical import KEYS


def test_allowed_tokens_follow_the_partial_match_and_handle_split_utf8():
    vocab = [b"T", b"T1", b"1", b" N", b"N0", b"x", "é".encode()[:1], "é".encode()[1:], None]
    tnm = regex.compile(r"T[0-4] N[0-3]")
    assert allowed_tokens(tnm, b"", vocab) == [0, 1]
    assert allowed_tokens(tnm, b"T", vocab) == [2]
    assert allowed_tokens(tnm, b"T1", vocab) == [3]
    word = regex.compile(r"(é|e)t")
    assert 6 in allowed_tokens(word, b"", vocab)          # half of "é": may still complete
    assert allowed_tokens(word, "é".encode()[:1], vocab) == [7]
    assert len(_byte_decoder()) == 256
    quote = "’".encode()  # three bytes: an unfinished one is never allowed, the whole character is
    any_text = regex.compile(r".{0,5}")
    assert allowed_tokens(any_text, b"", [quote[:2], quote]) == [1]


def test_token_bytes_of_the_packaged_tokenizer():
    from neuraltext.weights import ModelNotAvailableError, load_tokenizer

    try:
        tok = load_tokenizer("smollm2-135m-instruct")
    except ModelNotAvailableError as err:
        pytest.skip(str(err))
    vocab = token_bytes(tok)
    ids = tok("Prélevé le 01/12/2016", add_special_tokens=False)["input_ids"]
    assert b"".join(vocab[i] for i in ids).decode("utf-8") == "Prélevé le 01/12/2016"
    assert vocab[tok.eos_token_id] is None


# ------------------------------------------------------------------ SmolLM2 on two short reports
CA = Report(id="P9_CA_00_20161201", type="CA", text=(
    "Prélevé le 01/12/2016\nEnregistré le 01/12/2016\n\nExamen n° [REDACTED]\n\nCR édité le : 05/12/2016\n"
    "Validé le : 05/12/2016\n\nLocalisation du prélèvement : Biopsie du psoas droit\n\n"
    "Diagnostic : Métastase d'un carcinome épidermoïde bien différencié de l'exo col\n"))
CC = Report(id="P9_CC_01_20180824", type="CC", text=(
    "Consultation du 24/08/2018\n\nVu en consultation pour un adénocarcinome pulmonaire métastatique au "
    "niveau osseux et ganglionnaire.\n\nAntécédents\n\n- carcinome épidermoïde ORL (2014)\n\nHistoire de la "
    "maladie\n\nAdénocarcinome pulmonaire diagnostiqué le 26 novembre 2015. Classification T1b N0 M1, stade IV.\n"
    "\nSigné électroniquement le 03/09/2018 par le Dr [REDACTED]\n"))


@pytest.fixture(scope="module")
def smollm():
    from neuraltext.weights import ModelNotAvailableError, load_causal_lm

    try:
        return load_causal_lm("smollm2-135m-instruct")
    except ModelNotAvailableError as err:
        pytest.skip(str(err))


def test_constrained_llm_runs_the_whole_pipeline_offline_with_a_retry_pass(smollm, tmp_path, socket_disabled):
    from neuraltext.clinical import ExtractConfig
    from neuraltext.clinical import TransformersBackend

    backend = TransformersBackend(smollm, mode="constrained")
    ex = Extractor(backend, ExtractConfig(context=128))  # the report does not fit 128 tokens: pass 2 (512)
    assert ex.contexts == (128, 512)
    run_pipeline([CA], ex, tmp_path / "r.jsonl")
    (record,) = read_results(tmp_path / "r.jsonl")
    assert record["passes"] == 2 and record["state"] != "failed"
    values = record["values"]
    # constrained answers are valid by construction and come from the report
    assert values["date_creation"] in ("2016-12-01", "2016-12-05")
    assert values["grade_histologique"] == "bien différencié"  # the only grade written in the report
    assert values["site_biopsie"] in ("psoas droit", "exo col")
    assert not [f for f in record["flags"].values() if f.startswith("possible hallucination")]
    too_small = Extractor(backend, ExtractConfig(context=32)).extract(CA)
    assert too_small["state"] == "failed" and "does not fit the 128-token context" in too_small["reason"]


def test_outlines_regex_key_and_candidate_tnm(smollm):
    from neuraltext.clinical import TransformersBackend
    from neuraltext.clinical import parse_answer

    backend = TransformersBackend(smollm, mode="constrained", max_new_tokens=12)
    assert backend.answer(CC, "TNM", 1024) == ("T1b N0 M1", False)  # the only candidate in the report
    raw, _ = backend.answer(CC, "site_metastatique", 1024)  # decoded under the regex by outlines
    sites = parse_answer("site_metastatique", raw)
    assert isinstance(sites, list) and set(sites) <= {"os", "foie", "poumon", "cerveau", "ganglionnaire",
                                                       "surrénale", "plèvre", "péritoine"}


def test_free_llm_output_is_parsed_or_recorded_as_a_failure(smollm):
    from neuraltext.clinical import TransformersBackend

    backend = TransformersBackend(smollm, mode="free", max_new_tokens=12)
    record = Extractor(backend).extract(CC)
    assert record["state"] in ("extracted", "extracted_with_flags", "failed")
    assert set(record["values"]) == set(KEYS["CC"]) | {"CR", "document_type"}
    for key, flag in record["flags"].items():
        assert flag.split(":")[0] in ("failed", "possible hallucination", "not found in the report")
        assert "Consultation du" not in flag


def test_the_prefix_cache_is_keyed_by_the_text_not_the_report_id(smollm):
    """Report B with A's id and another text is answered from B's text (a re-sent, corrected report)."""
    from neuraltext.clinical import TransformersBackend

    b = Report(id=CC.id, type="CC", text=CC.text.replace("métastatique au niveau osseux et ganglionnaire",
                                                         "sans localisation secondaire"))
    backend = TransformersBackend(smollm, mode="constrained")
    on_a = backend.candidate_scores(CC, "metastases")
    on_b = backend.candidate_scores(b, "metastases")  # same id, other text: just after A
    fresh = TransformersBackend(smollm, mode="constrained").candidate_scores(b, "metastases")
    assert set(on_b) == set(fresh) == {"présence", "absence"}
    assert all(abs(on_b[c] - fresh[c]) < 1e-5 for c in fresh)
    assert any(abs(on_a[c] - fresh[c]) > 1e-3 for c in fresh)  # the two texts do score differently


def _tiny_llama():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return LlamaForCausalLM(config).eval()


def _one_by_one(model, cache, last_logits, ids, per_token):
    """The per-candidate path: a deep copy of the prompt's cache and one forward per candidate."""
    import copy
    import torch

    out = []
    with torch.no_grad():
        for row in ids:
            x = torch.tensor([row])
            logits = model(input_ids=x, past_key_values=copy.deepcopy(cache), use_cache=True).logits
            logits = torch.cat([last_logits, logits[:, :-1]], dim=1)
            logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, x.unsqueeze(-1)).sum()
            out.append(float(logp / len(row)) if per_token else float(logp))
    return out


@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("max_batch_tokens", [1024, 7])  # one batch, or several
def test_batched_candidate_scores_equal_the_one_by_one_scores(per_token, max_batch_tokens):
    import torch
    from neuraltext.clinical import score_candidates

    model = _tiny_llama()
    prompt = torch.randint(0, 64, (1, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(input_ids=prompt, use_cache=True)
    cache, last = out.past_key_values, out.logits[:, -1:]
    ids = [[5], [7, 8, 9, 10, 3], [7, 8], [60, 2, 2], [1, 2, 3, 4, 5, 6, 7]]  # lengths differ: padding
    batched = score_candidates(model, cache, last, ids, per_token, pad_id=0, max_batch_tokens=max_batch_tokens)
    assert batched == pytest.approx(_one_by_one(model, cache, last, ids, per_token), abs=1e-5)
    assert cache.get_seq_length() == 11  # the shared prefix is left as it was


def test_the_end_of_turn_token_is_read_from_the_chat_template():
    from neuraltext.gpt.chat import chat_split, end_of_turn_id
    from neuraltext.weights import ModelNotAvailableError, load_tokenizer

    try:
        tok = load_tokenizer("smollm2-135m-instruct")
    except ModelNotAvailableError as err:
        pytest.skip(str(err))
    assert end_of_turn_id(tok) == tok.convert_tokens_to_ids("<|im_end|>")
    prefix, question = build_prompt_of(tok)
    assert prefix.endswith("<|im_end|>\n") and question.endswith("<|im_start|>assistant\n")
    other = load_tokenizer("smollm2-135m-instruct")  # another family's markers, same vocabulary
    other.chat_template = ("{% for m in messages %}<|endoftext|>{{ m['role'] }}: {{ m['content'] }}<|im_start|>"
                           "{% endfor %}{% if add_generation_prompt %}<|endoftext|>assistant: {% endif %}")
    assert end_of_turn_id(other) == other.convert_tokens_to_ids("<|im_start|>")
    head, tail = chat_split(other, [{"role": "user", "content": "Bonjour"}], [{"role": "assistant", "content": "Oui"}])
    assert head.endswith("<|endoftext|>assistant: ") and tail == "Oui<|im_start|>"


def build_prompt_of(tok):
    from neuraltext.clinical import build_prompt

    return build_prompt(tok, "CC", CC.text, "TNM")
