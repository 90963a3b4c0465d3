"""SEMICON hashing network (Shen et al., "SEMICON: A Learning-to-hash Solution for
Large-scale Fine-grained Image Retrieval", ECCV 2022, arXiv 2209.13833).

A ResNet ``conv1 .. layer3`` backbone gives the feature map X. A global refine
stage (a copy of layer4 with ICON modules) encodes X. The SEM attention branch
gives three maps A1..A3, and one shared local refine stage encodes each
``A_j * X``. Bias-free linear hash heads project the four pooled features, and
tanh of their concatenation is the relaxed hash code.

"The release" below is the authors' public PyTorch code of SEMICON, whose
behaviour reproduces the published numbers.
"""

import logging
from numbers import Integral
from typing import Dict, List, Mapping, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .backbones import BackboneSpec, build_backbone, build_layer4_block, get_backbone_spec
from .icon import ICON
from .initialization import init_conv_bn
from .sem import DEFAULT_ALPHA, NUM_ATTENTION_MAPS, SEMAttention, validate_alpha, validate_sem_statistics

logger = logging.getLogger(__name__)

MIN_CODE_LENGTH = 2 * NUM_ATTENTION_MAPS
REFINE_WEIGHTS = ("release", "all")
NUM_ICONS = 2


def split_code_length(code_length: int) -> Tuple[int, int]:
    """Split ``code_length`` bits into the global head and each of the three local heads.

    Each local head gets ``code_length // 6`` bits and the global head the rest,
    ``code_length - 3 * (code_length // 6)`` (6/12/17/24 global bits for
    12/24/32/48). Raises ValueError for code lengths below 6, which would leave
    the local heads without bits.

    Returns:
        (global_bits, local_bits) with local_bits per local head.
    """
    if isinstance(code_length, bool) or not isinstance(code_length, Integral):
        raise ValueError(f"code_length must be an integer >= {MIN_CODE_LENGTH}; got {code_length!r}")
    if code_length < MIN_CODE_LENGTH:
        raise ValueError(
            f"code_length must be at least {MIN_CODE_LENGTH} so that each of the "
            f"{NUM_ATTENTION_MAPS} local hash heads gets a bit; got code_length={code_length}"
        )
    local_bits = int(code_length) // MIN_CODE_LENGTH
    return int(code_length) - NUM_ATTENTION_MAPS * local_bits, local_bits


def _state_dict_with_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    """Return the entries whose key starts with ``prefix``, with the prefix removed."""
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}


class RefineStage(nn.Module):
    """Copy of a ResNet layer4 with an ICON module after each of its last two blocks.

    For ResNet-50 and ResNet-34 (three blocks) this is block 1, block 2, ICON,
    block 3, ICON, as in SEMICON. ResNet-18 has two blocks, so it gets
    block 1, ICON, block 2, ICON.

    All convolutions, ICON included, start from Kaiming-normal init (fan_out,
    ReLU) and BatchNorm from weight 1 and bias 0.

    Shapes:
        input (B, spec.feature_channels, H, W) float, output
        (B, spec.out_channels, ceil(H/2), ceil(W/2)) float.
    """

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(build_layer4_block(spec, index) for index in range(spec.layer4_blocks))
        self.icons = nn.ModuleList(ICON(spec.out_channels) for _ in range(NUM_ICONS))
        # NOTE: for ResNet-18 the first ICON follows the stride-2 block; SEMICON
        # defines ICON placement only for a three-block layer4.
        self.icon_after = tuple(range(spec.layer4_blocks - NUM_ICONS, spec.layer4_blocks))
        init_conv_bn(self)

    def forward(self, x: Tensor) -> Tensor:
        icon_index = 0
        for block_index, block in enumerate(self.blocks):
            x = block(x)
            if block_index in self.icon_after:
                x = self.icons[icon_index](x)
                icon_index += 1
        return x


class SEMICON(nn.Module):
    """SEMICON network mapping images to relaxed hash codes.

    Args:
        code_length: number of bits k, at least 6.
        backbone: ``"resnet50"`` (the published model), ``"resnet34"`` or
            ``"resnet18"`` (lighter, for CPU demos).
        sem_statistics: ``"batch"`` (the release's behaviour, so an image's
            code depends on its batch companions) or ``"image"`` (per-image
            mask statistics, so codes do not depend on batching).
        alpha: exponent of the standard deviation in the SEM suppression mask;
            the release uses 0.15 and the paper states 0.3.

    All weights start random. Use :meth:`load_resnet_weights` or
    ``build_model`` to load ImageNet weights.

    Attributes:
        code_length: k.
        global_bits: rows of the global hash head, ``k - 3 * (k // 6)``.
        local_bits: rows of each of the three local hash heads, ``k // 6``.
        bit_groups: ``[(name, start, stop), ...]`` column ranges of the output
            for ``"global"``, ``"local1"``, ``"local2"`` and ``"local3"``.
        config: build arguments, a plain dict accepted by ``build_model``.

    Shapes:
        input (B, 3, H, W) float ImageNet-normalised images, output
        (B, k) float in (-1, 1). Train-mode BatchNorm needs more than one value
        per channel, so in train mode B * ceil(H/32) * ceil(W/32) must exceed 1.
    """

    def __init__(
        self,
        code_length: int,
        backbone: str = "resnet50",
        sem_statistics: str = "batch",
        alpha: float = DEFAULT_ALPHA,
    ) -> None:
        super().__init__()
        spec = get_backbone_spec(backbone)
        validate_sem_statistics(sem_statistics)
        validate_alpha(alpha)
        self.global_bits, self.local_bits = split_code_length(code_length)
        self.code_length = int(code_length)
        self.backbone_spec = spec

        self.backbone = build_backbone(spec)
        self.global_refine = RefineStage(spec)
        self.attention = SEMAttention(spec.feature_channels, alpha=alpha, statistics=sem_statistics)
        self.local_refine = RefineStage(spec)
        self.global_hash = nn.Linear(spec.out_channels, self.global_bits, bias=False)
        self.local_hash = nn.ModuleList(
            nn.Linear(spec.out_channels, self.local_bits, bias=False) for _ in range(NUM_ATTENTION_MAPS)
        )
        # nn.Linear already initialises its weight Kaiming-uniform with a = sqrt(5).

        self.bit_groups: List[Tuple[str, int, int]] = [("global", 0, self.global_bits)]
        for index in range(NUM_ATTENTION_MAPS):
            start = self.global_bits + index * self.local_bits
            self.bit_groups.append((f"local{index + 1}", start, start + self.local_bits))

        self.config = {
            "arch": "semicon",
            "code_length": self.code_length,
            "backbone": backbone,
            "sem_statistics": sem_statistics,
            "alpha": float(alpha),
            "refine_weights": "release",
        }

    def _encode(self, images: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Compute outputs (B, k), attention maps (B, 3, h, w) and suppression masks (B, 2, h, w)."""
        features = self.backbone(images)

        global_feature = torch.flatten(F.adaptive_avg_pool2d(self.global_refine(features), 1), 1)
        codes = [self.global_hash(global_feature)]

        attention, suppression = self.attention.forward_with_masks(features)
        # The shared local stage runs once per map, not on the three maps stacked
        # along the batch axis, so that train-mode BatchNorm statistics and
        # running-statistic updates are per map as in the release.
        for index, head in enumerate(self.local_hash):
            local_input = attention[:, index : index + 1] * features
            local_feature = torch.flatten(F.adaptive_avg_pool2d(self.local_refine(local_input), 1), 1)
            codes.append(head(local_feature))

        return torch.tanh(torch.cat(codes, dim=1)), attention, suppression

    def forward(self, images: Tensor) -> Tensor:
        """Map (B, 3, H, W) images to (B, code_length) tanh outputs in (-1, 1)."""
        outputs, _, _ = self._encode(images)
        return outputs

    def forward_with_attention(self, images: Tensor) -> Dict[str, Tensor]:
        """Run the network and also return the SEM maps, for visualisation.

        Args:
            images: (B, 3, H, W) float.

        Returns:
            dict with ``"outputs"`` (B, k) tanh outputs, ``"attention"``
            (B, 3, h, w) the maps A1..A3 at the layer3 resolution (h, w), and
            ``"suppression"`` (B, 2, h, w) the masks ``2 - p'`` applied before
            the second and the third attention head.
        """
        outputs, attention, suppression = self._encode(images)
        return {"outputs": outputs, "attention": attention, "suppression": suppression}

    def load_resnet_weights(self, state_dict: Mapping[str, Tensor], refine_weights: str = "release") -> None:
        """Copy torchvision ResNet weights into the backbone and the refine stages.

        ``conv1 .. layer3`` take the matching entries of ``state_dict``. Both
        refine stages take ``layer4`` blocks by index. With ``"release"`` every
        block but the last does (blocks 1-2 of ResNet-50), reproducing the
        authors' release, where the interleaved ICON modules shift the indices
        so that the third block keeps its random init. With ``"all"`` every block
        does. ICON, SEM and the hash heads always keep their random init.

        Args:
            state_dict: torchvision ResNet state dict of the same variant
                (keys such as ``layer3.0.conv1.weight``); ``fc.*`` is ignored.
            refine_weights: ``"release"`` or ``"all"``.

        Raises:
            ValueError: invalid ``refine_weights``, or ``state_dict`` misses
                keys or has shapes of another ResNet variant.
        """
        if refine_weights not in REFINE_WEIGHTS:
            raise ValueError(f"Invalid refine_weights={refine_weights!r}; expected one of {list(REFINE_WEIGHTS)}")
        spec = self.backbone_spec
        layer_names = {name for name, _ in self.backbone.named_children()}
        backbone_state = {key: value for key, value in state_dict.items() if key.split(".", 1)[0] in layer_names}
        num_blocks = spec.layer4_blocks - 1 if refine_weights == "release" else spec.layer4_blocks
        try:
            self.backbone.load_state_dict(backbone_state, strict=True)
            for stage in (self.global_refine, self.local_refine):
                for index in range(num_blocks):
                    block_state = _state_dict_with_prefix(state_dict, f"layer4.{index}.")
                    stage.blocks[index].load_state_dict(block_state, strict=True)
        except RuntimeError as error:
            raise ValueError(f"The pretrained weights do not fit a {spec.name} backbone: {error}") from error
        self.config["refine_weights"] = refine_weights
