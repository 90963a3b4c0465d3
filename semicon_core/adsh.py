"""Asymmetric deep supervised hashing (ADSH): soft similarity, loss and the DCC code update.

The database codes ``B`` are free variables learned next to the network.
The outputs ``u = net(x)`` of a sampled subset are pulled towards the
similarity structure of the whole database. Notation: ``k`` code length,
``N`` database size, ``m`` sampled images, ``b`` batch size.
"""

from __future__ import annotations

import logging
from typing import Dict

import torch

logger = logging.getLogger(__name__)


def labels_to_onehot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return (N, C) float one-hot rows for (N,) int class ids; (N, C) multi-hot input passes through as float."""
    if labels.dim() == 2:
        return labels.float()
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


def signed(values: torch.Tensor) -> torch.Tensor:
    """Return ``sign(values)`` with 0 mapped to +1, so every code entry is exactly -1 or +1."""
    return torch.where(values >= 0, torch.ones_like(values), -torch.ones_like(values))


def soft_similarity(sample_labels: torch.Tensor, database_labels: torch.Tensor) -> torch.Tensor:
    """Return the softened similarity S (m, N) between a sample and the database.

    Args:
        sample_labels: (m, C) float one-hot or multi-hot labels of the sampled images.
        database_labels: (N, C) float one-hot or multi-hot labels of the database.

    ``S_ij = 1`` when the two images share a label, else -1; then with
    ``r = sum(S) / sum(1 - S)`` every entry becomes ``S (1 + r) - r``, which keeps
    similar pairs at 1 and moves dissimilar pairs towards 0 when classes are many.

    Raises:
        ValueError: when every pair is similar (a single class), where r is undefined.
    """
    similar = (sample_labels @ database_labels.t()) > 0
    similarity = similar.float() * 2 - 1
    dissimilar_mass = (1 - similarity).sum()
    if dissimilar_mass == 0:
        raise ValueError(
            "soft similarity is undefined: every sampled image shares a label with every database "
            "image (a single class). ADSH needs at least two classes in the database"
        )
    ratio = similarity.sum() / dissimilar_mass
    return similarity * (1 + ratio) - ratio


def adsh_loss(
    outputs: torch.Tensor,
    database_codes: torch.Tensor,
    similarity: torch.Tensor,
    sample_codes: torch.Tensor,
    gamma: float = 200.0,
) -> Dict[str, torch.Tensor]:
    """Return the ADSH loss terms for one batch.

    Args:
        outputs: (b, k) float tanh outputs ``u`` of the network for the batch.
        database_codes: (N, k) float codes ``B`` in {-1, +1}.
        similarity: (b, N) float soft similarity rows of the batch.
        sample_codes: (b, k) float rows of ``B`` for the batch images.
        gamma: weight of the quantization term.

    Both terms are divided by ``b * N`` and multiplied by ``12 / k``. The
    ``12 / k`` factor comes from the authors' release and keeps the loss scale
    comparable across code lengths. Returns ``loss``, ``hash_loss`` and
    ``quantization_loss`` (0-dim tensors; ``loss`` carries the gradient).
    """
    batch_size, code_length = outputs.shape
    num_database = database_codes.shape[0]
    scale = 12.0 / code_length / (batch_size * num_database)
    hash_loss = ((code_length * similarity - outputs @ database_codes.t()) ** 2).sum() * scale
    quantization_loss = gamma * ((outputs - sample_codes) ** 2).sum() * scale
    return {
        "loss": hash_loss + quantization_loss,
        "hash_loss": hash_loss,
        "quantization_loss": quantization_loss,
    }


@torch.no_grad()
def dcc_update(
    database_codes: torch.Tensor,
    sample_outputs: torch.Tensor,
    sample_index: torch.Tensor,
    similarity: torch.Tensor,
    gamma: float = 200.0,
) -> torch.Tensor:
    """Update the database codes by one pass of discrete cyclic coordinate descent.

    Args:
        database_codes: (N, k) float current codes ``B``; not modified.
        sample_outputs: (m, k) float stored outputs ``U`` of the sampled images.
        sample_index: (m,) int64 database rows of the sampled images.
        similarity: (m, N) float soft similarity of the sample to the database.
        gamma: weight of the quantization term.

    Returns:
        (N, k) float new codes in {-1, +1}. Bit ``j`` is
        ``sign(Q_j - B_{not j} U_{not j}^T U_j)`` with ``Q = (k S)^T U + gamma U_bar``,
        where ``U_bar`` contains ``U`` at the sampled rows and zeros elsewhere, and
        bits already updated in this pass are used for the later ones.
    """
    codes = database_codes.clone()
    num_database, code_length = codes.shape
    expanded = torch.zeros_like(codes)
    expanded[sample_index.to(codes.device)] = sample_outputs
    target = code_length * similarity.t() @ sample_outputs + gamma * expanded
    for bit in range(code_length):
        others = [j for j in range(code_length) if j != bit]
        codes_rest = codes[:, others]
        outputs_rest = sample_outputs[:, others]
        codes[:, bit] = signed(target[:, bit] - codes_rest @ (outputs_rest.t() @ sample_outputs[:, bit]))
    return codes
