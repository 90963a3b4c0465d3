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
            ranks = block.relevant_ranks[row].tolist()
            positions = block.relevant_positions[row].tolist()
            assert sorted(ranks) == expected
            for rank, position in zip(ranks, positions):
                assert position == expected.index(rank) + 1
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


def test_map_auto_strategy_falls_back_to_sort():
    # Two classes give about Nd / 2 relevant items per query, so the (distance, prefix)
    # histogram would exceed the distance row and the engine sorts instead.
    problem = random_problem(4, num_query=8, num_database=60, code_length=6, num_classes=2)
    for topk in (None, 10):
        expected = brute_average_precision(*problem, topk=topk)
        result = evaluation.average_precision(*problem, topk=topk)
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6, err_msg=f"topk={topk}")


@pytest.mark.parametrize("use_popcount", [True, False])
@pytest.mark.parametrize("code_length", [6, 12, 30, 64, 70, 130])
def test_map_distance_kernels(monkeypatch, use_popcount, code_length):
    # Covers 8-, 16-, 32- and 64-bit words, several words per code, and the
    # matrix-product kernel used without numpy.bitwise_count.
    if use_popcount and not hasattr(np, "bitwise_count"):
        pytest.skip("numpy.bitwise_count needs numpy >= 2.0")
    monkeypatch.setattr("semicon_core.evaluation._ranking.USE_POPCOUNT", use_popcount)
    problem = random_problem(5, code_length=code_length)
    expected = brute_average_precision(*problem)
    np.testing.assert_allclose(evaluation.average_precision(*problem), expected, rtol=0, atol=1e-6)
    distances = evaluation.hamming_distance(problem[0], problem[1])
    assert distances.numpy().tolist() == brute_distances(problem[0], problem[1]).tolist()


# ---------------------------------------------------------------- Hamming distance and packing


@pytest.mark.parametrize("code_length", [1, 5, 8, 12, 48])
def test_hamming_distance_matches_bit_count(code_length):
    generator = np.random.default_rng(code_length)
    query_codes = random_codes(generator, 7, code_length)
    database_codes = random_codes(generator, 11, code_length)
    expected = brute_distances(query_codes, database_codes)

    dense = evaluation.hamming_distance(query_codes, database_codes)
    assert dense.dtype == torch.int32
    assert dense.numpy().tolist() == expected.tolist()

    blocks = list(evaluation.iter_hamming_distance(query_codes, database_codes, block_size=3))
    assert [start for start, _ in blocks] == [0, 3, 6]
    stacked = torch.cat([distances for _, distances in blocks])
    assert stacked.numpy().tolist() == expected.tolist()

    packed = evaluation.packed_hamming_distance(
        evaluation.pack_codes(query_codes), evaluation.pack_codes(database_codes), block_size=2
    )
    assert packed.dtype == np.int32
    assert packed.tolist() == expected.tolist()


def test_pack_codes_pads_with_zero_bits():
    codes = np.array([[1, -1, 1, 1, -1, -1, -1, 1, 1, 1]])
    packed = evaluation.pack_codes(codes)
    assert packed.dtype == np.uint8
    assert packed.shape == (1, 2)
    assert packed[0].tolist() == [0b10110001, 0b11000000]


def test_packed_hamming_distance_rejects_mismatch():
    with pytest.raises(ValueError, match="same number of bytes"):
        evaluation.packed_hamming_distance(np.zeros((1, 2), np.uint8), np.zeros((1, 3), np.uint8))
    with pytest.raises(ValueError, match="query_packed must be a uint8 numpy array"):
        evaluation.packed_hamming_distance(np.zeros((1, 2), np.int32), np.zeros((1, 2), np.uint8))


# ---------------------------------------------------------------- tie-aware AP


def average_precision_of_order(order, relevant_row) -> float:
    hits = 0
    total = 0.0
    for position, j in enumerate(order, start=1):
        if relevant_row[j]:
            hits += 1
            total += hits / position
    return total / hits if hits else 0.0


def exhaustive_tie_aware(distances_row, relevant_row):
    """Enumerate every ordering consistent with the distances, because each is equally likely under random tie order."""
    import itertools

    values = [
        average_precision_of_order(order, relevant_row)
        for order in itertools.permutations(range(len(distances_row)))
        if all(distances_row[a] <= distances_row[b] for a, b in zip(order, order[1:]))
    ]
    return float(np.mean(values)), min(values), max(values)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tie_aware_matches_exhaustive_permutations(seed):
    problem = random_problem(seed, num_query=5, num_database=7, code_length=2, num_classes=3)
    distances = brute_distances(problem[0], problem[1])
    relevance = brute_relevance(problem[2], problem[3])
    table = evaluation.average_precision_tie_aware(*problem)
    assert table.shape == (5, 3)
    for i in range(5):
        expected = exhaustive_tie_aware(distances[i], relevance[i])
        np.testing.assert_allclose(table[i], expected, rtol=0, atol=1e-12, err_msg=f"query {i}")


def test_tie_aware_matches_monte_carlo():
    problem = random_problem(7, num_query=4, num_database=40, code_length=3, num_classes=3)
    distances = brute_distances(problem[0], problem[1])
    relevance = brute_relevance(problem[2], problem[3])
    table = evaluation.average_precision_tie_aware(*problem)
    generator = np.random.default_rng(0)
    for i in range(4):
        samples = [
            average_precision_of_order(np.lexsort((generator.random(40), distances[i])), relevance[i])
            for _ in range(3000)
        ]
        standard_error = np.std(samples) / np.sqrt(len(samples))
        assert abs(table[i, 0] - np.mean(samples)) < 4 * standard_error + 1e-9


def test_tie_aware_bounds_contain_stable_map(map_fixture):
    result = evaluation.mean_average_precision_tie_aware(*fixture_args(map_fixture))
    assert set(result) == {"expected", "min", "max"}
    assert result["min"] <= map_fixture["map_all"] <= result["max"]
    assert result["min"] <= result["expected"] <= result["max"]


def test_tie_aware_without_ties_equals_map():
    # The database codes sit at distances 0, 1, 2, 3 and 4 from the query, one item each.
    database_codes = np.array([[1, 1, 1, 1], [-1, 1, 1, 1], [-1, -1, 1, 1], [-1, -1, -1, 1], [-1, -1, -1, -1]])
    query_codes = np.ones((1, 4))
    labels = np.array([0, 1, 0, 1, 1])
    result = evaluation.mean_average_precision_tie_aware(query_codes, database_codes, np.array([1]), labels)
    stable = evaluation.mean_average_precision(query_codes, database_codes, np.array([1]), labels)
    assert result["expected"] == pytest.approx(stable, abs=1e-12)
    assert result["min"] == pytest.approx(stable, abs=1e-12)
    assert result["max"] == pytest.approx(stable, abs=1e-12)


# ---------------------------------------------------------------- precision, recall and radius


def brute_found_at_k(distances_row, relevant_row, k):
    return sum(1 for j in brute_ranking(distances_row)[:k] if relevant_row[j])


@pytest.mark.parametrize("multi_hot", [False, True])
def test_precision_recall_at_k_matches_brute_force(multi_hot):
    problem = random_problem(8, multi_hot=multi_hot)
    distances = brute_distances(problem[0], problem[1])
    relevance = brute_relevance(problem[2], problem[3])
    ks = (1, 3, 10, 57, 80)
    result = evaluation.precision_recall_at_k(*problem, ks=ks)

    found = np.array([[brute_found_at_k(distances[i], relevance[i], k) for k in ks] for i in range(13)])
    num_relevant = relevance.sum(axis=1)
    expected_precision = (found / np.minimum(ks, 57)).mean(axis=0)
    with_relevant = num_relevant > 0
    expected_recall = (found[with_relevant] / num_relevant[with_relevant, None]).mean(axis=0)

    assert result["k"].tolist() == list(ks)
    np.testing.assert_allclose(result["precision"], expected_precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["recall"], expected_recall, rtol=0, atol=1e-12)
    assert result["num_queries_with_relevant"] == int(with_relevant.sum())
    np.testing.assert_allclose(evaluation.precision_at_k(*problem, ks=ks), expected_precision, rtol=0, atol=1e-12)


def test_precision_recall_by_rank_spans_database(map_fixture):
    result = evaluation.precision_recall_by_rank(*fixture_args(map_fixture), num_points=11)
    assert result["k"][0] == 1
    assert result["k"][-1] == 300
    assert len(result["k"]) == 11
    assert result["recall"][-1] == pytest.approx(1.0)


def brute_radius_curves(problem):
    distances = brute_distances(problem[0], problem[1])
    relevance = brute_relevance(problem[2], problem[3])
    code_length = problem[0].shape[1]
    retrieved = np.array([[np.sum(row <= r) for r in range(code_length + 1)] for row in distances])
    hits = np.array(
        [[np.sum((distances[i] <= r) & relevance[i]) for r in range(code_length + 1)] for i in range(len(distances))]
    )
    return retrieved, hits, relevance.sum(axis=1)


@pytest.mark.parametrize("multi_hot", [False, True])
def test_precision_recall_by_radius_matches_brute_force(multi_hot):
    problem = random_problem(9, code_length=8, multi_hot=multi_hot)
    retrieved, hits, num_relevant = brute_radius_curves(problem)
    result = evaluation.precision_recall_by_radius(*problem)

    expected_precision = []
    for r in range(9):
        retrieving = retrieved[:, r] > 0
        values = hits[retrieving, r] / retrieved[retrieving, r]
        expected_precision.append(values.mean() if retrieving.any() else np.nan)
    with_relevant = num_relevant > 0
    expected_recall = (hits[with_relevant] / num_relevant[with_relevant, None]).mean(axis=0)

    assert result["radius"].tolist() == list(range(9))
    assert result["average"] == "query"
    np.testing.assert_allclose(result["precision"], expected_precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["recall"], expected_recall, rtol=0, atol=1e-12)
    assert result["num_queries_retrieving"].tolist() == (retrieved > 0).sum(axis=0).tolist()
    assert result["num_queries_with_relevant"] == int(with_relevant.sum())


def test_precision_recall_by_radius_micro_average():
    problem = random_problem(10, code_length=8)
    retrieved, hits, num_relevant = brute_radius_curves(problem)
    result = evaluation.precision_recall_by_radius(*problem, average="micro")
    with np.errstate(invalid="ignore"):
        expected_precision = hits.sum(axis=0) / retrieved.sum(axis=0)
    np.testing.assert_allclose(result["precision"], expected_precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["recall"], hits.sum(axis=0) / num_relevant.sum(), rtol=0, atol=1e-12)


def test_precision_by_radius_is_nan_when_nothing_retrieved():
    query_codes = np.ones((2, 3))
    database_codes = -np.ones((4, 3))
    result = evaluation.precision_recall_by_radius(query_codes, database_codes, np.array([0, 1]), np.array([0, 1, 1, 0]))
    assert np.isnan(result["precision"][:3]).all()
    assert result["num_queries_retrieving"].tolist() == [0, 0, 0, 2]
    assert result["precision"][3] == pytest.approx(0.5)


@pytest.mark.parametrize("radius", [1, 2, 20])
def test_hamming_radius_metrics_match_brute_force(caplog, radius):
    # With 8-bit codes, radius 1 leaves two queries with an empty retrieval, radius 2 none,
    # and radius 20 exceeds the code length, so it retrieves the whole database.
    problem = random_problem(11, code_length=8)
    retrieved, hits, num_relevant = brute_radius_curves(problem)
    column = min(radius, 8)
    with caplog.at_level(logging.WARNING, logger="semicon_core.evaluation"):
        result = evaluation.hamming_radius_metrics(*problem, radius=radius)

    retrieving = retrieved[:, column] > 0
    with_relevant = num_relevant > 0
    expected_ap = []
    for i in range(13):
        if retrieved[i, column]:
            single_query = (problem[0][i : i + 1], problem[1], problem[2][i : i + 1], problem[3])
            expected_ap.append(brute_average_precision(*single_query, topk=int(retrieved[i, column]))[0])
        else:
            expected_ap.append(0.0)
    expected_precision = (hits[retrieving, column] / retrieved[retrieving, column]).mean()
    expected_recall = (hits[with_relevant, column] / num_relevant[with_relevant]).mean()

    assert result["radius"] == radius
    assert result["precision"] == pytest.approx(expected_precision, abs=1e-12)
    assert result["recall"] == pytest.approx(expected_recall, abs=1e-12)
    assert result["map"] == pytest.approx(np.mean(expected_ap), abs=1e-12)
    assert result["num_queries_retrieving"] == int(retrieving.sum())
    assert result["num_queries"] == 13
    warned = f"retrieve no item within Hamming radius {radius}" in caplog.text
    assert warned == (not retrieving.all())


@pytest.mark.parametrize("radius", [-1, 1.5, None])
def test_hamming_radius_metrics_rejects_radius(radius):
    with pytest.raises(ValueError, match="radius must be a non-negative int"):
        evaluation.hamming_radius_metrics(np.ones((1, 2)), np.ones((2, 2)), np.array([0]), np.array([0, 1]), radius=radius)


# ---------------------------------------------------------------- per-class AP


def test_per_class_ap_matches_brute_force(caplog):
    problem = random_problem(12, num_classes=5)
    per_query = brute_average_precision(*problem)
    with caplog.at_level(logging.WARNING, logger="semicon_core.evaluation"):
        result = evaluation.average_precision_per_class(*problem, num_classes=6)
    assert result.shape == (6,)
    for class_id in range(5):
        members = problem[2] == class_id
        if members.any():
            assert result[class_id] == pytest.approx(per_query[members].mean(), abs=1e-12)
        else:
            assert np.isnan(result[class_id])
    assert np.isnan(result[5])
    assert "classes have no query" in caplog.text


def test_per_class_ap_multi_hot_counts_every_label():
    problem = random_problem(13, multi_hot=True)
    per_query = brute_average_precision(*problem)
    result = evaluation.average_precision_per_class(*problem)
    assert result.shape == (4,)
    for class_id in range(4):
        members = problem[2][:, class_id] == 1
        if members.any():
            assert result[class_id] == pytest.approx(per_query[members].mean(), abs=1e-12)
        else:
            assert np.isnan(result[class_id])


def test_worst_classes_orders_and_skips_nan():
    class_ap = np.array([0.5, np.nan, 0.1, 0.3, 0.1])
    result = evaluation.worst_classes(class_ap, count=3, class_names=["a", "b", "c", "d", "e"])
    assert [entry["class_id"] for entry in result] == [2, 4, 3]
    assert [entry["class_name"] for entry in result] == ["c", "e", "d"]
    assert result[0]["ap"] == pytest.approx(0.1)
    assert evaluation.worst_classes(class_ap)[0]["class_name"] is None
    with pytest.raises(ValueError, match="class_names must have 5 entries"):
        evaluation.worst_classes(class_ap, class_names=["a"])


# ---------------------------------------------------------------- bit statistics


def test_bit_statistics_match_numpy(caplog):
    generator = np.random.default_rng(14)
    codes = random_codes(generator, 50, 6)
    codes[:, 4] = 1.0
    share = (codes > 0).mean(axis=0)

    np.testing.assert_allclose(evaluation.bit_balance(codes), codes.astype(np.float64).mean(axis=0), rtol=0, atol=1e-12)

    entropy = evaluation.bit_entropy(codes)
    for bit in range(6):
        p = share[bit]
        expected = 0.0 if p in (0.0, 1.0) else -p * np.log2(p) - (1 - p) * np.log2(1 - p)
        assert entropy[bit] == pytest.approx(expected, abs=1e-12)

    with caplog.at_level(logging.WARNING, logger="semicon_core.evaluation"):
        correlation = evaluation.bit_correlation(codes)
    assert correlation.shape == (6, 6)
    varying = [0, 1, 2, 3, 5]
    np.testing.assert_allclose(
        correlation[np.ix_(varying, varying)], np.corrcoef(codes[:, varying].T), rtol=0, atol=1e-12
    )
    assert np.isnan(correlation[4]).all()
    assert np.isnan(correlation[:, 4]).all()
    assert "bits [4] are constant" in caplog.text


# ---------------------------------------------------------------- evaluate_retrieval


def test_evaluate_retrieval_is_json_and_consistent(map_fixture):
    import json

    args = fixture_args(map_fixture)
    report = evaluation.evaluate_retrieval(*args, topk_list=(10, 100), radius=2)
    json.dumps(report, allow_nan=False)

    assert report["code_length"] == 12
    assert report["num_queries"] == 40
    assert report["num_database"] == 300
    assert report["tie_policy"] == "stable by database index"
    assert report["map"] == pytest.approx(map_fixture["map_all"], rel=1e-4, abs=1e-5)
    assert report["map_at_k"]["100"] == pytest.approx(map_fixture["map_at_100"], rel=1e-4, abs=1e-5)
    assert report["map_at_k"]["10"] == pytest.approx(evaluation.mean_average_precision(*args, topk=10), abs=1e-12)
    precision = evaluation.precision_at_k(*args, ks=(10, 100))
    assert report["precision_at_k"] == pytest.approx({"10": precision[0], "100": precision[1]}, abs=1e-12)
    assert report["map_tie_aware"] == pytest.approx(evaluation.mean_average_precision_tie_aware(*args), abs=1e-12)
    assert report["radius"] == pytest.approx(evaluation.hamming_radius_metrics(*args, radius=2), abs=1e-12)
    assert report["num_queries_without_relevant"] == 0
    assert len(report["bit_balance"]) == 12
    assert len(report["bit_entropy"]) == 12


# ---------------------------------------------------------------- faiss


def test_faiss_missing_raises_install_hint(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        evaluation.build_faiss_binary_index(np.ones((2, 8)))


@pytest.mark.parametrize("code_length", [12, 48])
def test_faiss_search_matches_hamming_ranking(code_length):
    pytest.importorskip("faiss")
    generator = np.random.default_rng(code_length)
    # Few distinct codes make many exact ties, which faiss may order differently.
    database_codes = random_codes(generator, 16, code_length)[generator.integers(0, 16, 300)]
    query_codes = random_codes(generator, 9, code_length)
    topk = 25

    index = evaluation.build_faiss_binary_index(database_codes)
    assert index.d == 8 * ((code_length + 7) // 8)
    assert index.ntotal == 300
    distances, indices = evaluation.faiss_search(index, query_codes, topk)
    assert distances.shape == (9, topk)
    assert indices.shape == (9, topk)

    expected = evaluation.hamming_distance(query_codes, database_codes).numpy()
    for i in range(9):
        # The padding bits leave every distance unchanged.
        assert distances[i].tolist() == expected[i, indices[i]].tolist()
        assert distances[i].tolist() == np.sort(expected[i])[:topk].tolist()
        cut = distances[i, -1]
        for distance in np.unique(distances[i]):
            found = set(indices[i][distances[i] == distance].tolist())
            candidates = set(np.flatnonzero(expected[i] == distance).tolist())
            if distance < cut:
                assert found == candidates, f"query {i}, distance {distance}"
            else:
                assert found <= candidates, f"query {i}, distance {distance}"


def test_faiss_search_rejects_invalid_topk():
    pytest.importorskip("faiss")
    index = evaluation.build_faiss_binary_index(np.ones((3, 8)))
    with pytest.raises(ValueError, match="topk must be an int between 1 and the index size 3"):
        evaluation.faiss_search(index, np.ones((1, 8)), 4)
    with pytest.raises(ValueError, match="use codes of the length the index was built from"):
        evaluation.faiss_search(index, np.ones((1, 16)), 1)
