"""Use case 1, the classical models: from a sentence to eleven labels, and the scores of every method.

1. **TF-IDF** (chapter 1's :class:`~neuraltext.tokenize.TfIdf`) + a classical model;
2. **BERT sentence embeddings** (chapter 7's :func:`~neuraltext.bert.finetune.encode`, the French
   multilingual-e5-small offline) + the same classical models;
3. **fine-tuning** the encoder with the study's head is :mod:`neuraltext.family.finetune`.

The classical families are the study's, each tuned by cross-validation over the hyper-parameters it
tuned: elastic-net logistic regression (C, l1_ratio), gradient boosting (learning rate, number of
estimators), random forest (max features, bootstrap) and the support vector classifier (C, gamma,
kernel). Multilabel = one binary model per label (one-vs-rest), the hyper-parameters shared by the
eleven labels and chosen by micro-F1 on inner folds.

**One decision rule for every method**: label j is predicted when its estimated probability is
above 0.5 (a sigmoid output for fine-tuning; ``predict_proba`` for the classical models; for the
SVC, whose scores are not probabilities, the sign of its decision function, which is the same rule
before Platt scaling). No threshold is tuned per label or per method, so differences in the table come
from the representations and the models, not from the thresholds.

Scores: per-label precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 P R / (P + R), with
the support, and the micro (pooled counts) and macro (mean over labels) F1. Repeated multilabel
stratified k-fold (the study: 5 folds x 10 repetitions) gives a mean and a spread per score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.svm import SVC

from neuraltext.family.data import LABELS

__all__ = [
    "FAMILIES",
    "QUICK_GRIDS",
    "ONE_POINT",
    "classical_model",
    "predict",
    "evaluate_split",
    "per_label_report",
    "tfidf_features",
    "embedding_features",
    "FoldResult",
    "cross_validate",
    "summarise",
    "split_scores",
    "fixed_model",
    "study_layout",
    "micro_macro_f1",
]

#: The study's four model families and the hyper-parameters it tuned (grids sized for a CPU).
FAMILIES: dict[str, tuple[Callable[[int], object], dict[str, list]]] = {
    "Elasticnet lr": (
        lambda seed: LogisticRegression(l1_ratio=0.5, solver="saga", max_iter=1000, tol=1e-3, random_state=seed),
        {"C": [1.0, 10.0], "l1_ratio": [0.1, 0.5]},
    ),
    "Gradient Boosting": (
        lambda seed: GradientBoostingClassifier(max_depth=3, max_features="sqrt", random_state=seed),
        {"learning_rate": [0.1, 0.3], "n_estimators": [50, 100]},
    ),
    "Random Forest": (
        lambda seed: RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1),
        {"max_features": ["sqrt", 0.2], "bootstrap": [True, False]},
    ),
    "SVC": (
        lambda seed: SVC(random_state=seed),
        {"C": [1.0, 10.0], "gamma": ["scale", 0.1], "kernel": ["rbf", "linear"]},
    ),
}
#: Two points per family on its main hyper-parameter: a small search (inner CV) for a CPU.
QUICK_GRIDS: dict[str, dict[str, list]] = {
    "Elasticnet lr": {"C": [1.0, 10.0]},
    "Gradient Boosting": {"learning_rate": [0.1, 0.3]},
    "Random Forest": {"max_features": ["sqrt", "log2"]},
    "SVC": {"kernel": ["rbf", "linear"]},
}
#: One setting per family (the first point of :data:`QUICK_GRIDS`), fitted without a search: the
#: notebook's default on 2 CPU cores, where five fits per family (2 points x 2 inner folds + the refit)
#: on both representations took more than the chapter's time.
ONE_POINT: dict[str, dict[str, list]] = {name: {k: v[:1] for k, v in grid.items()} for name, grid in QUICK_GRIDS.items()}


def classical_model(family: str, seed: int = 0, inner_folds: int = 3, grid: dict | None = None,
                    n_jobs: int | None = None) -> GridSearchCV:
    """One family, one-vs-rest over the labels, tuned by an inner ``inner_folds``-fold grid search
    on micro-F1 (``grid``: the study's hyper-parameters, :data:`FAMILIES`' grid by default). Features
    are scaled by their maximum absolute value (keeps TF-IDF sparse)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    make, default_grid = FAMILIES[family]
    grid = default_grid if grid is None else grid
    model = make_pipeline(MaxAbsScaler(), OneVsRestClassifier(make(seed)))
    param_grid = {f"onevsrestclassifier__estimator__{k}": v for k, v in grid.items()}
    return GridSearchCV(model, param_grid, scoring="f1_micro", cv=inner_folds, n_jobs=n_jobs)


def _decide(model, X) -> np.ndarray:
    """The one decision rule: probability > 0.5 (SVC: decision function > 0)."""
    estimator = model.best_estimator_ if hasattr(model, "best_estimator_") else model
    final = estimator[-1].estimator if hasattr(estimator, "steps") else estimator
    if isinstance(final, SVC):
        return (model.decision_function(X) > 0).astype(int)
    return (model.predict_proba(X) > 0.5).astype(int)


# ---------------------------------------------------------------------------------- scores
def per_label_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str] = LABELS) -> pd.DataFrame:
    """Precision, recall, F1 and support per label (rows), plus ``micro`` and ``macro`` rows.

    A label never predicted has precision 0 (not NaN), as the study's table shows it.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 2 or y_true.shape[1] != len(labels):
        raise ValueError(f"y_true and y_pred must both be (n, {len(labels)}), got {y_true.shape} and {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        bad = sorted(set(np.unique(y).tolist()) - {0, 1})
        if bad:  # sklearn would read the matrix as multiclass-multioutput and score every label 0
            raise ValueError(f"{name} must hold 0/1 labels (one column per label), got the values {bad[:5]}")
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    table = pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=list(labels))
    for avg in ("micro", "macro"):
        pa, ra, fa, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        table.loc[avg] = [pa, ra, fa, int(y_true.sum())]
    table["support"] = table["support"].astype(int)
    return table


# -------------------------------------------------------------------------------- features
def tfidf_features(train_texts: Sequence[str], test_texts: Sequence[str]):
    """Chapter 1's TF-IDF fitted on the training texts only, applied to both (sparse matrices)."""
    from neuraltext.tokenize import TfIdf

    tfidf = TfIdf()
    return tfidf.fit_transform(list(train_texts)), tfidf.transform(list(test_texts))


def embedding_features(texts: Sequence[str], model_name: str = "multilingual-e5-small", pooling: str = "mean",
                       prefix: str | None = "query: ", batch_size: int = 64, device=None) -> np.ndarray:
    """Sentence vectors from our BERT loaded with a pretrained checkpoint (no training: the same
    vectors in every fold, so they are computed once). e5 expects the ``"query: "`` prefix and mean
    pooling; pass ``prefix=None, pooling="cls"`` for a plain BERT."""
    from neuraltext.bert.loading import from_pretrained
    from neuraltext.bert.finetune import encode

    model = from_pretrained(model_name, device=device)
    return encode(model, list(texts), pooling=pooling, prefix=prefix, batch_size=batch_size,
                  normalize=True).numpy()


def predict(model, X) -> np.ndarray:
    """0/1 predictions ``(n, 11)`` by the one decision rule of the module docstring."""
    return _decide(model, X)


def evaluate_split(train_texts: Sequence[str], y_train: np.ndarray, test_texts: Sequence[str], y_test: np.ndarray,
                   families: Sequence[str] = tuple(FAMILIES), embeddings: tuple | None = None,
                   grids: dict[str, dict] | None = None, seed: int = 0, progress: bool = True,
                   n_jobs: int | None = None, tfidf: bool = True, inner_folds: int = 3) -> dict:
    """The study's protocol on one train/test split: every family tuned by inner CV on the training
    part, scored on the test part, on TF-IDF and (given ``embeddings=(E_train, E_test)``) on BERT
    vectors (``tfidf=False``: the BERT vectors only), tuned by ``inner_folds``-fold inner CV; a family
    whose grid has one point (:data:`ONE_POINT`) is fitted once with it, without a search. ``n_jobs``:
    grid points (or, for one point, the labels' binary models) fitted in parallel (joblib processes; 2
    on a 2-core machine).
    Returns ``{method: {"report": DataFrame, "params": dict, "model": fitted}}``."""
    from neuraltext.utils import progress as bar

    views = {"TF-IDF": tfidf_features(train_texts, test_texts)} if tfidf else {}
    if embeddings is not None:
        views["BERT"] = embeddings
    if not views:
        raise ValueError("nothing to evaluate: tfidf=False and no embeddings given")
    jobs = [(view, family) for view in views for family in families]
    out = {}
    for view, family in bar(jobs, desc="models", disable=not progress):
        X_train, X_test = views[view]
        grid = (grids or {}).get(family)
        if grid is not None and all(len(values) == 1 for values in grid.values()):
            # one point: nothing to choose, so no inner search (it would fit the same model k + 1 times)
            params = {k: values[0] for k, values in grid.items()}
            model = fixed_model(family, params, seed).set_params(onevsrestclassifier__n_jobs=n_jobs)
            model.fit(X_train, y_train)
        else:
            model = classical_model(family, seed=seed, grid=grid, n_jobs=n_jobs, inner_folds=inner_folds)
            model.fit(X_train, y_train)
            params = {k.split("__")[-1]: v for k, v in model.best_params_.items()}
        out[f"{family} | {view}"] = {"report": per_label_report(y_test, _decide(model, X_test)),
                                     "params": params, "model": model}
    return out


# ------------------------------------------------------------------------ cross-validation
@dataclass
class FoldResult:
    method: str
    repeat: int
    fold: int
    report: pd.DataFrame
    params: dict


def fixed_model(family: str, params: dict, seed: int = 0):
    """One family with given hyper-parameters (e.g. those :func:`evaluate_split` chose), no search."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    make, _ = FAMILIES[family]
    estimator = make(seed).set_params(**params)
    return make_pipeline(MaxAbsScaler(), OneVsRestClassifier(estimator))


def cross_validate(texts: Sequence[str], y: np.ndarray, families: Sequence[str] = tuple(FAMILIES),
                   embeddings: np.ndarray | None = None, n_splits: int = 5, n_repeats: int = 1,
                   seed: int = 0, grids: dict[str, dict] | None = None, params: dict[str, dict] | None = None,
                   progress: bool = True) -> list[FoldResult]:
    """Repeated multilabel-stratified k-fold (``iterative-stratification``) for every family, on
    TF-IDF and, when ``embeddings`` (one row per text) are given, on the embeddings too. The same folds
    for every method, so the comparison is paired. Each family is tuned by inner CV in every fold
    (the study's nested procedure), unless ``params`` maps a method name (``"SVC | TF-IDF"``) to
    fixed hyper-parameters."""
    from iterstrat.ml_stratifiers import RepeatedMultilabelStratifiedKFold

    from neuraltext.utils import progress as bar

    y = np.asarray(y)
    texts = list(texts)
    if len(texts) != len(y):
        raise ValueError(f"{len(texts)} texts but {len(y)} label rows")
    if embeddings is not None and len(embeddings) != len(texts):
        raise ValueError(f"{len(embeddings)} embedding rows but {len(texts)} texts")
    folds = RepeatedMultilabelStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    results = []
    splits = list(folds.split(np.zeros(len(y)), y))
    for k, (train, test) in enumerate(bar(splits, desc="folds", disable=not progress)):
        repeat, fold = divmod(k, n_splits)
        views = {"TF-IDF": tfidf_features([texts[i] for i in train], [texts[i] for i in test])}
        if embeddings is not None:
            views["BERT"] = (embeddings[train], embeddings[test])
        for view, (X_train, X_test) in views.items():
            for family in families:
                method = f"{family} | {view}"
                if params is not None and method in params:
                    model = fixed_model(family, params[method], seed).fit(X_train, y[train])
                    chosen = params[method]
                else:
                    model = classical_model(family, seed=seed, grid=(grids or {}).get(family)).fit(X_train, y[train])
                    chosen = model.best_params_
                report = per_label_report(y[test], _decide(model, X_test))
                results.append(FoldResult(method, repeat, fold, report, chosen))
    return results


def summarise(results: Sequence[FoldResult], score: str = "f1") -> pd.DataFrame:
    """Mean of ``score`` per method (rows) and label (columns) over folds, and the micro/macro F1
    with a 95% interval from the folds' spread (mean +- 1.96 sd / sqrt(n folds); repeated folds share
    data, so this interval is optimistic: a guide to the ranking, not a test)."""
    rows = {}
    for method in dict.fromkeys(r.method for r in results):
        reports = [r.report[score] for r in results if r.method == method]
        frame = pd.concat(reports, axis=1)
        row = frame.mean(axis=1)
        n = frame.shape[1]
        for avg in ("micro", "macro"):
            half = 1.96 * frame.loc[avg].std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
            row[f"{avg} ±"] = half
        rows[method] = row
    return pd.DataFrame(rows).T


def split_scores(results: dict, score: str = "f1") -> pd.DataFrame:
    """:func:`evaluate_split`'s output -> methods (rows) x labels + micro/macro (columns)."""
    return pd.DataFrame({method: r["report"][score] for method, r in results.items()}).T


def study_layout(summary: pd.DataFrame, score: str = "f1") -> pd.DataFrame:
    """The study's layout: one row per family, ``BERT value (TF-IDF value)`` per label; ``summary``
    has one row per method (``"SVC | TF-IDF"``...) and one column per label."""
    out = {}
    for family in FAMILIES:
        bert, tfidf = f"{family} | BERT", f"{family} | TF-IDF"
        if tfidf not in summary.index:
            continue
        cells = {}
        for label in LABELS:
            t = summary.loc[tfidf, label]
            cells[label] = f"{summary.loc[bert, label]:.2f}({t:.2f})" if bert in summary.index else f"({t:.2f})"
        out[family] = cells
    return pd.DataFrame(out).T


def micro_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """``(micro F1, macro F1)``, in the order of the name: micro pools the eleven labels' counts,
    macro averages their F1s."""
    return (f1_score(y_true, y_pred, average="micro", zero_division=0),
            f1_score(y_true, y_pred, average="macro", zero_division=0))
