"""Metric functions on hand-made cases whose answers are worked out by hand."""

import math

import pytest

from assistant.metrics import (GoldLocator, abstention_scores, at_gold_locator, hit_at_k,
                               holds_key_terms, is_relevant, mean, micro_prf, ndcg_at_k, percentile,
                               precision_recall_f1, quote_in_text, reciprocal_rank, set_counts)

F, T = False, True


def test_hit_at_k():
    ranks = [F, F, T, F]
    assert hit_at_k(ranks, 1) == 0.0
    assert hit_at_k(ranks, 2) == 0.0
    assert hit_at_k(ranks, 3) == 1.0
    assert hit_at_k(ranks, 10) == 1.0
    assert hit_at_k([], 5) == 0.0


def test_reciprocal_rank():
    assert reciprocal_rank([T, F]) == 1.0
    assert reciprocal_rank([F, F, T, T]) == pytest.approx(1 / 3)
    assert reciprocal_rank([F, F]) == 0.0


def test_ndcg_by_hand():
    # relevant at ranks 2 and 3, two relevant items exist: DCG = 1/log2(3) + 1/log2(4),
    # ideal DCG = 1/log2(2) + 1/log2(3).
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k([F, T, T, F], 10, n_relevant=2) == pytest.approx(dcg / idcg)
    # A third relevant item that was not retrieved lowers the score.
    idcg3 = idcg + 1 / math.log2(4)
    assert ndcg_at_k([F, T, T, F], 10, n_relevant=3) == pytest.approx(dcg / idcg3)
    assert ndcg_at_k([T, T], 10, n_relevant=2) == pytest.approx(1.0)
    assert ndcg_at_k([F, F], 10, n_relevant=0) == 0.0
    # Only the first k count, and the ideal is capped at k.
    assert ndcg_at_k([F, T], 1, n_relevant=5) == 0.0
    assert ndcg_at_k([T, F], 1, n_relevant=5) == 1.0


def test_precision_recall_f1():
    prf = precision_recall_f1(2, 1, 3)  # P = 2/3, R = 2/5, F1 = 2PR/(P+R) = 0.5
    assert prf.precision == pytest.approx(2 / 3)
    assert prf.recall == pytest.approx(0.4)
    assert prf.f1 == pytest.approx(0.5)
    assert precision_recall_f1(0, 0, 0).f1 == 0.0


def test_set_counts_and_micro_prf():
    assert set_counts({"a", "b"}, {"b", "c"}) == (1, 1, 1)
    # q1: predicted {a,b}, gold {a}: tp1 fp1; q2: predicted {}, gold {c,d}: fn2 -> P=1/2, R=1/3
    prf = micro_prf([({"a", "b"}, {"a"}), ((), ("c", "d"))])
    assert prf.precision == pytest.approx(0.5)
    assert prf.recall == pytest.approx(1 / 3)
    assert prf.f1 == pytest.approx(0.4)


def test_abstention_scores():
    # 2 unanswerable (one declined), 3 answerable (one wrongly declined)
    abstained = [T, F, T, F, F]
    unanswerable = [T, T, F, F, F]
    s = abstention_scores(abstained, unanswerable)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(0.5)
    assert s.false_abstention_rate == pytest.approx(1 / 3)
    assert s.false_abstentions == 1
    with pytest.raises(ValueError):
        abstention_scores([T], [T, F])


def test_percentile_and_mean():
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile(list(range(101)), 95) == pytest.approx(95)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    assert mean([1, 2, 3]) == 2
    assert mean([]) is None


def test_gold_locator_pdf_and_docx():
    pdf = [GoldLocator("DE", page=59)]
    assert at_gold_locator("DE", 59, None, None, pdf)
    assert not at_gold_locator("DE", 60, None, None, pdf)
    assert not at_gold_locator("MA", 59, None, None, pdf)
    docx = [GoldLocator("NV", paragraph=403)]
    assert at_gold_locator("NV", None, 401, 404, docx)
    assert at_gold_locator("NV", None, 403, None, docx)
    assert not at_gold_locator("NV", None, 404, 410, docx)
    assert not at_gold_locator("NV", None, 398, 402, docx)


def test_key_terms_half_rounded_up():
    terms = ["n-size", "subgroup", "accountability"]  # 3 terms: 2 needed
    assert holds_key_terms("The N-SIZE for each Subgroup", terms)
    assert not holds_key_terms("the n-size is fifteen", terms)
    assert holds_key_terms("chronic absenteeism", ["Chronic absenteeism", "attendance"])  # 1 of 2
    assert not holds_key_terms("anything", [])


def test_relevance_needs_both_locator_and_terms():
    locators = [GoldLocator("DE", page=59)]
    terms = ["n-size"]
    assert is_relevant("DE", 59, None, None, "an n-size of 15", locators, terms)
    assert not is_relevant("DE", 59, None, None, "goals for 2030", locators, terms)
    assert not is_relevant("DE", 58, None, None, "an n-size of 15", locators, terms)


def test_quote_in_text_ignores_layout_only():
    page = "Schools offer dual enrollment\ncourses with the community college."
    assert quote_in_text("dual enrollment courses with the community college.", page)
    assert not quote_in_text("dual enrolment courses", page)
    assert not quote_in_text("   ", page)
