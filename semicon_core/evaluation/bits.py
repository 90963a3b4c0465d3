"""Statistics of the individual bits of a set of {-1, +1} codes."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ._inputs import as_codes

logger = logging.getLogger(__name__)


def bit_balance(codes) -> np.ndarray:
    """Compute the mean of each bit.

    Args:
        codes: (N, k) float or integer tensor or numpy array, values in {-1, +1}.

    Returns:
        float64 array (k,) in [-1, 1]. 0 means the bit is +1 for half of the codes; the
        share of +1 is ``(1 + balance) / 2``.
    """
    tensor = as_codes(codes, "codes").to(torch.float64)
    return tensor.mean(dim=0).numpy()


def bit_entropy(codes) -> np.ndarray:
    """Compute the entropy of each bit, in bits.

    Args:
        codes: (N, k) in {-1, +1}.

    Returns:
        float64 array (k,) in [0, 1]: ``-p log2 p - (1 - p) log2 (1 - p)`` with p the share
        of +1. A constant bit has entropy 0.
    """
    share = (1.0 + bit_balance(codes)) / 2.0
    entropy = np.zeros_like(share)
    mixed = (share > 0.0) & (share < 1.0)
    p = share[mixed]
    entropy[mixed] = -p * np.log2(p) - (1.0 - p) * np.log2(1.0 - p)
    return entropy


def bit_correlation(codes) -> np.ndarray:
    """Compute the Pearson correlation matrix between bits.

    Args:
        codes: (N, k) in {-1, +1}, N >= 2.

    Returns:
        float64 array (k, k). The correlation of a constant bit with any bit, itself
        included, is undefined and set to NaN, with a warning naming the constant bits.
    """
    tensor = as_codes(codes, "codes").to(torch.float64)
    if tensor.shape[0] < 2:
        raise ValueError(f"codes must have at least 2 rows to estimate a correlation, got {tensor.shape[0]}")
    centred = tensor - tensor.mean(dim=0)
    covariance = centred.t() @ centred / tensor.shape[0]
    std = covariance.diagonal().sqrt()
    constant = std == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = (covariance / (std[:, None] * std[None, :])).numpy()
    # Rounding can push |correlation| slightly above 1; NaN entries stay NaN.
    np.clip(correlation, -1.0, 1.0, out=correlation)
    constant_bits = torch.nonzero(constant).flatten().tolist()
    if constant_bits:
        correlation[constant_bits, :] = np.nan
        correlation[:, constant_bits] = np.nan
        logger.warning("bits %s are constant over %d codes; their correlations are NaN", constant_bits, tensor.shape[0])
    return correlation
