"""ADSH baseline: a torchvision ResNet whose classifier is replaced by a linear hash layer."""

import logging
from numbers import Integral
from typing import Dict, List, Mapping, Tuple

import torch
from torch import Tensor, nn

from .backbones import get_backbone_spec

logger = logging.getLogger(__name__)


class HashingResNet(nn.Module):
    """ResNet with ``fc`` replaced by ``Linear(features -> code_length)`` and tanh.

    Args:
        code_length: number of bits k, at least 1.
        backbone: ``"resnet50"`` (the published baseline), ``"resnet34"`` or ``"resnet18"``.

    Attributes:
        code_length, global_bits (= k), local_bits (= 0), bit_groups
        (``[("global", 0, k)]``) and config, with the same meaning as on SEMICON.

    Shapes:
        input (B, 3, H, W) float ImageNet-normalised images, output (B, k) float in (-1, 1).
    """

    def __init__(self, code_length: int, backbone: str = "resnet50") -> None:
        super().__init__()
        if isinstance(code_length, bool) or not isinstance(code_length, Integral) or code_length < 1:
            raise ValueError(f"code_length must be a positive integer; got code_length={code_length!r}")
        spec = get_backbone_spec(backbone)
        self.backbone_spec = spec
        self.code_length = int(code_length)
        self.global_bits = self.code_length
        self.local_bits = 0
        self.bit_groups: List[Tuple[str, int, int]] = [("global", 0, self.code_length)]
        self.config = {"arch": "baseline", "code_length": self.code_length, "backbone": backbone}

        self.resnet = spec.constructor(weights=None)
        self.resnet.fc = nn.Linear(spec.out_channels, self.code_length)

    def forward(self, images: Tensor) -> Tensor:
        """Map (B, 3, H, W) images to (B, code_length) tanh outputs in (-1, 1)."""
        return torch.tanh(self.resnet(images))

    def forward_with_attention(self, images: Tensor) -> Dict[str, Tensor]:
        """Raise NotImplementedError, because the baseline has no attention branch."""
        raise NotImplementedError(
            "The baseline (arch='baseline') has no attention maps; build arch='semicon' "
            "to use forward_with_attention, or call the model directly for its outputs"
        )

    def load_resnet_weights(self, state_dict: Mapping[str, Tensor]) -> None:
        """Copy a torchvision ResNet state dict into every layer except the hash layer ``fc``.

        Raises:
            ValueError: ``state_dict`` misses keys or has shapes of another ResNet variant.
        """
        resnet_state = {key: value for key, value in state_dict.items() if not key.startswith("fc.")}
        expected = {key for key in self.resnet.state_dict() if not key.startswith("fc.")}
        # Older torchvision checkpoints have no BatchNorm num_batches_tracked entries,
        # and BatchNorm fills those in when loading.
        missing = sorted(
            key for key in expected - set(resnet_state) if not key.endswith("num_batches_tracked")
        )
        unexpected = sorted(set(resnet_state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"The pretrained weights do not fit a {self.backbone_spec.name} backbone: "
                f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
            )
        try:
            self.resnet.load_state_dict(resnet_state, strict=False)
        except RuntimeError as error:
            raise ValueError(
                f"The pretrained weights do not fit a {self.backbone_spec.name} backbone: {error}"
            ) from error
