"""Suppression-enhancing mask attention (SEM) of SEMICON (Shen et al., ECCV 2022).

SEM turns a backbone feature map into three single-channel attention maps.
After each map, a suppression mask damps the positions that the map attended
to most and boosts the weak ones, so that the next map looks elsewhere.

"The release" below is the authors' public PyTorch code of SEMICON, whose
behaviour reproduces the published numbers.
"""

import logging
from numbers import Real
from typing import List, Tuple

import torch
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

from .initialization import init_conv_bn

logger = logging.getLogger(__name__)

SEM_STATISTICS = ("batch", "image")
DEFAULT_ALPHA = 0.15
NUM_ATTENTION_MAPS = 3


def validate_sem_statistics(statistics: str) -> None:
    """Raise ValueError unless ``statistics`` is one of ``SEM_STATISTICS``."""
    if statistics not in SEM_STATISTICS:
        raise ValueError(
            f"Invalid sem_statistics={statistics!r}; expected one of {list(SEM_STATISTICS)}"
        )


def validate_alpha(alpha: float) -> None:
    """Raise ValueError unless ``alpha`` is a finite real number >= 0."""
    if isinstance(alpha, bool) or not isinstance(alpha, Real):
        raise ValueError(f"Invalid alpha={alpha!r}; expected a finite real number >= 0")
    if not (0.0 <= float(alpha) < float("inf")):
        raise ValueError(f"Invalid alpha={alpha!r}; expected a finite real number >= 0")


def suppression_mask(attention: Tensor, alpha: float = DEFAULT_ALPHA, statistics: str = "batch") -> Tensor:
    """Compute the SEM suppression mask ``2 - p'`` of an attention map, without gradient.

    For each image, ``p`` is the softmax over the H*W positions of the
    channel-mean map. It is standardised as ``p' = (p - mean) / std**alpha + 1``
    and clamped to [0, 2], so the returned ``2 - p'`` lies in [0, 2]: below 1
    where the map is strong and above 1 where it is weak.

    Args:
        attention: (B, C, H, W) float attention map; the mask uses its mean over C.
        alpha: exponent of the standard deviation. The authors' release uses
            0.15 and the paper states 0.3.
        statistics: ``"batch"`` takes the mean and the unbiased standard
            deviation of ``p`` over the whole (B, H*W) tensor, as the release
            does, so an image's mask depends on the other images in the batch.
            ``"image"`` takes them over each image's H*W positions, so the mask
            depends on that image only.

    Returns:
        (B, 1, H, W) float tensor with values in [0, 2], detached from the graph.
    """
    validate_sem_statistics(statistics)
    validate_alpha(alpha)
    if attention.dim() != 4:
        raise ValueError(f"attention must have shape (B, C, H, W); got shape {tuple(attention.shape)}")

    batch_size, _, height, width = attention.shape
    with torch.no_grad():
        probabilities = attention.mean(dim=1).reshape(batch_size, height * width).softmax(dim=1)
        if statistics == "batch":
            mean = probabilities.mean()
            sample_size = probabilities.numel()
        else:
            mean = probabilities.mean(dim=1, keepdim=True)
            sample_size = height * width

        # NOTE: the release divides by std**alpha unguarded, which gives NaN when
        # all probabilities are equal (std 0, e.g. an all-zero map) or when a
        # single value is standardised (unbiased std undefined). Those values sit
        # at the mean, so dividing by 1 instead makes p' = 1, a neutral mask.
        if sample_size < 2:
            std = torch.ones_like(mean)
        elif statistics == "batch":
            std = probabilities.std()
        else:
            std = probabilities.std(dim=1, keepdim=True)
        std = torch.where(std > 0, std, torch.ones_like(std))
        standardised = (probabilities - mean) / std.pow(alpha) + 1.0
        standardised = standardised.clamp(0.0, 2.0)
        return (2.0 - standardised).reshape(batch_size, 1, height, width)


def _conv1x1_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """Build a 1x1 convolution without bias followed by BatchNorm, with no activation."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class SEMAttention(nn.Module):
    """SEM attention branch: a stride-1 trunk and three attention heads.

    For C input channels the trunk is
    Bottleneck(C, width C/4) -> 1x1 conv+BN to C/4 -> Bottleneck(C/4, width C/16)
    -> 1x1 conv+BN to C/16 -> Bottleneck(C/16, width C/64), giving T with C/16
    channels (64 for C = 1024). Each head is a 1x1 conv (no bias) to one
    channel, BatchNorm and ReLU. Head j+1 receives T multiplied by the suppression
    masks of heads 1..j.

    Args:
        in_channels: C, divisible by 64.
        alpha: exponent passed to :func:`suppression_mask`.
        statistics: ``"batch"`` or ``"image"``, passed to :func:`suppression_mask`.

    Shapes:
        input (B, C, H, W) float, output (B, 3, H, W) float, non-negative.
    """

    def __init__(self, in_channels: int, alpha: float = DEFAULT_ALPHA, statistics: str = "batch") -> None:
        super().__init__()
        if in_channels % 64 != 0:
            raise ValueError(f"SEM in_channels must be divisible by 64; got {in_channels}")
        validate_alpha(alpha)
        validate_sem_statistics(statistics)
        self.in_channels = in_channels
        self.alpha = float(alpha)
        self.statistics = statistics

        quarter, sixteenth = in_channels // 4, in_channels // 16
        self.trunk = nn.Sequential(
            Bottleneck(in_channels, quarter),
            _conv1x1_bn(in_channels, quarter),
            Bottleneck(quarter, quarter // 4),
            _conv1x1_bn(quarter, sixteenth),
            Bottleneck(sixteenth, sixteenth // 4),
        )
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(sixteenth, 1, kernel_size=1, bias=False),
                nn.BatchNorm2d(1),
                nn.ReLU(inplace=True),
            )
            for _ in range(NUM_ATTENTION_MAPS)
        )
        init_conv_bn(self)

    def forward_with_masks(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Compute the attention maps and the suppression masks between them.

        Args:
            x: (B, C, H, W) float feature map.

        Returns:
            attention: (B, 3, H, W) float, the maps A1, A2, A3.
            suppression: (B, 2, H, W) float in [0, 2], the masks applied to the
                trunk output before head 2 and before head 3.
        """
        features = self.trunk(x)
        maps: List[Tensor] = []
        masks: List[Tensor] = []
        for index, head in enumerate(self.heads):
            if index > 0:
                mask = suppression_mask(maps[-1], self.alpha, self.statistics)
                masks.append(mask)
                features = features * mask
            maps.append(head(features))
        return torch.cat(maps, dim=1), torch.cat(masks, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Map a (B, C, H, W) feature map to (B, 3, H, W) attention maps A1..A3."""
        attention, _ = self.forward_with_masks(x)
        return attention

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, alpha={self.alpha}, statistics={self.statistics!r}"

