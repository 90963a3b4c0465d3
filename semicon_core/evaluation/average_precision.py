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
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ._inputs import as_labels, check_retrieval_inputs, check_topk, check_topk_list
from ._collect import collect_per_query

logger = logging.getLogger(__name__)


def warn_queries_without_relevant(num_without: int, num_queries: int) -> None:
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
        float64 array (Nq, len(topk_list)), where column t contains AP@topk_list[t]. Ties are
        broken by database index. A query with no relevant item has AP 0 (logged as a warning).
    """
    query, database, q_labels, d_labels = check_retrieval_inputs(
        query_codes, database_codes, query_labels, database_labels
    )
    cutoffs = check_topk_list(topk_list)
    results = collect_per_query(query, database, q_labels, d_labels, topk_list=cutoffs)
    warn_queries_without_relevant(int((results.num_relevant == 0).sum()), query.shape[0])
    return results.average_precision.numpy()


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


def average_precision_per_class(
    query_codes,
    database_codes,
    query_labels,
    database_labels,
    topk: Optional[int] = None,
    num_classes: Optional[int] = None,
) -> np.ndarray:
    """Compute the mean AP of the queries of each class.

    Shapes, encodings and tie policy are those of :func:`mean_average_precision`. With
    multi-hot labels a query counts towards every class it carries.

    Args:
        num_classes: length C of the result. Defaults to max class id + 1 for class ids and
            to the number of columns for one-hot labels.

    Returns:
        float64 array (C,). A class without any query has no AP and is NaN, with a warning.
    """
    per_query = average_precision(query_codes, database_codes, query_labels, database_labels, topk)
    labels = as_labels(query_labels, "query_labels")
    inferred = int(labels.max()) + 1 if labels.dim() == 1 else labels.shape[1]
    if num_classes is None:
        num_classes = inferred
    elif isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < inferred:
        raise ValueError(
            f"num_classes must be an int >= {inferred} (the classes present in query_labels), got {num_classes!r}"
        )

    # membership[q, c] = 1 when query q carries class c.
    membership = torch.zeros(labels.shape[0], num_classes, dtype=torch.float64)
    if labels.dim() == 1:
        membership[torch.arange(labels.shape[0]), labels] = 1.0
    else:
        membership[:, :inferred] = labels.to(torch.float64)

    queries_per_class = membership.sum(dim=0)
    ap_sum = membership.t() @ torch.from_numpy(per_query)
    class_ap = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    has_queries = queries_per_class > 0
    class_ap[has_queries] = ap_sum[has_queries] / queries_per_class[has_queries]
    num_empty = int((~has_queries).sum())
    if num_empty:
        logger.warning("%d of %d classes have no query; their per-class AP is NaN", num_empty, num_classes)
    return class_ap.numpy()


def worst_classes(
    class_ap, count: int = 10, class_names: Optional[Sequence[str]] = None
) -> List[Dict[str, object]]:
    """List the ``count`` classes with the lowest AP, lowest first.

    Args:
        class_ap: (C,) array from :func:`average_precision_per_class`. NaN entries
            (classes without queries) are skipped.
        count: number of classes to return at most.
        class_names: optional C names, in class id order.

    Returns:
        list of dicts with keys ``class_id`` (int), ``class_name`` (str or None) and
        ``ap`` (float). Equal APs keep class id order.
    """
    values = np.asarray(class_ap, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"class_ap must have shape (C,), got {values.shape}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    if class_names is not None and len(class_names) != values.shape[0]:
        raise ValueError(f"class_names must have {values.shape[0]} entries to match class_ap, got {len(class_names)}")

    valid = np.flatnonzero(~np.isnan(values))
    ordered = valid[np.argsort(values[valid], kind="stable")][:count]
    return [
        {
            "class_id": int(class_id),
            "class_name": None if class_names is None else str(class_names[class_id]),
            "ap": float(values[class_id]),
        }
        for class_id in ordered
    ]
