"""One pass over the database that gathers every per-query quantity the public metrics need."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import torch

from . import _per_query
from ._ranking import iter_query_blocks


@dataclasses.dataclass
class PerQueryResults:
    """Per-query values, row q for query q, for the quantities that were requested.

    Attributes:
        num_relevant: int64 (Nq,), relevant database items of each query.
        retrieved_by_radius: int64 (Nq, k + 1), items within Hamming distance r (column r).
        relevant_by_radius: int64 (Nq, k + 1), relevant items within distance r.
        average_precision: float64 (Nq, len(topk_list)), AP at each cut-off, or None.
        relevant_found_at_k: int64 (Nq, len(ks)), relevant items among the first k, or None.
        average_precision_within_radius: float64 (Nq,), AP over the items within
            ``radius``, or None.
        tie_aware: float64 (Nq, 3), expected, min and max AP under random tie order, or None.
    """

    num_relevant: torch.Tensor
    retrieved_by_radius: torch.Tensor
    relevant_by_radius: torch.Tensor
    average_precision: Optional[torch.Tensor] = None
    relevant_found_at_k: Optional[torch.Tensor] = None
    average_precision_within_radius: Optional[torch.Tensor] = None
    tie_aware: Optional[torch.Tensor] = None


def collect_per_query(
    query: torch.Tensor,
    database: torch.Tensor,
    query_labels: torch.Tensor,
    database_labels: torch.Tensor,
    topk_list: Sequence[Optional[int]] = (),
    ks: Sequence[int] = (),
    radius: Optional[int] = None,
    tie_aware: bool = False,
) -> PerQueryResults:
    """Run the counting engine once and fill the requested per-query values.

    Inputs must already be validated (see ``_inputs.check_retrieval_inputs``). Ranks are
    computed only when a cut-off list, ``ks`` or ``radius`` needs them.
    """
    num_query = query.shape[0]
    num_database, code_length = database.shape
    with_ranks = bool(topk_list) or bool(ks) or radius is not None

    results = PerQueryResults(
        num_relevant=torch.zeros(num_query, dtype=torch.int64),
        retrieved_by_radius=torch.zeros(num_query, code_length + 1, dtype=torch.int64),
        relevant_by_radius=torch.zeros(num_query, code_length + 1, dtype=torch.int64),
    )
    if topk_list:
        results.average_precision = torch.zeros(num_query, len(topk_list), dtype=torch.float64)
    if ks:
        results.relevant_found_at_k = torch.zeros(num_query, len(ks), dtype=torch.int64)
    if radius is not None:
        results.average_precision_within_radius = torch.zeros(num_query, dtype=torch.float64)
    harmonic = None
    if tie_aware:
        results.tie_aware = torch.zeros(num_query, 3, dtype=torch.float64)
        harmonic = _per_query.harmonic_numbers(num_database)

    with torch.no_grad():
        for block in iter_query_blocks(query, database, query_labels, database_labels, with_ranks=with_ranks):
            rows = block.query_index
            results.num_relevant[rows] = block.num_relevant
            retrieved, relevant_retrieved = _per_query.radius_counts(block)
            results.retrieved_by_radius[rows] = retrieved
            results.relevant_by_radius[rows] = relevant_retrieved

            for column, topk in enumerate(topk_list):
                results.average_precision[rows, column] = _per_query.average_precision_of_ranks(
                    block.relevant_ranks, block.relevant_positions, topk
                )
            if ks:
                results.relevant_found_at_k[rows] = _per_query.relevant_found_at_k(block.relevant_ranks, ks)
            if radius is not None:
                results.average_precision_within_radius[rows] = _per_query.average_precision_within_radius(
                    block, radius
                )
            if tie_aware:
                results.tie_aware[rows] = _per_query.tie_aware_average_precision(block, harmonic)
    return results
