"""Use case 1, the models: from a sentence to eleven labels, three ways, evaluated the same way.

1. **TF-IDF** (chapter 1's :class:`~neuraltext.tokenize.TfIdf`) + a classical model;
2. **BERT sentence embeddings** (chapter 7's :func:`~neuraltext.bert.finetune.encode`, the French
   multilingual-e5-small offline) + the same classical models;
3. **fine-tuning** the encoder with the study's head (hidden -> 200 -> 110 -> 11, sigmoid outputs).

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
from torch import nn
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
    "predict_labels",
    "study_layout",
    "fine_tune",
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
#: Two points per family on its main hyper-parameter: the notebook's default on 2 CPU cores.
QUICK_GRIDS: dict[str, dict[str, list]] = {
    "Elasticnet lr": {"C": [1.0, 10.0]},
    "Gradient Boosting": {"learning_rate": [0.1, 0.3]},
    "Random Forest": {"max_features": ["sqrt", "log2"]},
    "SVC": {"kernel": ["rbf", "linear"]},
}


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
    from neuraltext.bert.model import from_pretrained
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
    vectors (``tfidf=False``: the BERT vectors only), tuned by ``inner_folds``-fold inner CV. ``n_jobs``: grid points fitted in parallel (joblib processes; 2 on a 2-core machine).
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
        model = classical_model(family, seed=seed, grid=(grids or {}).get(family), n_jobs=n_jobs,
                                inner_folds=inner_folds)
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


# ----------------------------------------------------------------------------- fine-tuning
class _TopOfEncoder(nn.Module):
    """The trainable part when only the top ``k`` blocks are fine-tuned: those blocks and the head,
    fed the (cached) hidden states that the frozen blocks below them produce."""

    def __init__(self, clf, k: int):
        super().__init__()
        blocks = list(clf.bert.encoder)
        self.blocks = nn.ModuleList(blocks[len(blocks) - k:])  # the same modules as in clf
        self.head = clf.head

    def forward(self, h, mask):
        from neuraltext.bert.finetune import pool

        padding = mask == 0
        for block in self.blocks:
            h = block(h, key_padding_mask=padding)
        return self.head(pool(h, mask, "mean"))


def _frozen_states(clf, texts, k, batch_size, max_length, device):
    """Hidden states after the frozen bottom of the encoder (eval mode, no gradient), once: they
    are the same in every epoch, so fine-tuning the top ``k`` blocks costs k blocks per step, not 12."""
    import torch

    from neuraltext.bert.finetune import tokenize_batch

    bert = clf.bert.eval()
    bottom = list(bert.encoder)[: len(bert.encoder) - k]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths, little padding
    cached = []
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            b = tokenize_batch(clf.tokenizer, [texts[i] for i in idx], max_length, device)
            h = bert.embeddings(b["input_ids"], b.get("token_type_ids"))
            padding = b["attention_mask"] == 0
            for block in bottom:
                h = block(h, key_padding_mask=padding)
            cached.append((idx, h, b["attention_mask"]))
    return cached


def fine_tune(train_texts: Sequence[str], y_train: np.ndarray, model_name: str = "multilingual-e5-small",
              epochs: int = 3, lr: float = 1e-4, batch_size: int = 32, train_layers: int | None = 2,
              val_fraction: float = 0.1, patience: int = 1, max_length: int = 64, prefix: str | None = "query: ",
              seed: int = 0, device=None, encoder_lr: float | None = None):
    """Fine-tune a pretrained encoder with the study's head (H -> 200 -> 110 -> 11, sigmoid) through
    the shared training loop (binary cross-entropy), keeping the epoch with the lowest loss on a
    held-out validation part of the training texts (early stopping after ``patience`` epochs
    without improvement).

    ``train_layers``: how many of the top encoder blocks are trained with the head; the blocks below
    are frozen, so their outputs are computed once and cached (the same numbers every epoch, in eval
    mode). ``None`` trains every block (the study's setting; on a GPU). The token embeddings stay
    frozen either way (e5's 250k x 384 table is 80% of its weights; 1,300 sentences cannot move it
    usefully). ``encoder_lr``: the learning rate of the trained encoder blocks (``None``: ``lr``, as for
    the head). Pretrained blocks need much smaller steps than a new head: with every block trained at
    the head's 1e-3, the model forgets what it knew and predicts the majority label only (measured on
    the synthetic data), hence the usual ``lr`` ~1e-3 for the head and ~1e-5 to 1e-4 for the encoder.
    Returns ``(classifier, history)``; ``history.eval`` lists the validation loss per epoch.
    """
    import torch
    import torch.nn.functional as F

    from neuraltext.bert.model import from_pretrained
    from neuraltext.bert.finetune import BertClassifier, classifier_loss, tokenize_batch
    from neuraltext.training.loop import train
    from neuraltext.utils import get_device, set_seed

    set_seed(seed)
    device = get_device(device)
    texts = [(prefix or "") + t for t in train_texts]
    y_train = np.asarray(y_train, dtype=np.float32)
    if len(texts) != len(y_train):
        raise ValueError(f"{len(texts)} texts but {len(y_train)} label rows")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    n_val = max(1, int(round(val_fraction * len(texts))))
    val, fit = order[:n_val], order[n_val:]

    bert = from_pretrained(model_name, device=device)
    clf = BertClassifier(bert, n_labels=y_train.shape[1], pooling="mean").to(device)
    n_blocks = len(clf.bert.encoder)
    k = n_blocks if train_layers is None else int(train_layers)
    if not 0 <= k <= n_blocks:
        raise ValueError(f"train_layers must be between 0 and {n_blocks} (or None for all), got {train_layers}")
    for p in clf.bert.parameters():
        p.requires_grad_(False)
    for block in list(clf.bert.encoder)[n_blocks - k:]:
        for p in block.parameters():
            p.requires_grad_(True)

    if train_layers is None:  # the whole encoder: tokenised batches through the full model
        model, loss_fn = clf, classifier_loss

        def make_batches(index, shuffle):
            def gen():
                idx = rng.permutation(index) if shuffle else index
                for s in range(0, len(idx), batch_size):
                    part = idx[s:s + batch_size]
                    b = tokenize_batch(clf.tokenizer, [texts[i] for i in part], max_length, torch.device("cpu"))
                    b["labels"] = torch.from_numpy(y_train[part])
                    yield b
            return gen

        def logits(m, b):
            return m(b["input_ids"], b["attention_mask"], b.get("token_type_ids"))
    else:  # the top k blocks + head on the frozen bottom's cached states
        model = _TopOfEncoder(clf, k)
        caches = {"fit": _frozen_states(clf, [texts[i] for i in fit], k, batch_size, max_length, device),
                  "val": _frozen_states(clf, [texts[i] for i in val], k, batch_size, max_length, device)}
        labels = {"fit": torch.from_numpy(y_train[fit]), "val": torch.from_numpy(y_train[val])}

        def make_batches(name, shuffle):
            def gen():
                chunks = caches[name]
                for j in (rng.permutation(len(chunks)) if shuffle else range(len(chunks))):
                    idx, h, mask = chunks[j]
                    yield {"h": h, "mask": mask, "labels": labels[name][idx]}
            return gen

        def logits(m, b):
            return m(b["h"], b["mask"])

        def loss_fn(m, b):
            return F.binary_cross_entropy_with_logits(logits(m, b), b["labels"].to(device))
        fit, val = "fit", "val"

    @torch.no_grad()
    def val_loss(m):
        total, n = 0.0, 0
        for b in make_batches(val, False)():
            z = logits(m, {key: v.to(device) for key, v in b.items()})
            total += float(F.binary_cross_entropy_with_logits(z, b["labels"].to(device), reduction="sum"))
            n += b["labels"].numel()
        return {"val_loss": total / n}

    head = {id(p) for p in clf.head.parameters()}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) in head], "lr": lr},
              {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in head],
               "lr": lr if encoder_lr is None else encoder_lr}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
    best, best_state, waited, history = np.inf, None, 0, None
    for _ in range(epochs):
        history = train(model, loss_fn, make_batches(fit, True), epochs=1, optimizer=optimizer,
                        device=device, evaluate=val_loss, history=history, desc="fine-tune")
        current = history.eval[-1]["val_loss"]
        if current < best - 1e-4:  # keep a copy of the trained weights only (not the frozen ones)
            best, waited = current, 0
            best_state = {name: p.detach().clone() for name, p in clf.named_parameters() if p.requires_grad}
        else:
            waited += 1
            if waited > patience:
                break
    clf.load_state_dict(best_state, strict=False)
    clf.eval()
    return clf, history


def predict_labels(clf, texts: Sequence[str], prefix: str | None = "query: ", max_length: int = 64) -> np.ndarray:
    """The one decision rule for the fine-tuned model: sigmoid probability > 0.5."""
    probs = clf.predict_proba([(prefix or "") + t for t in texts], max_length=max_length)
    return (probs.numpy() > 0.5).astype(int)


def macro_micro(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """(micro F1, macro F1)."""
    return (f1_score(y_true, y_pred, average="micro", zero_division=0),
            f1_score(y_true, y_pred, average="macro", zero_division=0))
