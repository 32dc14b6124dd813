"""Fusion, the second stage, the fitted-models file and fitting with cross-validation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from assistant.errors import ConfigError
from assistant.fit import fit_fusion, fit_pipeline, fusion_grid, prepare
from assistant.fitted import Fitted, default_model_path, load_fitted
from assistant.learning import LinearModel, fit_linear, stratified_folds
from assistant.retrieval import Fusion, RetrievalModels
from assistant.retrieval.fusion import rrf
from assistant.retrieval.rerank import FEATURES as RERANK_FEATURES


def test_rrf_gives_one_over_k_plus_rank_to_the_top_only():
    scores = np.array([0.1, 0.9, -np.inf, 0.5])
    out = rrf(scores, k=10)
    assert out[1] == pytest.approx(1 / 11) and out[3] == pytest.approx(1 / 12) and out[0] == pytest.approx(1 / 13)
    assert out[2] == 0.0  # not listed


def test_fusion_weights_mix_the_lists_and_zero_drops_one():
    allowed = np.array([True, True, True, False])
    signals = {"dense": np.array([0.9, 0.1, 0.5, 0.99]), "sentence": np.array([0.1, 0.2, 0.9, 0.99]),
               "bm25": np.array([0.0, 4.0, 2.0, 9.0])}
    dense_only = Fusion("linear", {"dense": 1.0, "sentence": 0.0, "bm25": 0.0}).fuse(signals, allowed)
    assert np.argmax(dense_only) == 0 and dense_only[3] == -np.inf  # out of scope stays out
    bm25_only = Fusion("linear", {"dense": 0.0, "sentence": 0.0, "bm25": 1.0}).fuse(signals, allowed)
    assert np.argmax(bm25_only) == 1 and bm25_only[1] == pytest.approx(1.0)  # scaled by the best in scope
    mixed = Fusion("rrf", {"dense": 0.5, "sentence": 0.5, "bm25": 0.0}).fuse(signals, allowed)
    assert np.argmax(mixed) == 2  # second on both lists beats first on one
    table = Fusion.from_table(Fusion("rrf", {"dense": 0.3, "sentence": 0.2, "bm25": 0.5}, 15).to_table())
    assert table == Fusion("rrf", {"dense": 0.3, "sentence": 0.2, "bm25": 0.5}, 15)


def test_fusion_grid_covers_every_weighting_including_single_lists():
    grid = fusion_grid()
    assert all(abs(sum(f.weights.values()) - 1) < 1e-9 for f in grid)
    assert Fusion("linear", {"dense": 0.0, "sentence": 0.0, "bm25": 1.0}) in grid
    assert {f.method for f in grid} == {"rrf", "linear"}


def test_linear_model_standardizes_and_round_trips():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(100, 10, 400), rng.normal(0, 0.01, 400)])
    y = (x[:, 1] > 0).astype(float)  # the tiny-scale feature decides
    model = fit_linear(x, y, ("big", "tiny"), c=10.0)
    assert abs(model.weights[1]) > 5 * abs(model.weights[0])
    assert ((model.probability(x) >= 0.5) == (y > 0)).mean() > 0.95
    again = LinearModel.from_table(model.to_table())
    assert np.allclose(again.probability(x), model.probability(x), atol=1e-4)
    with pytest.raises(ValueError):
        LinearModel.from_table({**model.to_table(), "weights": [1.0]})


def test_stratified_folds_spread_each_group():
    groups = ["DE"] * 10 + ["MA"] * 10 + ["NV"] * 5
    folds = stratified_folds(groups, 5)
    for group in ("DE", "MA", "NV"):
        members = [f for f, g in zip(folds, groups) if g == group]
        assert max(members.count(k) for k in range(5)) - min(members.count(k) for k in range(5)) <= 1
    assert folds == stratified_folds(groups, 5)  # fixed seed: the same folds every run


def test_fitted_file_round_trips_and_belongs_to_one_embedder(tmp_path, fixture_assistant):
    n = len(RERANK_FEATURES)
    rerank = LinearModel(RERANK_FEATURES, (0.0,) * n, (1.0,) * n, (0.5,) * n, -1.0)
    fitted = Fitted(RetrievalModels(Fusion("linear", {"dense": 0.2, "sentence": 0.5, "bm25": 0.3}), rerank),
                    embedding=fixture_assistant.embedder.fingerprint, notes={"date": "2026-11-23"})
    path = tmp_path / "pipeline.hash.toml"
    path.write_text(fitted.to_toml(), encoding="utf-8")
    loaded = load_fitted(fixture_assistant.embedder, path)
    assert loaded.retrieval == fitted.retrieval and loaded.notes == {"date": "2026-11-23"}
    other = replace(fitted, embedding="another-model@sha256:0")
    path.write_text(other.to_toml(), encoding="utf-8")
    assert load_fitted(fixture_assistant.embedder, path) == Fitted()  # fitted on another model's scores
    path.write_text("[rerank]\nfeatures = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_fitted(fixture_assistant.embedder, path)
    assert default_model_path("mpnet").name == "pipeline.mpnet.toml"
    assert default_model_path("mpnet", "int8").name == "pipeline.mpnet.int8.toml"


@pytest.mark.real
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_shipped_fitted_parts_belong_to_the_shipped_embedders(precision):
    """Each precision of the default model finds its own fitted file (else it would silently run
    on the unfitted defaults); torch's int8, a different quantization, finds none."""
    from assistant.config import Settings
    from assistant.embedders import get_embedder

    embedder = get_embedder("mpnet", replace(Settings(), embedder_precision=precision))
    fitted = load_fitted(embedder)
    assert fitted.embedding == embedder.fingerprint
    assert fitted.decision is not None and fitted.sentence is not None and fitted.retrieval.rerank is not None
    torch_int8 = get_embedder("mpnet", replace(Settings(), embedder_runtime="torch", embedder_precision="int8"))
    assert load_fitted(torch_int8) == Fitted()


def test_fitting_on_fixture_questions_gives_every_model(fixture_assistant, fixture_questions):
    from assistant.evaluation import Question

    absent = Question("un-top-1", "How does Kansas stop student vaping at football games?", ("KS",), (), (),
                      (), "unanswerable")
    examples = prepare(fixture_assistant, [*fixture_questions, absent])
    assert [e.fittable for e in examples] == [True, True, True, False, True]  # Texas is not indexed
    fusion, score = fit_fusion(fixture_assistant, examples)
    assert fusion in fusion_grid() and 0.0 < score <= 1.0
    fitted = fit_pipeline(fixture_assistant, examples, k=3, notes={"why": "test"})
    assert fitted.embedding == fixture_assistant.embedder.fingerprint
    assert fitted.retrieval.rerank is not None and fitted.sentence is not None
    assert fitted.decision is not None and 0.0 < fitted.decision.threshold < 1.0
    answerer = fixture_assistant.with_fitted(fitted)
    top = answerer.search("mentor for incoming ninth graders", k=3)
    assert top and top[0].relevance is not None  # the second stage ran
    assert fixture_assistant.search("mentor for incoming ninth graders", k=3)[0].relevance is None


def test_cross_fitted_evaluation_holds_every_question_out(fixture_assistant, fixture_questions, fixture_plans):
    from assistant.evaluation import run_evaluation

    report = run_evaluation(fixture_assistant, fixture_questions, k=3, plans_dir=fixture_plans, cv=2)
    assert report.cv == 2 and report.n_questions == len(fixture_questions)
    assert report.summary["verbatim_quotes"] == 1.0
