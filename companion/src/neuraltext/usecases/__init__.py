"""The two healthcare use cases, on top of the chapters' modules (no model module imports these).

* :mod:`neuraltext.usecases.family`: valence and people in French teenagers' sentences about their
  family (multilabel classification; TF-IDF vs BERT embeddings vs fine-tuning).
* ``neuraltext.usecases.clinical_*``: French oncology reports -> validated JSON and a patient table with a local LLM.
"""
