"""Use case 1 (chapter 10): valence and people in French teenagers' sentences about their family.

* :mod:`~neuraltext.family.data` -- the study's code format (``jf+,js+``), its eleven labels, synthetic
  sentences and the loader of real files;
* :mod:`~neuraltext.family.models` -- TF-IDF or BERT sentence vectors + classical models tuned by
  cross-validation, fine-tuning the encoder with the study's head, and the per-label scores.
"""

from neuraltext.family import data, models
from neuraltext.family.data import (VALENCES, SUBJECTS, LABELS, LABEL_NAMES, STUDY_SIZES, STUDY_TEST_SUPPORT,
                                    CodeError, FamilyFileError, FamilySentences, parse_code, parse_line,
                                    labels_to_code, to_matrix, read_family_file, write_family_file,
                                    synthetic_family_sentences)
from neuraltext.family.models import (FAMILIES, QUICK_GRIDS, classical_model, predict, evaluate_split,
                                      per_label_report, tfidf_features, embedding_features, FoldResult,
                                      cross_validate, summarise, split_scores, fixed_model, predict_labels,
                                      study_layout, fine_tune)

__all__ = ["data", "models", "VALENCES", "SUBJECTS", "LABELS", "LABEL_NAMES", "STUDY_SIZES",
           "STUDY_TEST_SUPPORT", "CodeError", "FamilyFileError", "FamilySentences", "parse_code",
           "parse_line", "labels_to_code", "to_matrix", "read_family_file", "write_family_file",
           "synthetic_family_sentences", "FAMILIES", "QUICK_GRIDS", "classical_model", "predict",
           "evaluate_split", "per_label_report", "tfidf_features", "embedding_features", "FoldResult",
           "cross_validate", "summarise", "split_scores", "fixed_model", "predict_labels", "study_layout",
           "fine_tune"]
