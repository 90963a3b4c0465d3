"""Hamming distances between {-1, +1} codes, dense or bit-packed."""

from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np
import torch

from ._inputs import as_codes
from ._ranking import DEFAULT_BLOCK_ELEMENTS, HammingKernel

# Number of set bits of every byte value.
_POPCOUNT_TABLE = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


def hamming_distance(query_codes, database_codes) -> torch.Tensor:
    """Compute all Hamming distances between two sets of codes.

    Args:
        query_codes: (Nq, k) float or integer tensor or numpy array, values in {-1, +1}.
        database_codes: (Nd, k), same encoding.

    Returns:
        int32 tensor (Nq, Nd) of ``(k - q . b) / 2``, the number of differing bits. The
        whole matrix is materialised. For large sets iterate over
        :func:`iter_hamming_distance` instead.
    """
    query = as_codes(query_codes, "query_codes")
    database = as_codes(database_codes, "database_codes")
    _check_same_code_length(query.shape[1], database.shape[1])
    return HammingKernel(database).distances(query).to(torch.int32)


def iter_hamming_distance(
    query_codes, database_codes, block_size: Optional[int] = None
) -> Iterator[Tuple[int, torch.Tensor]]:
    """Yield ``(start, distances)`` for consecutive blocks of queries.

    ``distances`` is an int32 tensor (B, Nd) for queries ``start`` to ``start + B - 1``.
    ``block_size`` defaults to about half a million distances per block.
    """
    query = as_codes(query_codes, "query_codes")
    database = as_codes(database_codes, "database_codes")
    _check_same_code_length(query.shape[1], database.shape[1])
    if block_size is None:
        block_size = max(1, DEFAULT_BLOCK_ELEMENTS // database.shape[0])
    elif isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int or None, got {block_size!r}")
    kernel = HammingKernel(database)
    for start in range(0, query.shape[0], block_size):
        yield start, kernel.distances(query[start : start + block_size]).to(torch.int32)


def pack_codes(codes) -> np.ndarray:
    """Pack {-1, +1} codes into bits, +1 -> 1 and -1 -> 0, most significant bit first.

    Args:
        codes: (N, k) float or integer tensor or numpy array, values in {-1, +1}.

    Returns:
        uint8 array (N, ceil(k / 8)). When k is not a multiple of 8 the last byte is
        padded with 0 bits, the same for every code, so Hamming distances between packed
        codes equal those between the original codes.
    """
    tensor = as_codes(codes, "codes")
    bits = (tensor.numpy() > 0).astype(np.uint8)
    return np.packbits(bits, axis=1)


def packed_hamming_distance(
    query_packed: np.ndarray, database_packed: np.ndarray, block_size: Optional[int] = None
) -> np.ndarray:
    """Compute Hamming distances between packed codes with XOR and a byte popcount table.

    Args:
        query_packed: uint8 (Nq, num_bytes) from :func:`pack_codes`.
        database_packed: uint8 (Nd, num_bytes), the same packing.
        block_size: number of queries per step. Each step allocates a
            (block_size, Nd, num_bytes) uint8 temporary, and the default keeps it near 4 MiB.

    Returns:
        int32 array (Nq, Nd). It takes 4 bytes per pair, so for a database too large for
        the full matrix call this function on slices of the queries.
    """
    for name, array in (("query_packed", query_packed), ("database_packed", database_packed)):
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 2:
            raise ValueError(f"{name} must be a uint8 numpy array (N, num_bytes) from pack_codes, got {array!r:.80}")
    if query_packed.shape[1] != database_packed.shape[1]:
        raise ValueError(
            f"query_packed and database_packed must have the same number of bytes, "
            f"got {query_packed.shape[1]} and {database_packed.shape[1]}"
        )
    if block_size is None:
        block_size = max(1, (1 << 22) // max(1, database_packed.shape[0] * database_packed.shape[1]))
    elif isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int or None, got {block_size!r}")
    distances = np.empty((query_packed.shape[0], database_packed.shape[0]), dtype=np.int32)
    for start in range(0, query_packed.shape[0], block_size):
        differing = np.bitwise_xor(query_packed[start : start + block_size, None, :], database_packed[None, :, :])
        distances[start : start + block_size] = _POPCOUNT_TABLE[differing].sum(axis=2, dtype=np.int32)
    return distances


def _check_same_code_length(query_length: int, database_length: int) -> None:
    if query_length != database_length:
        raise ValueError(
            f"query_codes and database_codes must have the same code length, got {query_length} and {database_length}"
        )
