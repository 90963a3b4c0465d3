"""Precision and recall by rank cut-off and by Hamming radius.

Relevance, code encoding and the index-stable tie policy are those of
:func:`mean_average_precision`. Averages are per query (macro) unless stated otherwise.
"""

from __future__ import annotations

import logging
from typing import Dict, Sequence

import numpy as np
import torch

from ._collect import PerQueryResults, collect_per_query
from ._inputs import check_retrieval_inputs

logger = logging.getLogger(__name__)

_AVERAGES = ("query", "micro")


def _check_ks(ks: Sequence[int]) -> tuple:
    if isinstance(ks, (int, np.integer)) or ks is None or len(ks) == 0:
        raise ValueError(f"ks must be a non-empty sequence of positive ints, got {ks!r}")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ks must contain positive ints only, got {k!r} in {ks!r}")
    return tuple(int(k) for k in ks)


def _check_radius(radius: int) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    return int(radius)


def _mean_where(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Average ``values`` (Nq, M) over the rows where ``valid`` (Nq, M) is True, column by column; NaN where none is."""
    counts = valid.sum(dim=0)
    sums = torch.where(valid, values, torch.zeros_like(values)).sum(dim=0)
    return torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(sums, float("nan")))


def precision_recall_at_k(
    query_codes, database_codes, query_labels, database_labels, ks: Sequence[int] = (1, 10, 100, 1000)
) -> Dict[str, object]:
    """Compute precision and recall among the first k items of the ranking, for each k.

    Args:
        query_codes, database_codes, query_labels, database_labels: as in
            :func:`mean_average_precision`.
        ks: positive cut-offs. A cut-off above Nd retrieves the whole database.

    Returns:
        dict with keys

        - ``k``: int64 (K,), the cut-offs;
        - ``precision``: float64 (K,), relevant items found divided by min(k, Nd),
          averaged over all queries;
        - ``recall``: float64 (K,), relevant items found divided by the query's relevant
          count, averaged over the queries that have a relevant item (NaN when none has);
        - ``num_queries_with_relevant``: int.
    """
    query, database, q_labels, d_labels = check_retrieval_inputs(
        query_codes, database_codes, query_labels, database_labels
    )
    cutoffs = _check_ks(ks)
    results = collect_per_query(query, database, q_labels, d_labels, ks=cutoffs)
    return _precision_recall_at_k_from(results, cutoffs, database.shape[0])


def _precision_recall_at_k_from(results: PerQueryResults, ks: tuple, num_database: int) -> Dict[str, object]:
    found = results.relevant_found_at_k.to(torch.float64)
    retrieved = torch.tensor([min(k, num_database) for k in ks], dtype=torch.float64)
    precision = (found / retrieved).mean(dim=0)
    has_relevant = results.num_relevant > 0
    recall_per_query = found / results.num_relevant.clamp(min=1).to(torch.float64)[:, None]
    recall = _mean_where(recall_per_query, has_relevant[:, None].expand_as(found))
    return {
        "k": np.array(ks, dtype=np.int64),
        "precision": precision.numpy(),
        "recall": recall.numpy(),
        "num_queries_with_relevant": int(has_relevant.sum()),
    }


def precision_at_k(
    query_codes, database_codes, query_labels, database_labels, ks: Sequence[int] = (1, 10, 100, 1000)
) -> np.ndarray:
    """Compute the precision@k curve: relevant items among the first k, divided by min(k, Nd).

    Shapes, encodings and tie policy are those of :func:`mean_average_precision`. Returns
    float64 (len(ks),), each entry averaged over all queries, including any query
    without relevant items (precision 0).
    """
    return precision_recall_at_k(query_codes, database_codes, query_labels, database_labels, ks)["precision"]


def precision_recall_by_radius(
    query_codes, database_codes, query_labels, database_labels, average: str = "query"
) -> Dict[str, object]:
    """Compute precision and recall of the items within Hamming radius r, for r = 0..k.

    Args:
        query_codes, database_codes, query_labels, database_labels: as in
            :func:`mean_average_precision`.
        average: "query" averages per-query values. Precision is then averaged only over
            the queries that retrieve at least one item within r, because precision of an
            empty retrieval is undefined, and recall over the queries that have a relevant
            item. "micro" divides totals summed over all queries instead.

    Returns:
        dict with keys

        - ``radius``: int64 (k + 1,), the radii 0..k;
        - ``precision`` and ``recall``: float64 (k + 1,). An entry is NaN when it is
          undefined, because no query retrieves anything or none has a relevant item;
        - ``num_queries_retrieving``: int64 (k + 1,), queries with at least one item within r;
        - ``num_queries_with_relevant``: int;
        - ``average``: the averaging used.

        Ties do not matter here, because a radius keeps all items at equal distance.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    query, database, q_labels, d_labels = check_retrieval_inputs(
        query_codes, database_codes, query_labels, database_labels
    )
    results = collect_per_query(query, database, q_labels, d_labels)
    return _precision_recall_by_radius_from(results, average)


def _precision_recall_by_radius_from(results: PerQueryResults, average: str) -> Dict[str, object]:
    retrieved = results.retrieved_by_radius.to(torch.float64)
    relevant_retrieved = results.relevant_by_radius.to(torch.float64)
    num_relevant = results.num_relevant.to(torch.float64)
    retrieving = results.retrieved_by_radius > 0
    has_relevant = results.num_relevant > 0

    if average == "query":
        precision = _mean_where(relevant_retrieved / retrieved.clamp(min=1), retrieving)
        recall = _mean_where(relevant_retrieved / num_relevant.clamp(min=1)[:, None], has_relevant[:, None].expand_as(retrieving))
    else:
        total_retrieved = retrieved.sum(dim=0)
        total_relevant = num_relevant.sum()
        nan = torch.full_like(total_retrieved, float("nan"))
        precision = torch.where(total_retrieved > 0, relevant_retrieved.sum(dim=0) / total_retrieved.clamp(min=1), nan)
        recall = relevant_retrieved.sum(dim=0) / total_relevant if total_relevant > 0 else nan

    return {
        "radius": np.arange(retrieved.shape[1], dtype=np.int64),
        "precision": precision.numpy(),
        "recall": recall.numpy(),
        "num_queries_retrieving": retrieving.sum(dim=0).numpy(),
        "num_queries_with_relevant": int(has_relevant.sum()),
        "average": average,
    }


def hamming_radius_metrics(
    query_codes, database_codes, query_labels, database_labels, radius: int = 2
) -> Dict[str, object]:
    """Compute precision, recall and mAP of hash lookup within a Hamming radius.

    Retrieval returns every database item within distance ``radius`` of the query. Precision
    is averaged over the queries that retrieve at least one item (it is undefined for an empty
    retrieval), and recall over the queries that have a relevant item. The AP of a query is
    the mean precision at the relevant items within the radius, with ties ordered by
    database index, and 0 when the radius contains no relevant item. mAP averages it over
    all queries.

    Returns:
        dict of Python values: ``radius``, ``precision``, ``recall`` and ``map`` (float, NaN
        where undefined), ``num_queries_retrieving``, ``num_queries_with_relevant`` and
        ``num_queries`` (int). A warning reports queries that retrieve nothing.
    """
    radius = _check_radius(radius)
    query, database, q_labels, d_labels = check_retrieval_inputs(
        query_codes, database_codes, query_labels, database_labels
    )
    results = collect_per_query(query, database, q_labels, d_labels, radius=radius)
    return _hamming_radius_metrics_from(results, radius)


def _hamming_radius_metrics_from(results: PerQueryResults, radius: int) -> Dict[str, object]:
    column = min(radius, results.retrieved_by_radius.shape[1] - 1)
    curves = _precision_recall_by_radius_from(results, "query")
    num_queries = results.num_relevant.shape[0]
    num_retrieving = int(curves["num_queries_retrieving"][column])
    if num_retrieving < num_queries:
        logger.warning(
            "%d of %d queries retrieve no item within Hamming radius %d; precision within the radius "
            "is averaged over the other %d",
            num_queries - num_retrieving,
            num_queries,
            radius,
            num_retrieving,
        )
    return {
        "radius": radius,
        "precision": float(curves["precision"][column]),
        "recall": float(curves["recall"][column]),
        "map": float(results.average_precision_within_radius.mean()),
        "num_queries_retrieving": num_retrieving,
        "num_queries_with_relevant": curves["num_queries_with_relevant"],
        "num_queries": num_queries,
    }


def precision_recall_by_rank(
    query_codes, database_codes, query_labels, database_labels, num_points: int = 100
) -> Dict[str, object]:
    """Compute the precision–recall curve over rank cut-offs spread evenly from 1 to Nd.

    The cut-offs are ``num_points`` distinct integers from linspace(1, Nd). See
    :func:`precision_recall_at_k` for the averaging and the returned keys.
    """
    if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1:
        raise ValueError(f"num_points must be a positive int, got {num_points!r}")
    query, database, q_labels, d_labels = check_retrieval_inputs(
        query_codes, database_codes, query_labels, database_labels
    )
    ks = tuple(int(k) for k in np.unique(np.linspace(1, database.shape[0], num_points).round().astype(np.int64)))
    results = collect_per_query(query, database, q_labels, d_labels, ks=ks)
    return _precision_recall_at_k_from(results, ks, database.shape[0])
