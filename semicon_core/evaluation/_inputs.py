"""Validation and conversion of the codes, labels and cut-offs that the retrieval metrics accept."""

from __future__ import annotations

from typing import Iterator, Optional, Sequence, Tuple

import numpy as np
import torch


def _to_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise TypeError(f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(value).__name__}")


def as_codes(codes, name: str) -> torch.Tensor:
    """Return ``codes`` as a float32 CPU tensor of shape (N, k) after checking that every value is -1 or +1."""
    tensor = _to_tensor(codes, name)
    if tensor.dim() != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, code_length) with N >= 1 and code_length >= 1, got {tuple(tensor.shape)}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(f"{name} must hold the values -1 and +1 as a float or integer tensor, got dtype {tensor.dtype}")
    is_sign = (tensor == 1) | (tensor == -1)
    if not bool(is_sign.all()):
        bad = tensor[~is_sign][:5].tolist()
        raise ValueError(f"{name} must contain only -1 and +1, found other values such as {bad}; binarise with torch.sign first")
    return tensor.to(torch.float32).contiguous()


def as_labels(labels, name: str) -> torch.Tensor:
    """Return class ids as an int64 tensor (N,) or multi-hot labels as a bool tensor (N, C)."""
    tensor = _to_tensor(labels, name)
    if tensor.dim() == 1:
        if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
            raise ValueError(f"{name} with shape (N,) must hold integer class ids, got dtype {tensor.dtype}")
        tensor = tensor.to(torch.int64)
        if tensor.numel() and int(tensor.min()) < 0:
            raise ValueError(f"{name} must hold non-negative class ids, found {int(tensor.min())}")
        return tensor
    if tensor.dim() == 2:
        if tensor.is_complex():
            raise ValueError(f"{name} with shape (N, C) must be one-hot or multi-hot, got dtype {tensor.dtype}")
        is_binary = (tensor == 0) | (tensor == 1)
        if not bool(is_binary.all()):
            bad = tensor[~is_binary][:5].tolist()
            raise ValueError(f"{name} with shape (N, C) must contain only 0 and 1 (one-hot or multi-hot), found {bad}")
        return tensor.to(torch.bool)
    raise ValueError(f"{name} must have shape (N,) of class ids or (N, C) of one-hot rows, got {tuple(tensor.shape)}")


def check_retrieval_inputs(
    query_codes, database_codes, query_labels, database_labels
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate a query/database pair and return (query_codes, database_codes, query_labels, database_labels) as tensors."""
    query = as_codes(query_codes, "query_codes")
    database = as_codes(database_codes, "database_codes")
    if query.shape[1] != database.shape[1]:
        raise ValueError(
            f"query_codes and database_codes must have the same code length, got {query.shape[1]} and {database.shape[1]}"
        )
    q_labels = as_labels(query_labels, "query_labels")
    d_labels = as_labels(database_labels, "database_labels")
    if q_labels.shape[0] != query.shape[0]:
        raise ValueError(f"query_labels must have {query.shape[0]} rows to match query_codes, got {q_labels.shape[0]}")
    if d_labels.shape[0] != database.shape[0]:
        raise ValueError(
            f"database_labels must have {database.shape[0]} rows to match database_codes, got {d_labels.shape[0]}"
        )
    if q_labels.dim() != d_labels.dim():
        raise ValueError(
            "query_labels and database_labels must both be class ids (N,) or both one-hot (N, C), "
            f"got shapes {tuple(q_labels.shape)} and {tuple(d_labels.shape)}"
        )
    if q_labels.dim() == 2 and q_labels.shape[1] != d_labels.shape[1]:
        raise ValueError(
            f"query_labels and database_labels must have the same number of classes, got {q_labels.shape[1]} and {d_labels.shape[1]}"
        )
    return query, database, q_labels, d_labels


def check_topk(topk: Optional[int], name: str = "topk") -> Optional[int]:
    """Return ``topk`` as an int >= 1, or None for the whole ranking."""
    if topk is None:
        return None
    if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1:
        raise ValueError(f"{name} must be a positive int or None (whole ranking), got {topk!r}")
    return int(topk)


def check_topk_list(topk_list: Sequence[Optional[int]], name: str = "topk_list") -> Tuple[Optional[int], ...]:
    """Return the cut-offs of ``topk_list`` as a tuple, each a positive int or None."""
    if isinstance(topk_list, (int, np.integer)) or topk_list is None:
        raise ValueError(f"{name} must be a sequence of positive ints or None, got {topk_list!r}")
    values = tuple(check_topk(value, name) for value in topk_list)
    if not values:
        raise ValueError(f"{name} must contain at least one cut-off")
    return values


def iter_relevance_groups(
    query_labels: torch.Tensor, database_labels: torch.Tensor
) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """Yield (query_index, relevant_mask) for each set of queries that share the same relevant database items.

    Queries with equal class ids, or equal multi-hot rows, have the same relevance row, so
    that row and its prefix counts are computed once per group. ``relevant_mask`` is a bool
    tensor (Nd,) that is True where a database item shares at least one label with the queries.
    """
    if query_labels.dim() == 1:
        patterns, inverse = torch.unique(query_labels, return_inverse=True)
    else:
        patterns, inverse = torch.unique(query_labels, dim=0, return_inverse=True)
    order = torch.argsort(inverse, stable=True)
    group_sizes = torch.bincount(inverse, minlength=patterns.shape[0]).tolist()
    start = 0
    for group, size in enumerate(group_sizes):
        query_index = order[start : start + size]
        start += size
        if query_labels.dim() == 1:
            relevant = database_labels == patterns[group]
        else:
            relevant = (database_labels & patterns[group]).any(dim=1)
        yield query_index, relevant
