"""Retrieval metrics for binary hash codes: mAP over Hamming ranking and related measures.

Every metric ranks the database by Hamming distance and breaks ties by database index
unless its docstring states another tie policy. The faiss helpers import faiss only when
called, so it stays an optional dependency.
"""

from .average_precision import (
    average_precision,
    average_precision_per_class,
    average_precision_table,
    mean_average_precision,
    mean_average_precision_at_k,
    worst_classes,
)
from .bits import bit_balance, bit_correlation, bit_entropy
from .curves import (
    hamming_radius_metrics,
    precision_at_k,
    precision_recall_at_k,
    precision_recall_by_radius,
    precision_recall_by_rank,
)
from .distance import hamming_distance, iter_hamming_distance, pack_codes, packed_hamming_distance
from .faiss_index import build_faiss_binary_index, faiss_search
from .report import evaluate_retrieval
from .tie_aware import average_precision_tie_aware, mean_average_precision_tie_aware

__all__ = [
    "average_precision",
    "average_precision_per_class",
    "average_precision_table",
    "average_precision_tie_aware",
    "bit_balance",
    "bit_correlation",
    "bit_entropy",
    "build_faiss_binary_index",
    "evaluate_retrieval",
    "faiss_search",
    "hamming_distance",
    "hamming_radius_metrics",
    "iter_hamming_distance",
    "mean_average_precision",
    "mean_average_precision_at_k",
    "mean_average_precision_tie_aware",
    "pack_codes",
    "packed_hamming_distance",
    "precision_at_k",
    "precision_recall_at_k",
    "precision_recall_by_radius",
    "precision_recall_by_rank",
    "worst_classes",
]
