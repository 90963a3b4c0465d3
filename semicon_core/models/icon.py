"""Interactive channel transformation (ICON) of SEMICON (Shen et al., ECCV 2022).

ICON mixes channels in two steps: self-attention among the ``d`` channels
inside each of ``heads`` channel groups, then self-attention across the groups
among channels that share the same position inside their group. Attention here
is between channels (a ``d x d`` or ``heads x heads`` matrix per group), not
between spatial positions.
"""

import logging
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

logger = logging.getLogger(__name__)


def default_num_heads(channels: int) -> int:
    """Return the default ICON head count, ``max(channels // 64, 16)``.

    2048 channels give 32 heads of 64 channels, and 512 channels give 16 heads
    of 32 channels.
    """
    return max(channels // 64, 16)


def _signed_sqrt(x: Tensor) -> Tensor:
    """Apply ``sign(x) * sqrt(|x| + 1e-5)`` elementwise, which damps large attention logits."""
    return torch.sign(x) * torch.sqrt(torch.abs(x) + 1e-5)


def _channel_attention(qkv: Tensor, scale: float) -> Tensor:
    """Attend among channels inside each group.

    Args:
        qkv: (B, 3, G, n, L) float; queries, keys and values of G groups of n
            channels over L spatial positions.
        scale: factor applied to the (n x n) logits before the signed square root.

    Returns:
        (B, G, n, L) float, the attention-weighted values.
    """
    query, key, value = qkv.unbind(dim=1)
    logits = torch.matmul(query, key.transpose(-2, -1)) * scale
    weights = _signed_sqrt(logits).softmax(dim=-1)
    return torch.matmul(weights, value)


class ICON(nn.Module):
    """Interactive channel transformation over a (B, C, H, W) feature map.

    Step 1 attends among the ``d = C // heads`` channels inside each head, adds
    the input, reorders the channels from (heads, d) to (d, heads) order, and
    applies BatchNorm, giving ``y``. Step 2 attends among the ``heads``
    channels of each within-head position of ``ReLU(y)`` and restores the
    (heads, d) channel order.

    The output is that result plus ``ReLU(y)`` while ``y`` is still in the
    (d, heads) order, so the residual pairs channels from different orders.
    This follows the authors' public release, which reproduces the published
    numbers: it applies an in-place ReLU to ``y`` before adding it.

    Args:
        channels: number of input and output channels C.
        num_heads: number of heads; ``None`` uses ``max(C // 64, 16)``.
            C must be divisible by it.

    Shapes:
        input (B, C, H, W) float, output (B, C, H, W) float.
    """

    def __init__(self, channels: int, num_heads: Optional[int] = None) -> None:
        super().__init__()
        if num_heads is None:
            num_heads = default_num_heads(channels)
        if channels % num_heads != 0:
            raise ValueError(
                f"ICON channels must be divisible by num_heads; got channels={channels}, "
                f"num_heads={num_heads}"
            )
        self.channels = channels
        self.num_heads = num_heads
        self.head_dim = channels // num_heads

        # Grouped 1x1 convolutions: step 1 projects each head from its own
        # channels, step 2 projects each within-head position from its own channels.
        self.intra_head_qkv = nn.Conv2d(channels, 3 * channels, kernel_size=1, groups=num_heads)
        self.norm = nn.BatchNorm2d(channels)
        self.inter_head_qkv = nn.Conv2d(channels, 3 * channels, kernel_size=1, groups=self.head_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Transform a (B, C, H, W) feature map into a (B, C, H, W) feature map."""
        batch_size, channels, height, width = x.shape
        heads, head_dim = self.num_heads, self.head_dim
        positions = height * width

        # Step 1: attention among the head_dim channels of each head.
        qkv = self.intra_head_qkv(x).reshape(batch_size, 3, heads, head_dim, positions)
        mixed = _channel_attention(qkv, head_dim**-0.5).reshape(batch_size, channels, height, width)
        mixed = mixed + x
        interleaved = (
            mixed.reshape(batch_size, heads, head_dim, height, width)
            .transpose(1, 2)
            .reshape(batch_size, channels, height, width)
        )
        y = self.norm(interleaved)
        z = F.relu(y)

        # Step 2: attention among the heads channels at each within-head position.
        qkv = self.inter_head_qkv(z).reshape(batch_size, 3, head_dim, heads, positions)
        out = _channel_attention(qkv, heads**-0.5)
        out = (
            out.reshape(batch_size, head_dim, heads, height, width)
            .transpose(1, 2)
            .reshape(batch_size, channels, height, width)
        )

        # The release adds the step-1 result in the interleaved channel order to
        # `out` in the original order. Its ReLU runs in place, so the added tensor
        # is ReLU(y) and not y. The release's reference outputs confirm this.
        return out + z

    def extra_repr(self) -> str:
        return f"channels={self.channels}, num_heads={self.num_heads}, head_dim={self.head_dim}"
