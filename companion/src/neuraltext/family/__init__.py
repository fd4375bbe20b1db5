"""Use case 1 (chapter 10): valence and people in French teenagers' sentences about their family.

* :mod:`~neuraltext.family.data` -- the study's code format (``jf+,js+``), its eleven labels, synthetic
  sentences and the loader of real files;
* :mod:`~neuraltext.family.classical` -- TF-IDF or BERT sentence vectors + the study's classical
  models tuned by cross-validation, and the per-label scores of every method;
* :mod:`~neuraltext.family.finetune` -- fine-tuning the encoder with the study's head;
* :mod:`~neuraltext.family.plots` -- label co-occurrence and the multilabel confusion, as heatmaps.
"""

from neuraltext.family import data, classical, finetune, plots
from neuraltext.family.data import (VALENCES, SUBJECTS, LABELS, LABEL_NAMES, STUDY_SIZES, STUDY_TEST_SUPPORT,
                                    CodeError, FamilyFileError, FamilySentences, parse_code, parse_line,
                                    labels_to_code, to_matrix, read_family_file, write_family_file,
                                    synthetic_family_sentences)
from neuraltext.family.classical import (FAMILIES, QUICK_GRIDS, ONE_POINT, classical_model, predict, evaluate_split,
                                         per_label_report, tfidf_features, embedding_features, FoldResult,
                                         cross_validate, summarise, split_scores, fixed_model, study_layout,
                                         micro_macro_f1)
from neuraltext.family.finetune import (TopOfEncoder, FineTuneHistory, EarlyStopping, fine_tune, predict_labels)
from neuraltext.family.plots import cooccurrence, label_confusion, label_map

__all__ = ["data", "classical", "finetune", "plots", "VALENCES", "SUBJECTS", "LABELS", "LABEL_NAMES", "STUDY_SIZES",
           "STUDY_TEST_SUPPORT", "CodeError", "FamilyFileError", "FamilySentences", "parse_code",
           "parse_line", "labels_to_code", "to_matrix", "read_family_file", "write_family_file",
           "synthetic_family_sentences", "FAMILIES", "QUICK_GRIDS", "ONE_POINT", "classical_model", "predict",
           "evaluate_split", "per_label_report", "tfidf_features", "embedding_features", "FoldResult",
           "cross_validate", "summarise", "split_scores", "fixed_model", "study_layout", "micro_macro_f1",
           "TopOfEncoder", "FineTuneHistory", "EarlyStopping", "fine_tune", "predict_labels",
           "cooccurrence", "label_confusion", "label_map"]
