"""Tie-aware average precision: AP when items at equal Hamming distance are ordered at random."""

from __future__ import annotations

from typing import Dict

import numpy as np

from ._collect import collect_per_query
from ._inputs import check_retrieval_inputs
from .average_precision import warn_queries_without_relevant


def average_precision_tie_aware(query_codes, database_codes, query_labels, database_labels) -> np.ndarray:
    """Compute, per query, the expected AP under random tie order and its min and max.

    Shapes and encodings are those of :func:`mean_average_precision`. The ranking sorts
    by Hamming distance, and the items at one distance (a tie group) are ordered
    uniformly at random. The expectation is exact, from a closed form per tie group
    (derived in ``_per_query.tie_aware_average_precision``). The min puts the relevant items
    of every group after its other items, and the max puts them first. Only the whole
    ranking is supported, with no ``topk``.

    Returns:
        float64 array (Nq, 3) with columns expected, min, max. A query with no relevant
        item has 0 in all three (logged as a warning).
    """
    query, database, q_labels, d_labels = check_retrieval_inputs(
        query_codes, database_codes, query_labels, database_labels
    )
    results = collect_per_query(query, database, q_labels, d_labels, tie_aware=True)
    warn_queries_without_relevant(int((results.num_relevant == 0).sum()), query.shape[0])
    return results.tie_aware.numpy()


def mean_average_precision_tie_aware(
    query_codes, database_codes, query_labels, database_labels
) -> Dict[str, float]:
    """Compute mAP with ties ordered at random: its exact expectation and its range.

    Shapes and encodings are those of :func:`mean_average_precision`.

    Returns:
        dict with Python floats ``expected`` (mean of the per-query expected AP), ``min``
        (relevant items last in every tie group) and ``max`` (relevant items first). The
        index-stable mAP of :func:`mean_average_precision` lies in [min, max]. A query with
        no relevant item counts as AP 0, as in :func:`mean_average_precision`.
    """
    table = average_precision_tie_aware(query_codes, database_codes, query_labels, database_labels)
    mean = table.mean(axis=0)
    return {"expected": float(mean[0]), "min": float(mean[1]), "max": float(mean[2])}
