"""Each ranking metric against values worked out by hand (the arithmetic is in the comments)."""
import math

import pytest

from eval import metrics

# Ranking a b c d e; relevant b (rank 2), d (rank 4) and x (never retrieved): 3 relevant in all.
RANKING = ["a", "b", "c", "d", "e"]
GOLD = {"b": 1, "d": 1, "x": 1}


def test_hit_rate_is_one_once_a_relevant_id_is_in_the_top_k():
    assert metrics.hit_rate(RANKING, GOLD, 1) == 0.0  # a is not relevant
    assert metrics.hit_rate(RANKING, GOLD, 2) == 1.0  # b is


def test_recall_counts_found_relevant_over_all_relevant():
    assert metrics.recall(RANKING, GOLD, 1) == 0.0
    assert metrics.recall(RANKING, GOLD, 3) == pytest.approx(1 / 3)  # b of {b, d, x}
    assert metrics.recall(RANKING, GOLD, 5) == pytest.approx(2 / 3)  # b, d of {b, d, x}


def test_precision_divides_by_k_even_when_the_ranking_is_shorter():
    assert metrics.precision(RANKING, GOLD, 2) == pytest.approx(1 / 2)  # b of a b
    assert metrics.precision(RANKING, GOLD, 5) == pytest.approx(2 / 5)  # b, d of five
    assert metrics.precision(["b"], GOLD, 10) == pytest.approx(1 / 10)  # one hit, k = 10


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_id_within_k():
    assert metrics.mrr(RANKING, GOLD, 1) == 0.0
    assert metrics.mrr(RANKING, GOLD, 5) == pytest.approx(1 / 2)  # first relevant at rank 2


def test_ndcg_with_binary_labels():
    # DCG@5 = 1/log2(2+1) + 1/log2(4+1) = 0.6309298 + 0.4306766 = 1.0616064
    # IDCG@5 = three relevant at ranks 1-3 = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.6309298 + 0.5 = 2.1309298
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5)
    assert expected == pytest.approx(0.4981883, abs=1e-6)
    assert metrics.ndcg(RANKING, GOLD, 5) == pytest.approx(expected)


def test_ndcg_uses_graded_relevance_as_linear_gain():
    # Ranking a b c with grades a=1, c=2. DCG@3 = 1/log2(2) + 2/log2(4) = 1 + 1 = 2.
    # Ideal order c, a: IDCG@3 = 2/log2(2) + 1/log2(3) = 2 + 0.6309298 = 2.6309298. nDCG = 0.7601887.
    assert metrics.ndcg(["a", "b", "c"], {"a": 1, "c": 2}, 3) == pytest.approx(2 / (2 + 1 / math.log2(3)))
    assert metrics.ndcg(["c", "a"], {"a": 1, "c": 2}, 3) == pytest.approx(1.0)  # the ideal order


def test_ndcg_ideal_is_cut_at_k():
    # One slot: ideal is the best grade alone (2); ranking a (grade 1) gives 1/2.
    assert metrics.ndcg(["a", "c"], {"a": 1, "c": 2}, 1) == pytest.approx(0.5)


def test_average_precision_divides_by_all_relevant():
    # Relevant at ranks 2 and 4: P@2 = 1/2, P@4 = 2/4; sum 1.0 over 3 relevant = 1/3.
    assert metrics.average_precision(RANKING, GOLD, 5) == pytest.approx(1 / 3)
    # Cut at 3: only rank 2 counts: (1/2) / 3 = 1/6.
    assert metrics.average_precision(RANKING, GOLD, 3) == pytest.approx(1 / 6)


def test_zero_graded_ids_are_not_relevant():
    gold = {"a": 0, "b": 1}
    assert metrics.hit_rate(["a"], gold, 1) == 0.0
    assert metrics.recall(["a", "b"], gold, 2) == 1.0


def test_score_query_names_every_metric_at_every_k():
    scores = metrics.score_query(RANKING, GOLD, [1, 5])
    assert set(scores) == {f"{m}@{k}" for m in metrics.METRICS for k in (1, 5)}
    assert scores["mrr@5"] == pytest.approx(0.5)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]  # mean 0.7
    first = metrics.bootstrap(values, seed=3)
    assert first == metrics.bootstrap(values, seed=3)
    assert first.mean == pytest.approx(0.7)
    assert first.low < 0.7 < first.high
    assert 0.0 <= first.low and first.high <= 1.0


def test_bootstrap_of_constant_values_has_no_width():
    estimate = metrics.bootstrap([0.25] * 8)
    assert (estimate.mean, estimate.low, estimate.high, estimate.n) == pytest.approx((0.25, 0.25, 0.25, 8))


def test_summarise_averages_each_metric_over_queries_that_have_it():
    summary = metrics.summarise([{"recall@1": 1.0, "ndcg@1": 0.5}, {"recall@1": 0.0}])
    assert summary["recall@1"].mean == pytest.approx(0.5) and summary["recall@1"].n == 2
    assert summary["ndcg@1"].n == 1
