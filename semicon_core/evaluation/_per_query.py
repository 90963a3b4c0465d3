"""Per-query metric values computed from one :class:`QueryBlock` of the counting engine.

Every function returns one value per query of the block (B rows), so the public metrics
and :func:`evaluate_retrieval` can share a single pass over the database.
"""

from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch

from ._ranking import QueryBlock


def average_precision_of_ranks(
    relevant_ranks: torch.Tensor, relevant_positions: torch.Tensor, cutoff: Union[None, int, torch.Tensor]
) -> torch.Tensor:
    """Return AP (B,) float64 from the aligned ranks and positions (B, R) of a QueryBlock.

    ``cutoff`` is None (whole ranking), an int, or an int64 tensor (B,) of per-query
    cut-offs. A query with no relevant item within its cut-off gets AP 0.
    """
    rows, num_relevant = relevant_ranks.shape
    if num_relevant == 0:
        return torch.zeros(rows, dtype=torch.float64)

    precision = relevant_positions.to(torch.float64) / relevant_ranks.to(torch.float64)
    if cutoff is None:
        return precision.mean(dim=1)

    if isinstance(cutoff, torch.Tensor):
        found = relevant_ranks <= cutoff[:, None]
    else:
        found = relevant_ranks <= cutoff
    num_found = found.sum(dim=1)
    precision_sum = (precision * found).sum(dim=1)
    return torch.where(num_found > 0, precision_sum / num_found.clamp(min=1), torch.zeros_like(precision_sum))


def relevant_found_at_k(relevant_ranks: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """Return int64 (B, len(ks)): the number of relevant items among the first k of the ranking."""
    sorted_ranks = torch.sort(relevant_ranks, dim=1).values
    cutoffs = torch.tensor(list(ks), dtype=torch.int64).expand(relevant_ranks.shape[0], -1).contiguous()
    return torch.searchsorted(sorted_ranks, cutoffs, right=True)


def relevant_bucket_sizes(block: QueryBlock) -> torch.Tensor:
    """Return int64 (B, k + 1): the number of relevant items at each Hamming distance."""
    rows, num_buckets = block.bucket_sizes.shape
    offsets = torch.arange(rows, dtype=torch.int64)[:, None] * num_buckets
    counts = torch.bincount((block.relevant_distances + offsets).view(-1), minlength=rows * num_buckets)
    return counts.view(rows, num_buckets)


def tie_aware_average_precision(block: QueryBlock, harmonic: torch.Tensor) -> torch.Tensor:
    """Return float64 (B, 3): expected, min and max AP when tied items are ordered at random.

    Items at the same Hamming distance form a tie group; only the order inside each group
    is random, uniformly over its permutations. Consider a group of n items, m of them
    relevant, after N items of which M are relevant. Position p (1..n) of the group holds
    a relevant item with probability m / n. Given that, the number of the other m - 1
    relevant items among the p - 1 earlier positions is hypergeometric with mean
    (p - 1)(m - 1)/(n - 1). The rank N + p is fixed given p, so the expected sum of
    precisions of the group is::

        sum_p (m / n) * (M + 1 + (p - 1)(m - 1)/(n - 1)) / (N + p)
          = (m / n) * [(M + 1) * dH + (m - 1)/(n - 1) * (n - (N + 1) * dH)]

    with dH = H(N + n) - H(N) and H the harmonic numbers. The last term is 0 when
    m <= 1. The bounds put the group's relevant items last (min) or first (max). Rows of
    queries with no relevant item are 0.

    ``harmonic`` is float64 with harmonic[n] = H(n) for n = 0..Nd.
    """
    rows = block.bucket_sizes.shape[0]
    num_relevant = block.num_relevant
    result = torch.zeros(rows, 3, dtype=torch.float64)
    if num_relevant == 0:
        return result

    sizes = block.bucket_sizes.to(torch.float64)
    relevant_sizes_int = relevant_bucket_sizes(block)
    relevant_sizes = relevant_sizes_int.to(torch.float64)
    items_before = torch.cumsum(block.bucket_sizes, dim=1) - block.bucket_sizes
    relevant_before = torch.cumsum(relevant_sizes, dim=1) - relevant_sizes

    harmonic_gap = harmonic[items_before + block.bucket_sizes] - harmonic[items_before]
    items_before_f = items_before.to(torch.float64)
    pair_term = (relevant_sizes - 1).clamp(min=0) / (sizes - 1).clamp(min=1)
    group_sum = (relevant_sizes / sizes.clamp(min=1)) * (
        (relevant_before + 1) * harmonic_gap + pair_term * (sizes - (items_before_f + 1) * harmonic_gap)
    )
    result[:, 0] = group_sum.sum(dim=1) / num_relevant

    # Bounds: walk the relevant items in order of distance. The r-th of them (1-based)
    # is the i-th relevant item of its group, with i = r - M.
    sorted_distances = torch.sort(block.relevant_distances, dim=1).values
    relevant_order = torch.arange(1, num_relevant + 1, dtype=torch.float64).expand(rows, -1)
    within_group = relevant_order - relevant_before.gather(1, sorted_distances)
    group_start = items_before_f.gather(1, sorted_distances)
    non_relevant_in_group = (sizes - relevant_sizes).gather(1, sorted_distances)
    result[:, 1] = (relevant_order / (group_start + non_relevant_in_group + within_group)).mean(dim=1)
    result[:, 2] = (relevant_order / (group_start + within_group)).mean(dim=1)
    return result


def harmonic_numbers(count: int) -> torch.Tensor:
    """Return float64 (count + 1,) with entry n equal to H(n) = 1 + 1/2 + ... + 1/n, H(0) = 0."""
    harmonic = torch.zeros(count + 1, dtype=torch.float64)
    harmonic[1:] = torch.cumsum(1.0 / torch.arange(1, count + 1, dtype=torch.float64), dim=0)
    return harmonic


def radius_counts(block: QueryBlock) -> Tuple[torch.Tensor, torch.Tensor]:
    """Return (retrieved, relevant_retrieved), each int64 (B, k + 1), for radii 0..k."""
    retrieved = torch.cumsum(block.bucket_sizes, dim=1)
    relevant_retrieved = torch.cumsum(relevant_bucket_sizes(block), dim=1)
    return retrieved, relevant_retrieved


def average_precision_within_radius(block: QueryBlock, radius: int) -> torch.Tensor:
    """Return AP (B,) over the items within Hamming distance ``radius``, ties by database index."""
    radius = min(radius, block.bucket_sizes.shape[1] - 1)
    retrieved = torch.cumsum(block.bucket_sizes, dim=1)[:, radius]
    return average_precision_of_ranks(block.relevant_ranks, block.relevant_positions, retrieved)

