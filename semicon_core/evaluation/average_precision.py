"""Mean average precision over Hamming ranking, exact with ties broken by database index.

Shared conventions of this module:

- codes: (N, k) float or integer tensor or array, values in {-1, +1};
- labels: (N,) integer class ids, or (N, C) one-hot / multi-hot rows of 0 and 1; a database
  item is relevant to a query when they share at least one label;
- ranking: database items in increasing Hamming distance ``(k - q . b) / 2``, ties broken by
  database index (stable), no item dropped;
- AP of a query = mean over its relevant items of precision at their ranks. With
  ``topk`` the ranking is cut after ``topk`` items and AP is the mean over the relevant
  items found in that prefix, 0 when none is found;
- a query with no relevant item in the database gets AP 0 and stays in the mean, which
  reproduces the evaluation of the SEMICON release. A warning reports how many there are.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ._inputs import check_retrieval_inputs, check_topk, check_topk_list
from ._ranking import iter_query_blocks

logger = logging.getLogger(__name__)


def _average_precision_of_ranks(relevant_ranks: torch.Tensor, topk: Optional[int]) -> torch.Tensor:
    """Return AP (B,) float64 from the sorted 1-based ranks (B, R) of each query's relevant items."""
    rows, num_relevant = relevant_ranks.shape
    if num_relevant == 0:
        return torch.zeros(rows, dtype=torch.float64)
    # The i-th smallest rank belongs to the i-th relevant item of the ranking.
    precision = torch.arange(1, num_relevant + 1, dtype=torch.float64) / relevant_ranks.to(torch.float64)
    if topk is None:
        return precision.mean(dim=1)
    found = relevant_ranks <= topk
    num_found = found.sum(dim=1)
    precision_sum = (precision * found).sum(dim=1)
    return torch.where(num_found > 0, precision_sum / num_found.clamp(min=1), torch.zeros_like(precision_sum))


def _warn_queries_without_relevant(num_without: int, num_queries: int) -> None:
    if num_without:
        logger.warning(
            "%d of %d queries have no relevant database item; their AP counts as 0 in the mean, "
            "as in the SEMICON release evaluation",
            num_without,
            num_queries,
        )


def average_precision_table(
    query_codes,
    database_codes,
    query_labels,
    database_labels,
    topk_list: Sequence[Optional[int]] = (None,),
) -> np.ndarray:
    """Compute the AP of every query at several cut-offs in one pass over the database.

    Args:
        query_codes: (Nq, k) in {-1, +1}.
        database_codes: (Nd, k) in {-1, +1}.
        query_labels: (Nq,) integer class ids or (Nq, C) one-hot / multi-hot.
        database_labels: (Nd,) or (Nd, C), the same encoding as ``query_labels``.
        topk_list: cut-offs, each a positive int or None for the whole ranking.

    Returns:
        float64 array (Nq, len(topk_list)); column t contains AP@topk_list[t]. Ties are
        broken by database index. A query with no relevant item has AP 0 (logged as a warning).
    """
    query, database, q_labels, d_labels = check_retrieval_inputs(
        query_codes, database_codes, query_labels, database_labels
    )
    cutoffs = check_topk_list(topk_list)
    table = torch.zeros(query.shape[0], len(cutoffs), dtype=torch.float64)
    num_without = 0
    with torch.no_grad():
        for block in iter_query_blocks(query, database, q_labels, d_labels, with_ranks=True):
            if block.num_relevant == 0:
                num_without += block.query_index.numel()
            for column, topk in enumerate(cutoffs):
                table[block.query_index, column] = _average_precision_of_ranks(block.relevant_ranks, topk)
    _warn_queries_without_relevant(num_without, query.shape[0])
    return table.numpy()


def average_precision(
    query_codes, database_codes, query_labels, database_labels, topk: Optional[int] = None
) -> np.ndarray:
    """Compute the AP of every query over the Hamming ranking cut at ``topk``.

    Shapes and encodings are those of :func:`mean_average_precision`. Returns a float64
    array (Nq,). Ties are broken by database index, and a query with no relevant item has AP 0.
    """
    topk = check_topk(topk)
    return average_precision_table(query_codes, database_codes, query_labels, database_labels, (topk,))[:, 0]


def mean_average_precision(
    query_codes, database_codes, query_labels, database_labels, topk: Optional[int] = None
) -> float:
    """Compute the mean average precision (mAP) of Hamming ranking.

    Args:
        query_codes: (Nq, k) float or integer tensor or numpy array, values in {-1, +1}.
        database_codes: (Nd, k), same encoding.
        query_labels: (Nq,) integer class ids, or (Nq, C) one-hot / multi-hot rows of 0 and 1.
        database_labels: (Nd,) or (Nd, C), the same encoding as ``query_labels``. A
            database item is relevant when it shares at least one label with the query.
        topk: None ranks the whole database. An int keeps only the first ``topk`` items,
            and each AP is then the mean precision over the relevant items found in them
            (0 when none is found).

    Returns:
        mAP as a Python float. The database is ranked by Hamming distance ``(k - q . b) / 2``
        with ties broken by database index, and no item is dropped. A query with no
        relevant item counts as AP 0 in the mean, which reproduces the SEMICON release,
        and a warning reports how many such queries there are.

    Raises:
        ValueError: when a code is not -1 or +1, shapes disagree, labels are not integer
            ids or 0/1 rows, or ``topk`` is not a positive int or None.
    """
    return float(average_precision(query_codes, database_codes, query_labels, database_labels, topk).mean())


def mean_average_precision_at_k(
    query_codes, database_codes, query_labels, database_labels, topk_list: Sequence[Optional[int]] = (100, 1000)
) -> Dict[Optional[int], float]:
    """Compute mAP at each cut-off of ``topk_list`` in one pass over the database.

    Shapes, encodings and tie policy are those of :func:`mean_average_precision`. Returns a
    dict mapping each cut-off (None = whole ranking) to mAP as a Python float.
    """
    cutoffs = check_topk_list(topk_list)
    table = average_precision_table(query_codes, database_codes, query_labels, database_labels, cutoffs)
    return {topk: float(table[:, column].mean()) for column, topk in enumerate(cutoffs)}
