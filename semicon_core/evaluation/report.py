"""The full retrieval report used by the evaluation notebook, computed in one pass over the database."""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import torch

from ._collect import collect_per_query
from ._inputs import check_retrieval_inputs, check_topk_list
from .average_precision import warn_queries_without_relevant
from .bits import bit_balance, bit_entropy
from .curves import _check_radius, _hamming_radius_metrics_from, _precision_recall_at_k_from

TIE_POLICY = "stable by database index"


def _plain(value: float) -> Optional[float]:
    """Return ``value`` as a float, or None for NaN, which strict JSON cannot encode."""
    value = float(value)
    return None if math.isnan(value) else value


def evaluate_retrieval(
    query_codes,
    database_codes,
    query_labels,
    database_labels,
    topk_list: Sequence[int] = (100, 1000),
    radius: int = 2,
) -> Dict[str, object]:
    """Compute the standard retrieval metrics and return them as JSON-serialisable Python values.

    Args:
        query_codes: (Nq, k) float or integer tensor or numpy array, values in {-1, +1}.
        database_codes: (Nd, k), same encoding.
        query_labels: (Nq,) integer class ids or (Nq, C) one-hot / multi-hot rows.
        database_labels: (Nd,) or (Nd, C), the same encoding.
        topk_list: cut-offs for mAP@k and precision@k, each a positive int.
        radius: Hamming radius for hash-lookup precision, recall and mAP.

    Returns:
        dict with keys

        - ``code_length``, ``num_queries``, ``num_database`` (int) and ``tie_policy`` (str);
        - ``map`` (float): mAP over the whole ranking, ties by database index;
        - ``map_at_k`` and ``precision_at_k``: dicts from str(k) to float;
        - ``map_tie_aware``: dict with ``expected``, ``min``, ``max`` (floats) for random tie order;
        - ``radius``: dict with ``radius``, ``precision``, ``recall``, ``map``,
          ``num_queries_retrieving``, ``num_queries_with_relevant`` and ``num_queries``
          (see :func:`hamming_radius_metrics`);
        - ``num_queries_without_relevant`` (int): queries whose AP counts as 0;
        - ``bit_balance`` and ``bit_entropy``: lists of k floats for the query codes, and
          ``mean_bit_entropy`` (float).

        An undefined value (NaN) is stored as None.
    """
    query, database, q_labels, d_labels = check_retrieval_inputs(
        query_codes, database_codes, query_labels, database_labels
    )
    cutoffs = check_topk_list(topk_list)
    if any(topk is None for topk in cutoffs):
        raise ValueError(
            f"topk_list must contain positive ints only, got {topk_list!r}; mAP over the whole ranking is always reported"
        )
    radius = _check_radius(radius)

    results = collect_per_query(
        query, database, q_labels, d_labels, topk_list=(None,) + cutoffs, ks=cutoffs, radius=radius, tie_aware=True
    )
    num_without = int((results.num_relevant == 0).sum())
    warn_queries_without_relevant(num_without, query.shape[0])

    mean_ap = results.average_precision.mean(dim=0)
    at_k = _precision_recall_at_k_from(results, cutoffs, database.shape[0])
    tie_aware = results.tie_aware.mean(dim=0)
    radius_metrics = _hamming_radius_metrics_from(results, radius)
    balance = bit_balance(query)
    entropy = bit_entropy(query)

    return {
        "code_length": int(query.shape[1]),
        "num_queries": int(query.shape[0]),
        "num_database": int(database.shape[0]),
        "tie_policy": TIE_POLICY,
        "map": float(mean_ap[0]),
        "map_at_k": {str(topk): float(mean_ap[column + 1]) for column, topk in enumerate(cutoffs)},
        "precision_at_k": {str(topk): float(value) for topk, value in zip(cutoffs, at_k["precision"])},
        "map_tie_aware": {
            "expected": float(tie_aware[0]),
            "min": float(tie_aware[1]),
            "max": float(tie_aware[2]),
        },
        "radius": {key: _plain(value) if isinstance(value, float) else value for key, value in radius_metrics.items()},
        "num_queries_without_relevant": num_without,
        "bit_balance": [float(value) for value in balance],
        "bit_entropy": [float(value) for value in entropy],
        "mean_bit_entropy": float(entropy.mean()),
    }
