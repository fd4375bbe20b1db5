"""Use case 2 (chapter 11): French oncology reports -> validated JSON -> a patient table, with a local LLM.

One module per step of the pipeline:

* :mod:`~neuraltext.clinical.schema` -- the report types and their keys;
* :mod:`~neuraltext.clinical.reports` -- synthetic patients and reports, and the loaders of real ones;
* :mod:`~neuraltext.clinical.rules`, :mod:`~neuraltext.clinical.llm`, :mod:`~neuraltext.clinical.served`
  -- the backends that answer one key of one report (rules, an in-process LLM, a served model);
* :mod:`~neuraltext.clinical.constrain` -- constrained decoding: only tokens that keep the answer valid;
* :mod:`~neuraltext.clinical.validate` -- parsing an answer into its key's form;
* :mod:`~neuraltext.clinical.grounding` -- is the value in the report (whole words, not negated, or
  inferred by a stated rule)?
* :mod:`~neuraltext.clinical.extract` -- the keys of one report, asked one at a time, with retries;
* :mod:`~neuraltext.clinical.results` -- the JSONL results file: checked records, one writer, readers that
  never write, one effective record per report;
* :mod:`~neuraltext.clinical.pipeline` -- many reports, resumable, retrying outages, in shards;
* :mod:`~neuraltext.clinical.engine` -- the batch run on a Dask cluster (the study's scale);
* :mod:`~neuraltext.clinical.table` -- one row per patient, dates reconciled by explicit rules;
* :mod:`~neuraltext.clinical.evaluate` -- exact match and F1 per key.
"""

from neuraltext.clinical import (schema, reports, rules, constrain, llm, served, grounding, validate, extract,
                                 results, pipeline, engine, table, evaluate)
from neuraltext.clinical.schema import (DOCUMENT_TYPES, KEYS, DATE_KEYS, LIST_KEYS, ENUMS, GRADES, STAGES,
                                        DECISIONS, MET_SITES, TNM_PATTERN, ISO_DATE_PATTERN, normalize_text,
                                        normalize_tnm)
from neuraltext.clinical.reports import (Report, Patient, STYLES, DEV_STYLES, HELD_OUT_STYLES, TumourType,
                                         TUMOUR_TYPES, tumour_table,
                                         synthetic_patients, synthetic_reports, ReportFileError,
                                         read_report_folder, read_report_csv)
from neuraltext.clinical.rules import (RULES, RulesBackend)
from neuraltext.clinical.constrain import (token_bytes, allowed_tokens, Step, constrained_greedy)
from neuraltext.clinical.llm import (SYSTEM, QUESTIONS, REGEX, SITE_TERMS, HISTOLOGY_TERMS,
                                     TransformersBackend, build_prompt, key_candidates, branch_cache,
                                     score_candidates)
from neuraltext.clinical.served import (ServedBackend, ServerError, ServerUnavailable, ServerTimeout, RequestRefused,
                                        MalformedReply, SchemaViolation, NotInsideHospital, check_url, CONSTRAINTS)
from neuraltext.clinical.grounding import (NEGATION_CUES, is_negated, affirmed, denied, metastatic)
from neuraltext.clinical.validate import (InvalidAnswer, NOT_FOUND, parse_answer, is_repetitive,
                                          grounding_problem)
from neuraltext.clinical.extract import (STUDY_CONTEXT, RETRY_FACTOR, ContextTooLong, BackendUnavailable,
                                         is_retryable, ExtractConfig, Extractor, STATES)
from neuraltext.clinical.results import (ResultsFileBusy, RecordError, is_retryable_failure, encode_record,
                                         effective_records, appending, atomic_write)
from neuraltext.clinical.pipeline import (shard_of, done_ids, read_results, run_pipeline, RunSummary,
                                          ResultsFileError, shard_file, load_reports, make_backend,
                                          worker_command, merge_shards, extract_report, pass_counts, main)
from neuraltext.clinical.engine import (run_engine, EngineSummary, backend_extractor)
from neuraltext.clinical.table import (patient_of, reconcile_dates, patient_row, patient_table, export_table)
from neuraltext.clinical.evaluate import (field_scores, score_records)

__all__ = ["schema", "reports", "rules", "constrain", "llm", "served", "grounding", "validate", "extract", "pipeline",
           "table", "evaluate", "DOCUMENT_TYPES", "KEYS", "DATE_KEYS", "LIST_KEYS", "ENUMS", "GRADES",
           "STAGES", "DECISIONS", "MET_SITES", "TNM_PATTERN", "ISO_DATE_PATTERN", "normalize_text",
           "normalize_tnm", "Report", "Patient", "STYLES", "DEV_STYLES", "HELD_OUT_STYLES", "TumourType", "TUMOUR_TYPES", "tumour_table",
           "synthetic_patients", "synthetic_reports", "ReportFileError", "read_report_folder",
           "read_report_csv", "RULES", "RulesBackend", "token_bytes", "allowed_tokens", "Step",
           "constrained_greedy", "SYSTEM", "QUESTIONS", "REGEX", "SITE_TERMS", "HISTOLOGY_TERMS",
           "TransformersBackend", "build_prompt", "key_candidates", "branch_cache", "score_candidates", "ServedBackend", "ServerError",
           "ServerUnavailable", "ServerTimeout", "RequestRefused", "MalformedReply", "SchemaViolation", "NotInsideHospital",
           "check_url",
           "CONSTRAINTS", "NEGATION_CUES", "is_negated", "affirmed", "denied", "metastatic", "InvalidAnswer", "NOT_FOUND", "parse_answer", "is_repetitive", "grounding_problem",
           "STUDY_CONTEXT", "RETRY_FACTOR", "ContextTooLong", "BackendUnavailable", "is_retryable", "results",
           "ResultsFileBusy", "RecordError", "is_retryable_failure", "encode_record", "effective_records", "appending",
           "atomic_write", "ExtractConfig", "Extractor", "STATES",
           "shard_of", "done_ids", "read_results", "run_pipeline", "RunSummary", "ResultsFileError",
           "shard_file", "load_reports", "make_backend", "worker_command", "merge_shards", "extract_report", "pass_counts",
           "engine", "run_engine", "EngineSummary", "backend_extractor",
           "main", "patient_of", "reconcile_dates", "patient_row", "patient_table", "export_table",
           "field_scores", "score_records"]
