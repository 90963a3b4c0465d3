"""Counting engine shared by the ranking metrics: per query, the size of every Hamming-distance bucket and the ranks of the relevant items.

The ranking orders the database by Hamming distance and breaks ties by database index
(a stable sort). The rank of a relevant item ``j`` at distance ``d`` is therefore::

    rank(j) = #{i : d_i < d} + #{i <= j : d_i = d}

For the second term, let ``s_i`` be the number of relevant items with index below ``i``.
For a relevant ``j``, an item ``i`` comes no later than ``j`` in index order exactly when
``s_i <= s_j``, because ``s`` steps up right after each relevant item. So
``#{i <= j : d_i = d}`` is a prefix sum over ``s`` of a 2-D histogram of ``(d_i, s_i)``.
One pass of ``torch.bincount`` over the distance matrix gives the exact, index-stable ranks
of all relevant items without sorting the database.

Distances come from XOR and popcount of codes packed into 64-bit words
(``numpy.bitwise_count``, numpy >= 2.0), or from a matrix product with older numpy. The
histogram has (k + 1) * (R + 1) bins per query. When a query has so many relevant items R
that the histogram would outgrow the distance row, the engine falls back to a stable sort
of the distances, which yields the same ranks.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Optional

import numpy as np
import torch

from ._inputs import iter_relevance_groups

# Elements of the (B, Nd) distance block processed at once. Measured with
# benchmarks/bench_map.py shapes on a 2-core AMD EPYC (one thread, 75,750 database items),
# blocks of 2**18 to 2**19 elements were fastest and 2**22 took about 30 % longer, since
# smaller temporaries and histograms stay in the CPU cache.
DEFAULT_BLOCK_ELEMENTS = 1 << 19

# Use the sort fallback when the (d, s) histogram of one query is larger than this many
# distance rows.
_MAX_HISTOGRAM_ROWS = 4

# Histogram keys are int32.
_MAX_KEY = (1 << 31) - 1

# The counting histogram keeps relevant-item counts in the high 32 bits of each int64 bin.
_RELEVANT_UNIT = torch.tensor([[1 << 32]], dtype=torch.int64)
_LOW_BITS = (1 << 32) - 1

# numpy.bitwise_count exists from numpy 2.0. Tests set this to False to cover the fallback.
USE_POPCOUNT = hasattr(np, "bitwise_count")


@dataclasses.dataclass
class QueryBlock:
    """Counts for a block of B queries that share the same R relevant database items.

    Attributes:
        query_index: (B,) int64, positions of the queries in the caller's query set.
        relevant_index: (R,) int64, database indices of the relevant items, ascending.
        bucket_sizes: (B, k + 1) int64, number of database items at each Hamming distance.
        relevant_distances: (B, R) int64, Hamming distance of each relevant item, in the
            order of ``relevant_index``.
        relevant_ranks: (B, R) int64, 1-based ranks of the relevant items in the ranking
            with ties broken by database index. None when the caller did not request ranks.
        relevant_positions: (B, R) int64, aligned with ``relevant_ranks``: 1-based position
            of each of those items among the relevant items of the ranking, so
            ``relevant_positions / relevant_ranks`` is the precision at that item. The
            column order of both tensors is unspecified. None without ranks.
    """

    query_index: torch.Tensor
    relevant_index: torch.Tensor
    bucket_sizes: torch.Tensor
    relevant_distances: torch.Tensor
    relevant_ranks: Optional[torch.Tensor]
    relevant_positions: Optional[torch.Tensor]

    @property
    def num_relevant(self) -> int:
        return int(self.relevant_index.numel())


def hamming_from_dot(dot: torch.Tensor, code_length: int) -> torch.Tensor:
    """Return int64 Hamming distances from dot products of {-1, +1} codes."""
    # The dot product is an integer of the same parity as k, so (k - dot) / 2 is exact.
    return ((code_length - dot) * 0.5).to(torch.int64)


def _word_dtype(code_length: int) -> np.dtype:
    """Return the narrowest unsigned type that fits one code, or uint64 for k > 64."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if code_length <= 8 * np.dtype(dtype).itemsize:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def _pack_words(codes: torch.Tensor, word_dtype: np.dtype) -> np.ndarray:
    """Pack (N, k) {-1, +1} codes into words (W, N) of ``word_dtype``, with zero padding bits."""
    bits = codes.numpy() > 0
    word_bits = 8 * word_dtype.itemsize
    num_words = (bits.shape[1] + word_bits - 1) // word_bits
    padded = np.zeros((bits.shape[0], num_words * word_bits), dtype=bool)
    padded[:, : bits.shape[1]] = bits
    words = np.packbits(padded, axis=1, bitorder="little").view(word_dtype)
    return np.ascontiguousarray(words.T)


class HammingKernel:
    """Hamming distances from query blocks to a fixed database.

    ``distances(queries)`` returns a (B, Nd) integer tensor: uint8 for k <= 64 and int16
    otherwise with popcount, int32 with the matrix product. With popcount the tensor is
    a view of a buffer that the next call overwrites. Codes of up to 8, 16 or 32 bits use
    words of that width, which cuts the memory traffic of the XOR step for short codes.
    """

    def __init__(self, database_codes: torch.Tensor, use_popcount: Optional[bool] = None):
        self.code_length = database_codes.shape[1]
        self.num_database = database_codes.shape[0]
        self.use_popcount = USE_POPCOUNT if use_popcount is None else use_popcount
        if self.use_popcount:
            self.word_dtype = _word_dtype(self.code_length)
            self.database_words = _pack_words(database_codes, self.word_dtype)
            self.xor_buffer = np.empty(0, dtype=self.word_dtype)
            self.count_buffer = np.empty(0, dtype=np.uint8)
            self.sum_buffer = np.empty(0, dtype=np.int16)
        else:
            self.database_t = database_codes.t()

    def _buffer(self, name: str, rows: int) -> np.ndarray:
        buffer = getattr(self, name)
        if buffer.size < rows * self.num_database:
            buffer = np.empty(rows * self.num_database, dtype=buffer.dtype)
            setattr(self, name, buffer)
        return buffer[: rows * self.num_database].reshape(rows, self.num_database)

    def distances(self, queries: torch.Tensor) -> torch.Tensor:
        rows = queries.shape[0]
        if not self.use_popcount:
            return hamming_from_dot(queries @ self.database_t, self.code_length).to(torch.int32)

        query_words = _pack_words(queries, self.word_dtype)
        xor = self._buffer("xor_buffer", rows)
        counts = self._buffer("count_buffer", rows)
        num_words = self.database_words.shape[0]
        if num_words == 1:
            np.bitwise_xor(query_words[0][:, None], self.database_words[0][None, :], out=xor)
            np.bitwise_count(xor, out=counts)
            return torch.from_numpy(counts)
        total = self._buffer("sum_buffer", rows)
        total.fill(0)
        for word in range(num_words):
            np.bitwise_xor(query_words[word][:, None], self.database_words[word][None, :], out=xor)
            np.bitwise_count(xor, out=counts)
            np.add(total, counts, out=total, casting="unsafe")
        return torch.from_numpy(total)


def _block_size(num_queries: int, row_elements: int, block_elements: int) -> int:
    """Return the rows per block: at most ``block_elements`` elements, split evenly over the queries."""
    largest = max(1, block_elements // max(row_elements, 1))
    num_blocks = -(-num_queries // largest)
    return max(1, -(-num_queries // num_blocks))


def iter_query_blocks(
    query_codes: torch.Tensor,
    database_codes: torch.Tensor,
    query_labels: torch.Tensor,
    database_labels: torch.Tensor,
    with_ranks: bool = True,
    strategy: str = "auto",
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> Iterator[QueryBlock]:
    """Yield a :class:`QueryBlock` for every block of queries, covering each query exactly once.

    Inputs must already be validated: codes are float32 (N, k) in {-1, +1}, labels are
    int64 (N,) class ids or bool (N, C) multi-hot rows. ``strategy`` is "auto",
    "count" (histogram, no sort) or "sort" (stable sort of each distance row). Both give
    identical ranks, and "auto" picks "count" unless its histogram would be larger than
    ``_MAX_HISTOGRAM_ROWS`` distance rows. Each temporary has about ``block_elements``
    elements, except that one query's histogram is never split.
    """
    if strategy not in ("auto", "count", "sort"):
        raise ValueError(f"strategy must be 'auto', 'count' or 'sort', got {strategy!r}")
    num_database, code_length = database_codes.shape
    num_buckets = code_length + 1
    kernel = HammingKernel(database_codes)

    for group_query_index, relevant_mask in iter_relevance_groups(query_labels, database_labels):
        relevant_index = torch.nonzero(relevant_mask).flatten()
        num_relevant = relevant_index.numel()

        num_s_bins = num_relevant + 1
        use_count = with_ranks and (
            strategy == "count"
            or (strategy == "auto" and num_buckets * num_s_bins <= _MAX_HISTOGRAM_ROWS * num_database)
        )
        if not use_count:
            # Without ranks only the bucket sizes are needed: a histogram with one s bin.
            num_s_bins = 1
        histogram_size = num_buckets * num_s_bins
        block = _block_size(group_query_index.numel(), max(num_database, histogram_size), block_elements)
        block = max(1, min(block, _MAX_KEY // histogram_size))

        # key = (b * (k + 1) + d) * S + s, where s_i = number of relevant items with index
        # below i (0 everywhere without ranks), so key = base + d * S with
        # base = b * (k + 1) * S + s. The prefix sum then runs over the last axis, s,
        # which torch.cumsum handles several times faster than an inner axis.
        if use_count:
            relevant_before = torch.cumsum(relevant_mask, 0, dtype=torch.int32) - relevant_mask.to(torch.int32)
        else:
            relevant_before = torch.zeros(num_database, dtype=torch.int32)
        row_offsets = torch.arange(block, dtype=torch.int32) * histogram_size
        base = row_offsets[:, None] + relevant_before[None, :]
        keys = torch.empty(block, num_database, dtype=torch.int32)

        for start in range(0, group_query_index.numel(), block):
            query_index = group_query_index[start : start + block]
            rows = query_index.numel()
            distances = kernel.distances(query_codes[query_index])
            relevant_distances = distances[:, relevant_index].to(torch.int64)

            if use_count or not with_ranks:
                # In-place steps on a reused int32 buffer: on the 2-core test machine this was
                # several times faster than torch.add on mixed uint8/int32 inputs.
                block_keys = keys[:rows]
                block_keys.copy_(distances)
                block_keys.mul_(num_s_bins)
                block_keys.add_(base[:rows])
                histogram = torch.bincount(block_keys.view(-1), minlength=rows * histogram_size)
                histogram = histogram.view(rows, num_buckets, num_s_bins)
                relevant_ranks = None
                relevant_positions = None
                if use_count:
                    # Relevant item j alone occupies s = s_j among the relevant items, so its
                    # bin is unique. Adding 2**32 there makes the high 32 bits of the same
                    # prefix sum count relevant items, which gives positions without a sort.
                    s_of_relevant = torch.arange(num_relevant, dtype=torch.int64)
                    flat_index = relevant_distances * num_s_bins + s_of_relevant
                    histogram.view(rows, -1).scatter_add_(1, flat_index, _RELEVANT_UNIT.expand(rows, num_relevant))
                    prefix = torch.cumsum(histogram, dim=2)

                    totals = prefix[:, :, -1]
                    bucket_sizes = totals & _LOW_BITS
                    relevant_sizes = totals >> 32
                    items_closer = torch.cumsum(bucket_sizes, dim=1) - bucket_sizes
                    relevant_closer = torch.cumsum(relevant_sizes, dim=1) - relevant_sizes

                    # prefix[b, d, s_j] counts the items (low bits) and the relevant items
                    # (high bits) at distance d with index <= j.
                    up_to_j = prefix.view(rows, -1).gather(1, flat_index)
                    relevant_ranks = items_closer.gather(1, relevant_distances) + (up_to_j & _LOW_BITS)
                    relevant_positions = relevant_closer.gather(1, relevant_distances) + (up_to_j >> 32)
                else:
                    bucket_sizes = histogram[:, :, 0].contiguous()
            else:
                distances = distances.to(torch.int64)
                offsets = torch.arange(rows, dtype=torch.int64)[:, None] * num_buckets
                bucket_sizes = torch.bincount((distances + offsets).view(-1), minlength=rows * num_buckets)
                bucket_sizes = bucket_sizes.view(rows, num_buckets)
                order = torch.sort(distances, dim=1, stable=True).indices
                positions = torch.empty_like(order)
                positions.scatter_(1, order, torch.arange(1, num_database + 1, dtype=torch.int64).expand(rows, -1))
                relevant_ranks = torch.sort(positions[:, relevant_index], dim=1).values
                relevant_positions = torch.arange(1, num_relevant + 1, dtype=torch.int64).expand(rows, -1)

            yield QueryBlock(
                query_index=query_index,
                relevant_index=relevant_index,
                bucket_sizes=bucket_sizes,
                relevant_distances=relevant_distances,
                relevant_ranks=relevant_ranks,
                relevant_positions=relevant_positions,
            )
