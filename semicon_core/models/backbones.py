"""torchvision ResNet variants that the SEMICON models and the baseline can be built on."""

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Type, Union

from torch import nn
from torchvision.models import (
    ResNet,
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    WeightsEnum,
    resnet18,
    resnet34,
    resnet50,
)
from torchvision.models.resnet import BasicBlock, Bottleneck

logger = logging.getLogger(__name__)

# Names of the torchvision ResNet children that make up the conv1..layer3 backbone.
BACKBONE_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")

# Number of output channels of a block in torchvision's layer4 before expansion.
LAYER4_PLANES = 512


@dataclass(frozen=True)
class BackboneSpec:
    """Description of one torchvision ResNet variant.

    Attributes:
        name: torchvision model name, e.g. ``"resnet50"``.
        constructor: torchvision builder such as ``torchvision.models.resnet50``.
        weights_enum: torchvision weights enum, e.g. ``ResNet50_Weights``.
        block: residual block class of the variant (BasicBlock or Bottleneck).
        layer4_blocks: number of blocks in the variant's layer4.
    """

    name: str
    constructor: Callable[..., ResNet]
    weights_enum: Type[WeightsEnum]
    block: Type[Union[BasicBlock, Bottleneck]]
    layer4_blocks: int

    @property
    def feature_channels(self) -> int:
        """Channels of the layer3 output X (1024 for ResNet-50, 256 for ResNet-18/34)."""
        return LAYER4_PLANES // 2 * self.block.expansion

    @property
    def out_channels(self) -> int:
        """Channels of the layer4 output (2048 for ResNet-50, 512 for ResNet-18/34)."""
        return LAYER4_PLANES * self.block.expansion


BACKBONES: Dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec("resnet18", resnet18, ResNet18_Weights, BasicBlock, 2),
    "resnet34": BackboneSpec("resnet34", resnet34, ResNet34_Weights, BasicBlock, 3),
    "resnet50": BackboneSpec("resnet50", resnet50, ResNet50_Weights, Bottleneck, 3),
}


def get_backbone_spec(backbone: str) -> BackboneSpec:
    """Return the spec of a backbone name, or raise ValueError listing the valid names."""
    if backbone not in BACKBONES:
        raise ValueError(f"Invalid backbone={backbone!r}; expected one of {list(BACKBONES)}")
    return BACKBONES[backbone]


def build_backbone(spec: BackboneSpec) -> nn.Sequential:
    """Build a randomly initialised ResNet ``conv1 .. layer3`` with torchvision's names and init.

    Returns:
        Sequential mapping (B, 3, H, W) images to (B, spec.feature_channels,
        ~H/16, ~W/16) features. Its state-dict keys match the torchvision ResNet
        keys of the same layers (``conv1.weight``, ``layer3.5.bn3.bias``, ...).
    """
    resnet = spec.constructor(weights=None)
    return nn.Sequential(OrderedDict((name, getattr(resnet, name)) for name in BACKBONE_LAYERS))


def build_layer4_block(spec: BackboneSpec, index: int) -> nn.Module:
    """Build block ``index`` of a layer4 like torchvision's, with PyTorch's default init.

    Block 0 has stride 2 and a 1x1 convolution + BatchNorm shortcut from
    ``spec.feature_channels`` to ``spec.out_channels`` channels. The others map
    ``spec.out_channels`` channels to themselves. Parameter names match the
    torchvision ``layer4.<index>`` keys.
    """
    if index == 0:
        shortcut = nn.Sequential(
            nn.Conv2d(spec.feature_channels, spec.out_channels, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(spec.out_channels),
        )
        return spec.block(spec.feature_channels, LAYER4_PLANES, stride=2, downsample=shortcut)
    return spec.block(spec.out_channels, LAYER4_PLANES)
