"""Tests of semicon_core.evaluation against the reference fixture and brute-force loops."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from semicon_core import evaluation
from semicon_core.evaluation._inputs import check_retrieval_inputs
from semicon_core.evaluation._ranking import iter_query_blocks

FIXTURE = Path(__file__).parent / "fixtures" / "semicon_reference.pt"


# ---------------------------------------------------------------- brute-force references


def brute_relevance(query_labels: np.ndarray, database_labels: np.ndarray) -> np.ndarray:
    """Return the (Nq, Nd) bool relevance matrix with a double loop."""
    relevance = np.zeros((len(query_labels), len(database_labels)), dtype=bool)
    for i, q_label in enumerate(query_labels):
        for j, d_label in enumerate(database_labels):
            if np.ndim(q_label) == 0:
                relevance[i, j] = q_label == d_label
            else:
                relevance[i, j] = bool(np.any(np.logical_and(q_label, d_label)))
    return relevance


def brute_distances(query_codes: np.ndarray, database_codes: np.ndarray) -> np.ndarray:
    """Count differing bits element by element."""
    distances = np.zeros((len(query_codes), len(database_codes)), dtype=np.int64)
    for i, q in enumerate(query_codes):
        for j, b in enumerate(database_codes):
            distances[i, j] = int(np.sum(q != b))
    return distances


def brute_ranking(distances_row: np.ndarray) -> list:
    """Order database indices by (distance, index) with a plain Python sort."""
    return sorted(range(len(distances_row)), key=lambda j: (distances_row[j], j))


def brute_average_precision(query_codes, database_codes, query_labels, database_labels, topk=None) -> np.ndarray:
    """Compute AP query by query with Python loops, ties broken by database index."""
    distances = brute_distances(query_codes, database_codes)
    relevance = brute_relevance(query_labels, database_labels)
    result = []
    for i in range(len(query_codes)):
        ranking = brute_ranking(distances[i])
        if topk is not None:
            ranking = ranking[:topk]
        hits = 0
        precisions = []
        for position, j in enumerate(ranking, start=1):
            if relevance[i, j]:
                hits += 1
                precisions.append(hits / position)
        result.append(float(np.mean(precisions)) if precisions else 0.0)
    return np.array(result)


# ---------------------------------------------------------------- data helpers


def random_codes(generator: np.random.Generator, rows: int, code_length: int) -> np.ndarray:
    return generator.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(rows, code_length))


def random_problem(seed: int, num_query=13, num_database=57, code_length=6, num_classes=4, multi_hot=False):
    """Return a small problem with many ties (short codes) and at least one query without relevant items."""
    generator = np.random.default_rng(seed)
    query_codes = random_codes(generator, num_query, code_length)
    database_codes = random_codes(generator, num_database, code_length)
    if multi_hot:
        query_labels = (generator.random((num_query, num_classes)) < 0.3).astype(np.int64)
        database_labels = (generator.random((num_database, num_classes)) < 0.3).astype(np.int64)
        query_labels[0] = 0
    else:
        query_labels = generator.integers(0, num_classes, num_query)
        database_labels = generator.integers(0, num_classes - 1, num_database)
        query_labels[0] = num_classes - 1
    return query_codes, database_codes, query_labels, database_labels


@pytest.fixture(scope="module")
def map_fixture():
    reference = torch.load(FIXTURE, weights_only=True)["map"]
    return {
        "query_codes": reference["query_codes"].to(torch.float32),
        "database_codes": reference["database_codes"].to(torch.float32),
        "query_labels": reference["query_labels"],
        "database_labels": reference["database_labels"],
        "map_all": reference["map_all"],
        "map_at_100": reference["map_at_100"],
    }


def fixture_args(fixture):
    return fixture["query_codes"], fixture["database_codes"], fixture["query_labels"], fixture["database_labels"]


# ---------------------------------------------------------------- mean average precision


def test_map_matches_reference_fixture(map_fixture):
    result = evaluation.mean_average_precision(*fixture_args(map_fixture))
    assert isinstance(result, float)
    torch.testing.assert_close(result, map_fixture["map_all"], rtol=1e-4, atol=1e-5)


def test_map_at_100_matches_reference_fixture(map_fixture):
    result = evaluation.mean_average_precision(*fixture_args(map_fixture), topk=100)
    torch.testing.assert_close(result, map_fixture["map_at_100"], rtol=1e-4, atol=1e-5)


def test_map_fixture_matches_brute_force(map_fixture):
    arrays = [value.numpy() for value in fixture_args(map_fixture)]
    for topk in (None, 1, 100, 299, 300, 1000):
        expected = brute_average_precision(*arrays, topk=topk)
        result = evaluation.average_precision(*fixture_args(map_fixture), topk=topk)
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6, err_msg=f"topk={topk}")


@pytest.mark.parametrize("multi_hot", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_matches_brute_force(seed, multi_hot):
    problem = random_problem(seed, multi_hot=multi_hot)
    for topk in (None, 1, 5, 20, 57, 100):
        expected = brute_average_precision(*problem, topk=topk)
        result = evaluation.average_precision(*problem, topk=topk)
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6, err_msg=f"topk={topk}")


@pytest.mark.parametrize("strategy", ["count", "sort"])
def test_ranking_strategies_give_brute_force_ranks(strategy):
    problem = random_problem(3, num_query=9, num_database=40, code_length=5, multi_hot=True)
    query, database, q_labels, d_labels = check_retrieval_inputs(*problem)
    distances = brute_distances(problem[0], problem[1])
    relevance = brute_relevance(problem[2], problem[3])
    seen = []
    for block in iter_query_blocks(query, database, q_labels, d_labels, strategy=strategy, block_elements=64):
        for row, query_index in enumerate(block.query_index.tolist()):
            seen.append(query_index)
            ranking = brute_ranking(distances[query_index])
            expected = sorted(position for position, j in enumerate(ranking, start=1) if relevance[query_index, j])
            assert block.relevant_ranks[row].tolist() == expected
            expected_sizes = np.bincount(distances[query_index], minlength=6)
            assert block.bucket_sizes[row].tolist() == expected_sizes.tolist()
    assert sorted(seen) == list(range(9))


def test_map_ties_broken_by_database_index():
    # All database items sit at distance 0, so only the index order ranks them.
    query_codes = np.ones((1, 4))
    database_codes = np.ones((4, 4))
    database_labels = np.array([1, 0, 0, 1])
    result = evaluation.mean_average_precision(query_codes, database_codes, np.array([1]), database_labels)
    assert result == pytest.approx((1 / 1 + 2 / 4) / 2, abs=1e-12)


def test_map_counts_query_without_relevant_as_zero(caplog):
    query_codes = np.ones((2, 4))
    database_codes = np.ones((3, 4))
    with caplog.at_level(logging.WARNING, logger="semicon_core.evaluation"):
        result = evaluation.mean_average_precision(query_codes, database_codes, np.array([0, 5]), np.array([0, 0, 1]))
    assert result == pytest.approx(0.5, abs=1e-12)
    assert "1 of 2 queries have no relevant database item" in caplog.text


def test_map_at_k_returns_every_cutoff(map_fixture):
    result = evaluation.mean_average_precision_at_k(*fixture_args(map_fixture), topk_list=(None, 100))
    assert list(result) == [None, 100]
    assert result[None] == pytest.approx(evaluation.mean_average_precision(*fixture_args(map_fixture)), abs=1e-12)
    torch.testing.assert_close(result[100], map_fixture["map_at_100"], rtol=1e-4, atol=1e-5)


def test_map_accepts_integer_and_numpy_inputs(map_fixture):
    args = fixture_args(map_fixture)
    as_int = (args[0].to(torch.int8), args[1].to(torch.int32), args[2], args[3])
    as_numpy = tuple(value.numpy() for value in args)
    reference = evaluation.mean_average_precision(*args)
    assert evaluation.mean_average_precision(*as_int) == reference
    assert evaluation.mean_average_precision(*as_numpy) == reference


def test_map_one_hot_equals_class_ids(map_fixture):
    args = fixture_args(map_fixture)
    one_hot_query = torch.nn.functional.one_hot(args[2], 8)
    one_hot_database = torch.nn.functional.one_hot(args[3], 8).to(torch.float32)
    result = evaluation.mean_average_precision(args[0], args[1], one_hot_query, one_hot_database)
    assert result == pytest.approx(map_fixture["map_all"], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("query_codes", np.zeros((2, 4)), "query_codes must contain only -1 and \\+1"),
        ("database_codes", np.full((3, 4), 0.5), "database_codes must contain only -1 and \\+1"),
        ("database_codes", np.ones((3, 5)), "same code length"),
        ("query_codes", np.ones(4), "query_codes must have shape"),
        ("query_labels", np.array([0.0, 1.0]), "query_labels with shape \\(N,\\) must hold integer class ids"),
        ("query_labels", np.array([0, 1, 2]), "query_labels must have 2 rows"),
        ("database_labels", np.array([[0, 2], [1, 0], [1, 1]]), "must contain only 0 and 1"),
        ("database_labels", np.array([[0, 1], [1, 0], [1, 1]]), "both be class ids"),
    ],
)
def test_map_rejects_invalid_input(argument, value, message):
    args = {
        "query_codes": np.ones((2, 4)),
        "database_codes": -np.ones((3, 4)),
        "query_labels": np.array([0, 1]),
        "database_labels": np.array([1, 1, 0]),
    }
    args[argument] = value
    with pytest.raises(ValueError, match=message):
        evaluation.mean_average_precision(**args)


@pytest.mark.parametrize("topk", [0, -1, 2.5, True])
def test_map_rejects_invalid_topk(topk):
    with pytest.raises(ValueError, match="topk must be a positive int or None"):
        evaluation.mean_average_precision(np.ones((1, 2)), np.ones((2, 2)), np.array([0]), np.array([0, 1]), topk=topk)
