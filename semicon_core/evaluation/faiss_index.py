"""Optional faiss search over packed binary codes (install with ``pip install faiss-cpu``)."""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .distance import pack_codes

_MISSING_FAISS = (
    "faiss is not installed; install it with `pip install faiss-cpu` "
    "or with the workbench extra `pip install semicon-workbench[faiss]`"
)


def _import_faiss():
    try:
        import faiss
    except ImportError as error:
        raise ImportError(_MISSING_FAISS) from error
    return faiss


def build_faiss_binary_index(database_codes):
    """Build an exact faiss Hamming index over {-1, +1} codes.

    Args:
        database_codes: (Nd, k) float or integer tensor or numpy array, values in {-1, +1}.

    Returns:
        ``faiss.IndexBinaryFlat`` of dimension 8 * ceil(k / 8) holding the codes packed by
        :func:`pack_codes`. faiss needs a multiple of 8 bits, so the padding bits are 0
        for every code and leave Hamming distances unchanged.

    Raises:
        ImportError: when faiss is not installed, with the install command.
    """
    faiss = _import_faiss()
    packed = pack_codes(database_codes)
    index = faiss.IndexBinaryFlat(packed.shape[1] * 8)
    index.add(packed)
    return index


def faiss_search(index, query_codes, topk: int) -> Tuple[np.ndarray, np.ndarray]:
    """Search an index from :func:`build_faiss_binary_index` for the ``topk`` nearest codes.

    Args:
        index: a faiss binary index built from codes of the same length as ``query_codes``.
        query_codes: (Nq, k) in {-1, +1}.
        topk: number of neighbours, 1 <= topk <= number of indexed codes.

    Returns:
        ``(distances, indices)``: int32 (Nq, topk) Hamming distances in increasing order and
        int64 (Nq, topk) database indices. The order among equal distances is faiss's own
        and may differ from the index-stable order of the metrics in this package.
    """
    _import_faiss()
    packed = pack_codes(query_codes)
    if packed.shape[1] * 8 != index.d:
        raise ValueError(
            f"query_codes pack to {packed.shape[1] * 8} bits but the index has dimension {index.d}; "
            "use codes of the length the index was built from"
        )
    if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or not 1 <= topk <= index.ntotal:
        raise ValueError(f"topk must be an int between 1 and the index size {index.ntotal}, got {topk!r}")
    distances, indices = index.search(packed, int(topk))
    return distances, indices
