"""Retrieval metrics for binary hash codes: mAP over Hamming ranking and related measures.

Every metric ranks the database by Hamming distance and breaks ties by database index
unless its docstring states another tie policy.
"""

from .average_precision import (
    average_precision,
    average_precision_table,
    mean_average_precision,
    mean_average_precision_at_k,
)

__all__ = [
    "average_precision",
    "average_precision_table",
    "mean_average_precision",
    "mean_average_precision_at_k",
]
