"""Category tagging: tags stored in the index, re-tagging after an edit, filters, intent, calibration."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from assistant.calibration import (CalibrationReport, LabelMapping, LearnedFit, Label, fit_category,
                                   fit_logistic, map_labels, write_fits, write_model)
from assistant.embedders import HashEmbedder
from assistant.cli import main
from assistant.records import Chunk
from assistant.store import load_index, save_index
from assistant.tagging import (DEFAULT_CATEGORIES, CategoryTagger, LearnedCategory, model_path_for,
                               retag_index)

IDS = ("multiple_pathways", "personalized_competency", "technology", "transitions", "well_rounded",
       "special_populations", "sel")


def test_every_chunk_has_a_score_per_category_and_tags_round_trip(index_copy):
    stored = load_index(index_copy)
    assert all(set(c.categories) == set(IDS) for c in stored.chunks)
    save_index(index_copy, stored.manifest, list(stored.chunks), stored.vectors, stored.sentence_vectors)
    again = load_index(index_copy)
    assert [c.categories for c in again.chunks] == [c.categories for c in stored.chunks]
    assert any(CategoryTagger.load().carried(c.categories) for c in again.chunks)


def test_template_text_carries_no_category(fixture_assistant):
    templates = [c for c in fixture_assistant.index.chunks if c.kind == "template"]
    assert templates
    assert all(not fixture_assistant.tagger.carried(c.categories) for c in templates)


def _edited_categories(tmp_path: Path) -> Path:
    """The bundled definitions with SEL redefined around mentoring, so the RI mentor passage moves."""
    text = DEFAULT_CATEGORIES.read_text(encoding="utf-8")
    start = text.index("[sel]")
    sel = text[start:]
    sel = re.sub(r"(?m)^cues = .*$", lambda _: "cues = ['\\bmentor', '\\bninth grader', '\\bsummer bridge\\b']", sel)
    sel = re.sub(r"(?m)^threshold = .*$", "threshold = 0.3", sel)
    path = tmp_path / "categories.toml"
    path.write_text(text[:start] + sel, encoding="utf-8")
    return path


def _mentor_chunk(index_dir: Path) -> Chunk:
    return next(c for c in load_index(index_dir).chunks if "mentor" in c.text and c.kind == "response")


def test_editing_a_definition_changes_tags_after_retag_cli(index_copy, tmp_path):
    tagger = CategoryTagger.load()
    before = load_index(index_copy)
    assert "sel" not in tagger.carried(_mentor_chunk(index_copy).categories)
    edited = _edited_categories(tmp_path)

    result = CliRunner().invoke(main, ["tag", "--index", str(index_copy), "--categories", str(edited)])
    assert result.exit_code == 0, result.output

    after = load_index(index_copy)
    edited_tagger = CategoryTagger.load(edited)
    assert "sel" in edited_tagger.carried(_mentor_chunk(index_copy).categories)
    assert after.manifest["categories"] == edited_tagger.fingerprint() != before.manifest["categories"]
    assert np.array_equal(after.vectors, before.vectors)  # re-tagging does not re-embed
    assert [c.id for c in after.chunks] == [c.id for c in before.chunks]


def test_retag_reads_the_categories_env(index_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("ESSA_QA_CATEGORIES", str(_edited_categories(tmp_path)))
    retag_index(index_copy, CategoryTagger.load())
    assert "sel" in CategoryTagger.load().carried(_mentor_chunk(index_copy).categories)


def test_category_filter_returns_only_tagged_passages(fixture_assistant):
    # Which fixture passages carry a category depends on the calibrated thresholds; test every one carried.
    carried = {c for chunk in fixture_assistant.index.chunks
               for c in fixture_assistant.tagger.carried(chunk.categories)}
    assert carried
    for category in carried:
        passages = fixture_assistant.search("students programs education", k=20, categories=[category])
        assert passages, category
        assert all(category in p.categories for p in passages)
    unfiltered = fixture_assistant.search("students programs education", k=50)
    assert any(not set(p.categories) & carried for p in unfiltered)


INTENTS = [
    ("How does Nevada help students moving into high school?", {"transitions"}),
    ("What does Delaware do for kids who are homeless?", {"special_populations"}),
    ("How does Massachusetts support English learners?", {"special_populations"}),
    ("What does Nevada do for foster youth?", {"special_populations"}),
    ("Does Nevada offer dual enrollment or early college?", {"multiple_pathways"}),
    ("What career and technical education does Delaware offer?", {"multiple_pathways"}),
    ("How are students prepared for kindergarten in Delaware?", {"transitions"}),
    ("How does Delaware help students who change schools mid-year?", {"transitions"}),
    ("What does Massachusetts do about bullying and school climate?", {"sel"}),
    ("How does Massachusetts teach social and emotional skills?", {"sel"}),
    ("Which states invest in digital learning and devices for students?", {"technology"}),
    ("Does Delaware fund music and art classes?", {"well_rounded"}),
    ("How does Nevada support competency-based learning?", {"personalized_competency"}),
    ("What is Delaware's n-size?", set()),
    ("What are the long-term goals for graduation rates in Nevada?", set()),
    ("How are schools identified for comprehensive support?", set()),
    ("What is the 95 percent participation rule in Massachusetts?", set()),
]


@pytest.mark.parametrize("question,expected", INTENTS)
def test_question_intent(question, expected):
    assert set(CategoryTagger.load().question_categories(question)) == expected


def _chunk(cid: str, state: str, text: str, page=None, paragraph=None, kind="response") -> Chunk:
    return Chunk(id=cid, state=state, source=f"{state}.x", unit=0, page=page, page_label=None,
                 paragraph=paragraph, paragraph_end=paragraph, section="", kind=kind, text=text,
                 char_start=0, char_end=len(text), n_tokens=10)


def test_labels_map_by_locator_and_key_terms():
    chunks = [_chunk("a", "DE", "Summer bridge for ninth grade", page=4),
              _chunk("b", "DE", "Summer bridge and mentors for ninth grade students", page=5),
              _chunk("c", "NV", "Homeless liaisons and McKinney-Vento", paragraph=12),
              _chunk("d", "NV", "nothing relevant", paragraph=30)]
    labels = [Label("l1", "DE", 5, None, ("summer bridge", "Mentors"), ("transitions",)),
              Label("l2", "NV", None, 10, ("homeless liaisons", "mckinney-vento"), ("special_populations",)),
              Label("l3", "NV", None, 25, ("homeless liaisons", "absent term"), ())]
    mapping = map_labels(labels, chunks)
    assert {item.chunk_id: item.categories for item in mapping.labeled} == {
        "b": frozenset({"transitions"}), "c": frozenset({"special_populations"})}
    assert mapping.unmapped == ("l3",)


def test_fit_category_separates_scores():
    similarity = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.3])
    cues = np.array([1.0, 0.6, 0.8, 0.0, 0.2, 0.0])
    truth = np.array([True, True, True, False, False, False])
    fit = fit_category(similarity, cues, np.ones(6, dtype=bool), truth)
    scores = fit.weight * similarity + (1 - fit.weight) * cues
    assert np.array_equal(scores >= fit.threshold, truth)


def test_fit_logistic_learns_a_separating_direction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = x[:, 2] - 0.5 * x[:, 0] > 0.3
    weights, intercept = fit_logistic(x, y, c=10.0)
    assert np.mean((x @ weights + intercept > 0) == y) > 0.95
    assert weights[2] > 0 > weights[0] and abs(weights[4]) < abs(weights[2]) / 3
    # Stronger regularization shrinks the weights.
    assert np.linalg.norm(fit_logistic(x, y, c=0.01)[0]) < np.linalg.norm(weights)


def _report_with_model(embedding: str, dim: int) -> CalibrationReport:
    """A calibration report whose learned SEL model fires on embedding dimension 0 alone."""
    sel = LearnedCategory(intercept=-5.0, similarity=0.0, cue=0.0,
                          embedding=np.eye(dim, dtype=np.float32)[0] * 20)
    return CalibrationReport(mapping=LabelMapping((), (), (), 0), folds=5, cv_metrics=(), final_fits=(),
                             learned=(LearnedFit("sel", 1.0, 1.0, sel),), embedding=embedding)


def _definitions_copy(tmp_path: Path) -> Path:
    path = tmp_path / "categories.toml"
    path.write_text(DEFAULT_CATEGORIES.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_learned_model_round_trips_and_scores_in_its_own_embedding_space(tmp_path):
    embedder = HashEmbedder()
    path = _definitions_copy(tmp_path)
    plain = CategoryTagger.load(path)
    written = write_model(path, _report_with_model(embedder.fingerprint, embedder.dim))
    assert written == model_path_for(path) == tmp_path / "categories.model.toml"
    tagger = CategoryTagger.load(path)
    assert tagger.learned_for(embedder) is not None
    assert tagger.fingerprint() != plain.fingerprint()  # a new model means re-tagging
    vectors = np.zeros((2, embedder.dim), dtype=np.float32)
    vectors[0, 0] = 1.0
    texts = ["a passage", "another passage"]
    scores = tagger.scores(texts, vectors, embedder)
    sel = tagger.ids.index("sel")
    assert scores[0, sel] > 0.99 and scores[1, sel] < 0.01
    # Categories the model does not cover keep the mixed score.
    assert np.allclose(np.delete(scores, sel, 1), np.delete(plain.scores(texts, vectors, embedder), sel, 1))


def test_a_quantized_variant_keeps_its_learned_model_in_a_file_of_its_own(tmp_path):
    """int8 vectors sit a little off fp32 ones: `essa-qa tag --calibrate --write` on an int8
    index writes categories.model.onnx-int8.toml and leaves the fp32 model and thresholds alone."""
    embedder = HashEmbedder()
    path = _definitions_copy(tmp_path)
    base = write_model(path, _report_with_model(embedder.fingerprint, embedder.dim))
    variant = embedder.fingerprint + "+onnx-int8"
    written = write_model(path, _report_with_model(variant, embedder.dim))
    assert written == model_path_for(path, variant) == tmp_path / "categories.model.onnx-int8.toml"
    assert base == model_path_for(path, embedder.fingerprint) and base.is_file()
    tagger = CategoryTagger.load(path)
    assert set(tagger.models) == {embedder.fingerprint, variant}
    assert tagger.learned_for(embedder).embedding == embedder.fingerprint
    assert tagger.model.embedding == embedder.fingerprint


def test_learned_model_for_another_embedder_is_ignored(tmp_path):
    embedder = HashEmbedder()
    path = _definitions_copy(tmp_path)
    write_model(path, _report_with_model("some-other-model@sha256:0", embedder.dim))
    tagger, plain = CategoryTagger.load(path), CategoryTagger.load(DEFAULT_CATEGORIES)
    assert tagger.learned_for(embedder) is None
    vectors = embedder.embed(["homeless students and foster care", "music and arts"])
    texts = ["homeless students and foster care", "music and arts"]
    assert np.allclose(tagger.scores(texts, vectors, embedder), plain.scores(texts, vectors, embedder))


def test_bundled_learned_model_is_readable():
    tagger = CategoryTagger.load()
    assert tagger.model is not None and set(tagger.model.categories) == set(IDS)
    assert len({m.embedding.shape for m in tagger.model.categories.values()}) == 1


def test_write_fits_keeps_the_file_readable(tmp_path):
    from assistant.calibration import CategoryFit

    path = tmp_path / "c.toml"
    path.write_text(DEFAULT_CATEGORIES.read_text(encoding="utf-8"), encoding="utf-8")
    write_fits(path, [CategoryFit("sel", 0.4, 0.61), CategoryFit("technology", 0.7, 0.55)])
    categories = {c.id: c for c in CategoryTagger.load(path).categories}
    assert (categories["sel"].threshold, categories["sel"].similarity_weight) == (0.61, 0.4)
    assert (categories["technology"].threshold, categories["technology"].similarity_weight) == (0.55, 0.7)
    assert "# The seven approach categories" in path.read_text(encoding="utf-8")


def test_bad_definitions_are_one_line_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[sel]\nlabel = "x"\ndescription = "y"\ncues = ["(unclosed"]\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["tag", "--index", str(tmp_path), "--categories", str(path)])
    assert result.exit_code == 2
    assert "bad pattern" in result.output


def test_calibration_labels_file_is_valid_json():
    labels = Path(__file__).resolve().parent.parent / "eval" / "labels" / "labels.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines() if line]
    assert len(rows) >= 250 and all(set(r["categories"]) <= set(IDS) for r in rows)


def test_real_delaware_transitions_passages_and_filter(real_assistant):
    tagger = real_assistant.tagger
    tagged = [c for c in real_assistant.index.chunks
              if c.state == "DE" and "transitions" in tagger.carried(c.categories)]
    assert len(tagged) >= 5
    passages = real_assistant.search("How does Delaware help students move from middle to high school?",
                                     k=10, categories=["transitions"])
    assert passages and all("transitions" in p.categories and p.state == "DE" for p in passages)
    answer = real_assistant.ask("How does Delaware support students during transitions into high school?")
    assert not answer.abstained and "transitions" in answer.categories
