"""Use case 1's models and scores: the per-label report against hand-computed values, the one
decision rule, every classical family above a majority baseline, paired folds, and fine-tuning."""

from __future__ import annotations

import numpy as np
import torch
import pytest
from sklearn.metrics import f1_score

from neuraltext.family import LABELS, synthetic_family_sentences
from neuraltext.family import (FAMILIES, ONE_POINT, QUICK_GRIDS, cross_validate, evaluate_split, fixed_model,
                               per_label_report, predict, study_layout, summarise, split_scores,
                               tfidf_features)


def test_per_label_report_by_hand():
    y_true = np.zeros((4, 11), dtype=int)
    y_pred = np.zeros((4, 11), dtype=int)
    y_true[:, 0] = [1, 1, 0, 0]   # "+": TP 1, FN 1, FP 1 -> P = R = F1 = 1/2
    y_pred[:, 0] = [1, 0, 1, 0]
    y_true[:, 4] = [1, 1, 1, 1]   # "j": TP 3, FN 1 -> P 1, R 3/4, F1 6/7
    y_pred[:, 4] = [1, 1, 1, 0]
    y_true[:, 2] = [1, 0, 0, 0]   # "0": never predicted -> precision 0 (not NaN), recall 0
    table = per_label_report(y_true, y_pred)
    assert table.loc["+", ["precision", "recall", "f1", "support"]].tolist() == [0.5, 0.5, 0.5, 2]
    assert table.loc["j", "precision"] == 1.0 and table.loc["j", "recall"] == 0.75
    assert table.loc["j", "f1"] == pytest.approx(6 / 7)
    assert table.loc["0", ["precision", "recall", "f1"]].tolist() == [0.0, 0.0, 0.0]
    # micro pools the counts: TP 4, FP 1, FN 3 -> P 4/5, R 4/7
    assert table.loc["micro", "precision"] == pytest.approx(4 / 5)
    assert table.loc["micro", "recall"] == pytest.approx(4 / 7)
    assert list(table.index[:11]) == list(LABELS)


def test_micro_macro_f1_returns_micro_then_macro():
    from neuraltext.family import micro_macro_f1

    y_true = np.zeros((4, 11), dtype=int)
    y_pred = np.zeros((4, 11), dtype=int)
    y_true[:, 4] = y_pred[:, 4] = 1   # "j": 4 TP -> F1 1
    y_true[0, 0] = 1                  # "+": 1 FN -> F1 0; other labels: no example, F1 0
    micro, macro = micro_macro_f1(y_true, y_pred)
    assert micro == pytest.approx(2 * 4 / (2 * 4 + 1))  # pooled: TP 4, FN 1
    assert macro == pytest.approx(1 / 11)


def test_per_label_report_rejects_bad_shapes_and_values():
    with pytest.raises(ValueError, match=r"\(n, 11\)"):
        per_label_report(np.zeros((3, 11)), np.zeros((3, 10)))
    y = np.eye(3, 11, dtype=int)
    bad = y.copy()
    bad[0, 0] = 2  # sklearn would call it multiclass-multioutput and score every label 0
    with pytest.raises(ValueError, match=r"y_true must hold 0/1 labels .* got the values \[2\]"):
        per_label_report(bad, y)
    with pytest.raises(ValueError, match=r"y_pred must hold 0/1 labels"):
        per_label_report(y, bad)


def test_fixed_model_and_fine_tune_reject_bad_arguments():
    from neuraltext.family import fine_tune

    with pytest.raises(ValueError, match=r"family must be one of \['Elasticnet lr'.*got 'XGBoost'"):
        fixed_model("XGBoost", {})
    texts, y = ["a", "b"], np.zeros((2, 11))
    for kwargs, needle in [({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
                           ({"patience": 0}, "patience must be an integer >= 1"),
                           ({"val_fraction": 1.0}, r"val_fraction must be in \(0, 1\)"),
                           ({"encoder_lr": float("nan")}, "encoder_lr must be a learning rate >= 0"),
                           ({"lr": 0.0}, "lr must be a positive learning rate")]:
        with pytest.raises(ValueError, match=needle):  # before any weights are loaded
            fine_tune(texts, y, model_name="no-such-model", **kwargs)


@pytest.fixture(scope="module")
def small_split():
    data = synthetic_family_sentences(n=400, seed=5)
    return data.split(n_test=100, seed=5)


@pytest.mark.parametrize("family", ["Elasticnet lr", "SVC"])
def test_decision_rule_is_the_models_own(small_split, family):
    """Probability > 0.5 (SVC: decision function > 0) is exactly each binary model's predict."""
    train, test = small_split
    X_train, X_test = tfidf_features(train.sentences, test.sentences)
    model = fixed_model(family, {}).fit(X_train, train.y)
    np.testing.assert_array_equal(predict(model, X_test), model.predict(X_test))


def test_every_family_beats_the_majority_baseline(small_split):
    train, test = small_split
    results = evaluate_split(train.sentences, train.y, test.sentences, test.y, grids=QUICK_GRIDS, progress=False)
    majority = np.tile((train.y.mean(axis=0) > 0.5).astype(int), (len(test), 1))
    baseline = f1_score(test.y, majority, average="micro")
    scores = split_scores(results)
    assert set(scores.index) == {f"{f} | TF-IDF" for f in FAMILIES}
    for method, micro in scores["micro"].items():
        assert micro > baseline + 0.15, (method, micro, baseline)
    layout = study_layout(scores)
    assert layout.loc["SVC", "j"].startswith("(") and list(layout.columns) == list(LABELS)


def test_a_one_point_grid_is_fitted_once_without_a_search(small_split):
    """ONE_POINT (the notebook's default): no inner CV, the point's model fitted once on the training part."""
    from sklearn.model_selection import GridSearchCV

    train, test = small_split
    results = evaluate_split(train.sentences, train.y, test.sentences, test.y, families=["Elasticnet lr", "SVC"],
                             grids=ONE_POINT, progress=False)
    X_train, X_test = tfidf_features(train.sentences, test.sentences)
    for family in ("Elasticnet lr", "SVC"):
        r = results[f"{family} | TF-IDF"]
        assert not isinstance(r["model"], GridSearchCV)
        assert r["params"] == {k: v[0] for k, v in ONE_POINT[family].items()}
        alone = fixed_model(family, r["params"]).fit(X_train, train.y)
        np.testing.assert_array_equal(predict(r["model"], X_test), predict(alone, X_test))


def test_cross_validation_folds_are_paired_and_summarised(small_split):
    train, _ = small_split
    params = {"Elasticnet lr | TF-IDF": {"C": 10.0}, "SVC | TF-IDF": {"kernel": "linear"}}
    results = cross_validate(train.sentences, train.y, families=["Elasticnet lr", "SVC"], n_splits=3,
                             n_repeats=2, params=params, progress=False)
    assert len(results) == 2 * 3 * 2
    for method in params:
        folds = [r for r in results if r.method == method]
        assert sorted((r.repeat, r.fold) for r in folds) == [(a, b) for a in range(2) for b in range(3)]
        # every fold's test part has the same size for both methods (same folds)
        assert [r.report.loc["micro", "support"] for r in folds] == \
               [r.report.loc["micro", "support"] for r in results if r.method == list(params)[0]]
    summary = summarise(results)
    assert {"micro", "macro", "micro ±"} <= set(summary.columns)
    assert (summary["micro ±"] > 0).all()


def test_embeddings_must_match_the_texts(small_split):
    train, _ = small_split
    with pytest.raises(ValueError, match="embedding rows"):
        cross_validate(train.sentences, train.y, embeddings=np.zeros((3, 8)), progress=False)


def test_early_stopping_never_stops_a_run_that_still_improves():
    from neuraltext.family import EarlyStopping

    still = EarlyStopping(patience=1)
    assert all(still.update(v) and not still.stop for v in [1.0, 0.9, 0.85, 0.8499, 0.84989])
    flat = EarlyStopping(patience=2)
    kept = [flat.update(v) for v in [1.0, 0.7, 0.8, 0.75]]
    assert kept == [True, True, False, False] and flat.stop and flat.best_epoch == 2
    late = EarlyStopping(patience=2)
    for v in [1.0, 1.1, 0.9, 1.0]:  # a new best after one bad epoch resets the count
        late.update(v)
    assert not late.stop and late.best_epoch == 3


@pytest.mark.pretrained
def test_fine_tuning_is_fair_pretrained_blocks_at_encoder_lr_and_the_run_recorded(monkeypatch):
    """By default the trained pretrained blocks take encoder_lr's small steps in both settings (top k
    blocks, every block) and the head lr's; the history records the epochs run, the best epoch and
    why the run stopped."""
    import neuraltext.family.finetune as ft

    groups = []
    real = ft._optimizer

    def spy(*args):
        optimizer = real(*args)
        groups.append(optimizer.param_groups)
        return optimizer

    monkeypatch.setattr(ft, "_optimizer", spy)
    data = synthetic_family_sentences(n=48, seed=4)
    kw = dict(model_name="all-minilm-l6-v2", epochs=2, batch_size=16, prefix=None, max_length=16, patience=1)
    for layers in (1, None):
        clf, history = ft.fine_tune(data.sentences, data.y, train_layers=layers, **kw)
        head, encoder = groups[-1]
        assert head["lr"] == 1e-3 and encoder["lr"] == 5e-5
        head_ids = {id(p) for p in clf.head.parameters()}
        assert head_ids == {id(p) for p in head["params"]} and not head_ids & {id(p) for p in encoder["params"]}
        assert history.epochs_run == len(history.eval) and 1 <= history.best_epoch <= history.epochs_run
        assert history.stopped in ("patience", "max epochs")
        # patience 1, at most 2 epochs: stopped by patience exactly when the last epoch was not the best
        assert (history.stopped == "patience") == (history.best_epoch < history.epochs_run)


@pytest.mark.pretrained
def test_fine_tuning_lowers_the_validation_loss():
    from neuraltext.family import fine_tune, predict_labels

    data = synthetic_family_sentences(n=160, seed=2)
    clf, history = fine_tune(data.sentences, data.y, model_name="all-minilm-l6-v2", epochs=3, lr=1e-3,
                             train_layers=1, batch_size=16, patience=3, prefix=None, max_length=32)
    losses = [e["val_loss"] for e in history.eval]
    assert len(losses) == 3 and losses[-1] < losses[0]
    pred = predict_labels(clf, data.sentences[:5], prefix=None)
    assert pred.shape == (5, 11) and set(np.unique(pred)) <= {0, 1}


@pytest.mark.pretrained
def test_encoder_lr_moves_the_encoder_less_than_the_head():
    """``encoder_lr=0`` leaves the trained encoder blocks as loaded while the head learns; with
    ``encoder_lr=None`` they move at the head's rate."""
    from neuraltext.bert import from_pretrained
    from neuraltext.family import fine_tune

    data = synthetic_family_sentences(n=64, seed=3)
    loaded = from_pretrained("all-minilm-l6-v2")
    top = {k: v.clone() for k, v in loaded.encoder[-1].state_dict().items()}
    kw = dict(model_name="all-minilm-l6-v2", epochs=1, lr=1e-3, train_layers=1, batch_size=16,
              prefix=None, max_length=32)
    frozen, _ = fine_tune(data.sentences, data.y, encoder_lr=0.0, **kw)
    moved, _ = fine_tune(data.sentences, data.y, encoder_lr=None, **kw)
    for name, value in frozen.bert.encoder[-1].state_dict().items():
        assert torch.equal(value, top[name]), name
    assert any(not torch.equal(v, top[k]) for k, v in moved.bert.encoder[-1].state_dict().items())


@pytest.mark.pretrained
def test_bert_embedding_models_beat_the_majority_baseline(small_split):
    """Approach 2 end to end on a small sample: sentence vectors from our BERT (the packaged MiniLM,
    CLS-free mean pooling) + two of the study's families, scored like the TF-IDF models."""
    from neuraltext.family import embedding_features

    train, test = small_split
    E = embedding_features(train.sentences + test.sentences, model_name="all-minilm-l6-v2", prefix=None)
    assert E.shape == (len(train) + len(test), 384)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)  # normalised vectors
    results = evaluate_split(train.sentences, train.y, test.sentences, test.y, families=["Elasticnet lr", "SVC"],
                             embeddings=(E[:len(train)], E[len(train):]), tfidf=False, grids=QUICK_GRIDS,
                             progress=False)
    majority = np.tile((train.y.mean(axis=0) > 0.5).astype(int), (len(test), 1))
    baseline = f1_score(test.y, majority, average="micro")
    scores = split_scores(results)
    assert set(scores.index) == {"Elasticnet lr | BERT", "SVC | BERT"}
    assert (scores["micro"] > baseline + 0.1).all(), (scores["micro"].to_dict(), baseline)
