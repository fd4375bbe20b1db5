"""Use case 2, a local causal LM as the extraction backend: free, or constrained per key.

One prompt per report type (:data:`SYSTEM`, the report goes in the system message) and one question
per key (:data:`QUESTIONS`), as the study asks its keys separately. The chat is laid out so that the
**report is a shared prefix** (:func:`neuraltext.gpt.chat.chat_split`, the tokenizer's own template):
its key/value cache is computed once per report text and branched for each key
(:func:`branch_cache`), so eight keys cost one pass over the report plus eight short questions.

Two modes:

* ``"free"`` -- greedy generation of up to ``max_new_tokens``; whatever comes out is parsed and
  validated (:func:`~neuraltext.clinical.validate.parse_answer`). With a 135M model this is
  poor: the point of the comparison.
* ``"constrained"`` -- the answer cannot leave the key's form:

  - **candidate scoring** for keys whose answer is one of a known set: enumerations (grade, stage,
    decision: the values written in the report when there are any, else all), dates (the candidates are the date expressions :func:`find_dates` finds in *this*
    report) and text spans (sites and histologies of a terminology found in the report; report lines
    for the diagnosis). The model scores each candidate ``c`` by its log-likelihood
    ``sum_t log p(c_t | prompt, c_<t)`` including the end-of-turn token of the model's chat template
    (per token for lines, which differ in length) and the best one is the answer -- grounded by
    construction. The candidates are scored together, one forward over the padded batch on the shared
    prompt (:func:`score_candidates`);
  - **regex-constrained decoding** with ``outlines`` for keys whose answer is built, not picked
    (``TNM``, the list of metastatic sites, the list of cancers): at every step only tokens that keep
    the output a prefix of a match of the key's regular expression are allowed (chapter 11 shows the
    mask by hand).

The terminology of span candidates here is the generator's (a hospital would use ICD-O-3
topography and morphology): a stated shortcut of the synthetic setting.
"""

from __future__ import annotations

import copy
import hashlib
import re

import torch

from neuraltext.data.dates import find_dates
from neuraltext.gpt.chat import chat_split, end_of_turn_id
from neuraltext.clinical.extract import ContextTooLong
from neuraltext.clinical.schema import DATE_KEYS, ENUMS, KEYS, MET_SITES, TNM_PATTERN, normalize_tnm

__all__ = ["SYSTEM", "QUESTIONS", "REGEX", "SITE_TERMS", "HISTOLOGY_TERMS", "TransformersBackend", "build_prompt",
           "key_candidates", "branch_cache", "score_candidates"]

SYSTEM = {
    "CA": "Tu es un assistant d'extraction d'informations médicales. Voici un compte rendu "
          "d'anatomopathologie (CA). Réponds à chaque question par la valeur seule, recopiée du texte, "
          "ou « non précisé ».\n\nCompte rendu :\n",
    "CC": "Tu es un assistant d'extraction d'informations médicales. Voici un compte rendu de consultation "
          "d'oncologie (CC). Réponds à chaque question par la valeur seule, recopiée du texte, "
          "ou « non précisé ».\n\nCompte rendu :\n",
    "RC": "Tu es un assistant d'extraction d'informations médicales. Voici un compte rendu de réunion de "
          "concertation pluridisciplinaire (RCP). Réponds à chaque question par la valeur seule, recopiée "
          "du texte, ou « non précisé ».\n\nCompte rendu :\n",
}
QUESTIONS = {
    "date_creation": "Quelle est la date du prélèvement ?",
    "date_validation": "Quelle est la date de validation du compte rendu ?",
    "date_edition": "Quelle est la date d'édition (ou de signature) du compte rendu ?",
    "site_primitif": "Quel est le site (organe) primitif du cancer ?",
    "site_biopsie": "Quel est le site de la biopsie (localisation du prélèvement) ?",
    "type_histologique": "Quel est le type histologique de la tumeur ?",
    "grade_histologique": "Quel est le grade de différenciation ?",
    "diagnostic": "Quelle est la conclusion diagnostique ?",
    "TNM": "Quelle est la classification TNM ?",
    "liste_cancers": "Quels sont tous les cancers du patient (actuel et antécédents) ?",
    "date_consultation": "Quelle est la date de la consultation ?",
    "date_diagnostic": "Quelle est la date du diagnostic du cancer ?",
    "metastases": "Y a-t-il des métastases (présence ou absence) ?",
    "site_metastatique": "Quels sont les sites métastatiques ?",
    "stade_tumeur": "Quel est le stade de la tumeur ?",
    "date_rcp": "Quelle est la date de la RCP ?",
    "decision": "Quelle est la décision thérapeutique de la RCP ?",
    "essai_clinique": "Un essai clinique est-il proposé (oui ou non) ?",
}
_WORD = r"[a-zàâçéèêëîïôûùüœ'\-]{1,16}"
_MET = "|".join(sorted(MET_SITES))
REGEX = {
    "TNM": r"T(is|x|[0-4][abc]?) N(x|[0-3][abc]?) M(x|[01][abc]?)",
    "site_metastatique": rf"non précisé|({_MET})(, ({_MET})){{0,4}}",
    "liste_cancers": rf"{_WORD}( {_WORD}){{0,4}}(, {_WORD}( {_WORD}){{0,4}}){{0,3}}",
}
SITE_TERMS = ("poumon", "sein gauche", "sein droit", "exo col", "côlon sigmoïde", "rectum", "prostate", "vessie",
              "pancréas", "ovaire droit", "rein gauche", "estomac", "psoas droit", "foie",
              "ganglion sus-claviculaire gauche", "os iliaque", "plèvre")
HISTOLOGY_TERMS = ("adénocarcinome", "carcinome épidermoïde", "carcinome canalaire infiltrant", "carcinome lobulaire",
                   "adénocarcinome lieberkühnien", "adénocarcinome acinaire", "carcinome urothélial",
                   "adénocarcinome canalaire", "carcinome séreux de haut grade", "carcinome à cellules claires")
_LINE_KEYS = {"diagnostic"}


def build_prompt(tokenizer, report_type: str, text: str, key: str) -> tuple[str, str]:
    """``(prefix, question)``: the chat split where the per-key part starts (after the system turn), by
    :func:`neuraltext.gpt.chat.chat_split` (the question ends with the assistant's header)."""
    return chat_split(tokenizer, [{"role": "system", "content": SYSTEM[report_type] + text}],
                      [{"role": "user", "content": QUESTIONS[key]}])


def _lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"^(>>|-)\s*", "", line.strip())
        if ":" in line:
            line = line.split(":", 1)[1].strip()
        if 15 <= len(line) <= 200 and not find_dates(line) and "[REDACTED]" not in line:
            out.append(line.rstrip("."))
    return list(dict.fromkeys(out))


def key_candidates(report, key: str) -> tuple[list[str], bool] | None:
    """The candidate answers of ``key`` in ``report`` and whether to score per token; ``None``
    when the key is decoded under a regex instead."""
    low = report.text.lower()
    if key in ENUMS:
        options = list(ENUMS[key])
        if key in ("stade_tumeur", "grade_histologique", "decision"):  # those written in the report, if any
            present = [o for o in options if re.search(rf"(?<![\w-]){re.escape(o.lower())}(?![\w-])", low)]
            options = present or options
        return options, False
    if key == "TNM":
        found = [normalize_tnm(m.group(0)) for m in re.finditer(TNM_PATTERN, report.text)]
        return (list(dict.fromkeys(found)), False) if found else None
    if key in DATE_KEYS:
        return list(dict.fromkeys(report.text[s:e] for s, e, _ in find_dates(report.text))), False
    if key in _LINE_KEYS:
        return _lines(report.text), True
    if key in ("site_primitif", "site_biopsie"):
        return [t for t in SITE_TERMS if t in low], False
    if key == "type_histologique":
        return [t for t in HISTOLOGY_TERMS if t in low], False
    return None


def branch_cache(cache, batch: int):
    """A new KV cache holding ``cache``'s keys and values for ``batch`` rows; ``cache`` is left as it is
    (the shared report prefix). For ``transformers``' plain dynamic layers the rows are views of the
    shared tensors, concatenated with the new tokens' keys at the next forward (no deep copy); other
    cache kinds (sliding windows...) are deep-copied and repeated."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers):
        return DynamicCache([(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1))
                             for layer in layers])
    branch = copy.deepcopy(cache)
    if batch > 1:
        branch.batch_repeat_interleave(batch)
    return branch


@torch.no_grad()
def score_candidates(model, cache, last_logits: torch.Tensor, candidate_ids: list[list[int]], per_token: bool = False,
                     pad_id: int = 0, max_batch_tokens: int = 1024) -> list[float]:
    """``log p(c | prompt) = sum_t log p(c_t | prompt, c_<t)`` of every candidate (per token if ``per_token``),
    the candidates scored together over one shared prefix.

    ``cache``: the prompt's KV cache (left unchanged); ``last_logits`` ``(1, 1, V)``: the logits after the
    prompt, which predict each candidate's first token. The candidates are right-padded into one batch
    ``(K, L)``: with causal attention a real token never sees the padding after it, so one forward over
    the batch (the prompt's cache broadcast to ``K`` rows by :func:`branch_cache`) gives every candidate's
    logits exactly; the padded positions are masked out of the sums. Batches are cut to about
    ``max_batch_tokens`` tokens (the logits are ``K x L x V`` floats); one host sync per batch.
    """
    lengths = [len(ids) for ids in candidate_ids]
    if not candidate_ids or min(lengths) == 0:
        raise ValueError(f"candidate_ids must be non-empty lists of token ids, got lengths {lengths}")
    device = last_logits.device
    scores: list[torch.Tensor] = []
    per_batch = max(1, max_batch_tokens // max(lengths))
    for start in range(0, len(candidate_ids), per_batch):
        chunk = candidate_ids[start:start + per_batch]
        K, L = len(chunk), max(len(ids) for ids in chunk)
        ids = torch.full((K, L), pad_id, dtype=torch.long, device=device)
        for k, row in enumerate(chunk):
            ids[k, :len(row)] = torch.tensor(row, device=device)
        n = torch.tensor([len(row) for row in chunk], device=device)
        mask = torch.arange(L, device=device)[None, :] < n[:, None]  # (K, L): real tokens
        logits = model(input_ids=ids, past_key_values=branch_cache(cache, K), use_cache=True).logits
        pred = torch.cat([last_logits.expand(K, 1, -1), logits[:, :-1]], dim=1).float()  # predicts token t
        logp = pred.gather(-1, ids.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(pred, dim=-1)  # (K, L)
        total = (logp * mask).sum(dim=1)
        scores.append(total / n if per_token else total)
    return torch.cat(scores).tolist()  # the one sync with the host


class TransformersBackend:
    """A causal LM answering one key at a time; ``mode`` is ``"free"`` or ``"constrained"``.

    ``model``: a packaged name (``"smollm2-135m-instruct"``), a hub name or folder, or a loaded
    ``(model, tokenizer)`` pair, as :func:`neuraltext.weights.load_causal_lm` returns it (to share one
    model between backends).
    """

    def __init__(self, model="smollm2-135m-instruct", mode: str = "constrained", device=None,
                 max_new_tokens: int = 24):
        if mode not in ("free", "constrained"):
            raise ValueError(f"mode must be 'free' or 'constrained', got {mode!r}")
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
        else:
            from neuraltext.weights.registry import load_causal_lm

            self.model, self.tokenizer = load_causal_lm(model, device=device)
        self.mode, self.max_new_tokens = mode, max_new_tokens
        self.name = f"llm-{mode}"
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.device = next(self.model.parameters()).device
        self._prefix: tuple | None = None  # (hash of the prefix text, prefix ids, cache): one report at a time
        self._generators: dict[str, object] = {}
        self.tokens_processed = 0
        self.end_of_turn = end_of_turn_id(self.tokenizer)  # <|im_end|> for SmolLM2, <|eot_id|> for Llama 3...

    # ---------------------------------------------------------------------------- model calls
    def _ids(self, text: str) -> torch.Tensor:
        return self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(self.device)

    @torch.no_grad()
    def _forward(self, ids: torch.Tensor, cache=None):
        self.tokens_processed += ids.shape[1]
        out = self.model(input_ids=ids, past_key_values=cache, use_cache=True)
        return out.logits, out.past_key_values

    def _report_prefix(self, prefix_text: str):
        """The prefix's ids and KV cache, computed once per prefix. Keyed by a hash of the prefix text
        (the report's type and text), never by the report's id: two reports with one id and other
        texts (a re-sent, corrected report) must not share a cache."""
        key = hashlib.sha256(prefix_text.encode("utf-8")).hexdigest()
        if self._prefix is None or self._prefix[0] != key:
            ids = self._ids(prefix_text)
            _, cache = self._forward(ids)
            self._prefix = (key, ids, cache)
        return self._prefix

    def _candidate_ids(self, candidates: list[str]) -> list[list[int]]:
        """Each candidate's token ids followed by the template's end-of-turn token: the whole answer."""
        return [self.tokenizer(c, add_special_tokens=False)["input_ids"] + [self.end_of_turn] for c in candidates]

    @torch.no_grad()
    def _score(self, cache, last_logits: torch.Tensor, candidate: str, per_token: bool) -> float:
        """log p(candidate + end of turn | prompt) for one candidate, summed or averaged per token: the
        readable version of :func:`score_candidates` (which :meth:`choose` uses)."""
        ids = torch.tensor(self._candidate_ids([candidate]), device=self.device)
        logits, _ = self._forward(ids, branch_cache(cache, 1))
        logits = torch.cat([last_logits, logits[:, :-1]], dim=1)  # logits predicting each candidate token
        logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids.unsqueeze(-1)).sum()
        return float(logp / ids.shape[1]) if per_token else float(logp)

    def choose(self, cache, last_logits, candidates: list[str], per_token: bool = False) -> str:
        """The candidate the model finds most likely as the whole answer (``""`` if there is none)."""
        if not candidates:
            return ""
        ids = self._candidate_ids(candidates)
        self.tokens_processed += sum(map(len, ids))
        scores = score_candidates(self.model, cache, last_logits, ids, per_token, pad_id=self.end_of_turn)
        return candidates[max(range(len(candidates)), key=scores.__getitem__)]

    def _generate(self, ids: torch.Tensor, cache, output_type=None) -> tuple[str, bool]:
        kwargs = dict(max_new_tokens=self.max_new_tokens, do_sample=False, past_key_values=copy.deepcopy(cache))
        self.tokens_processed += ids.shape[1]
        if output_type is None:
            with torch.no_grad():
                out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs,
                                          pad_token_id=self.tokenizer.eos_token_id)
            new = out[0, ids.shape[1]:]
            self.tokens_processed += len(new)
            truncated = len(new) >= self.max_new_tokens and int(new[-1]) not in (self.tokenizer.eos_token_id,
                                                                                  self.end_of_turn)
            return self.tokenizer.decode(new, skip_special_tokens=True), truncated
        import outlines

        if "model" not in self._generators:
            self._generators["model"] = outlines.from_transformers(self.model, self.tokenizer)
        if output_type not in self._generators:
            self._generators[output_type] = outlines.Generator(self._generators["model"], outlines.types.Regex(output_type))
        prompt = self.tokenizer.decode(ids[0])
        text = self._generators[output_type](prompt, **kwargs)
        self.tokens_processed += len(self._ids(text)[0]) if text else 0
        return text, False

    # ---------------------------------------------------------------------------- the backend API
    def candidates(self, report, key: str) -> tuple[list[str], bool] | None:
        """See :func:`key_candidates`."""
        return key_candidates(report, key)

    def _prompt(self, report, key: str, context: int):
        """``(prefix ids, question ids, prefix cache)``; ContextTooLong when the prompt does not fit."""
        if key not in KEYS.get(report.type, ()):
            raise KeyError(f"key {key!r} is not a key of report type {report.type!r}")
        prefix_text, question = build_prompt(self.tokenizer, report.type, report.text, key)
        q_ids = self._ids(question)
        needed = len(self.tokenizer(prefix_text, add_special_tokens=False)["input_ids"]) + q_ids.shape[1] \
            + self.max_new_tokens
        if needed > context:
            raise ContextTooLong(needed, context)
        _, p_ids, cache = self._report_prefix(prefix_text)
        return p_ids, q_ids, cache

    def candidate_scores(self, report, key: str, context: int = 8192) -> dict[str, float]:
        """The model's score of each candidate answer of ``key`` (see :meth:`choose`); ``{}`` for a key
        decoded under a regex."""
        found = self.candidates(report, key)
        if not found or not found[0]:
            return {}
        _, q_ids, cache = self._prompt(report, key, context)
        logits, q_cache = self._forward(q_ids, branch_cache(cache, 1))
        cands, per_token = found
        ids = self._candidate_ids(cands)
        scores = score_candidates(self.model, q_cache, logits[:, -1:], ids, per_token, pad_id=self.end_of_turn)
        return dict(zip(cands, scores))

    def answer(self, report, key: str, context: int) -> tuple[str, bool]:
        p_ids, q_ids, cache = self._prompt(report, key, context)
        full = torch.cat([p_ids, q_ids], dim=1)
        if self.mode == "free":
            return self._generate(full, cache)
        found = self.candidates(report, key)
        if found is None:
            return self._generate(full, cache, REGEX[key])
        cands, per_token = found
        logits, q_cache = self._forward(q_ids, branch_cache(cache, 1))
        return self.choose(q_cache, logits[:, -1:], cands, per_token), False
