"""``build_model``: the one entry point that builds a hashing network from a name and options."""

import logging
from typing import Any, Dict, Union

from .backbones import get_backbone_spec
from .baseline import HashingResNet
from .sem import DEFAULT_ALPHA, validate_alpha, validate_sem_statistics
from .semicon import REFINE_WEIGHTS, SEMICON, split_code_length
from .weights import PretrainedSource, load_pretrained_state_dict

logger = logging.getLogger(__name__)

# Options that build_model accepts per architecture, with their defaults.
ARCH_OPTIONS: Dict[str, Dict[str, Any]] = {
    "semicon": {
        "backbone": "resnet50",
        "sem_statistics": "batch",
        "alpha": DEFAULT_ALPHA,
        "refine_weights": "release",
    },
    "baseline": {"backbone": "resnet50"},
}
ARCHITECTURES = tuple(ARCH_OPTIONS)


def build_model(
    arch: str,
    code_length: int,
    pretrained: PretrainedSource = "IMAGENET1K_V1",
    **options: Any,
) -> Union[SEMICON, HashingResNet]:
    """Build a SEMICON network or the ADSH baseline, optionally with ImageNet weights.

    Args:
        arch: ``"semicon"`` or ``"baseline"`` (ResNet with ``fc`` replaced by
            ``Linear(features -> code_length)`` and tanh).
        code_length: number of bits k (at least 6 for ``"semicon"``).
        pretrained: a member name of the backbone's torchvision weights enum,
            such as ``"IMAGENET1K_V1"`` (the default) or ``"DEFAULT"``, which
            is loaded through the torch.hub cache. It can also be a path to a
            torchvision ResNet state dict file, or ``"none"`` for random
            initialisation.
        **options: for both archs, ``backbone``: ``"resnet50"`` (default),
            ``"resnet34"`` or ``"resnet18"``. For ``"semicon"`` also
            ``sem_statistics``: ``"batch"`` (default, as the release) or
            ``"image"``; ``alpha``: SEM exponent (default 0.15, as the
            release); ``refine_weights``: ``"release"`` (default; ImageNet
            layer4 blocks except the last go to each refine stage) or
            ``"all"`` (every block).

    Returns:
        The model in train mode. It has ``code_length``, ``global_bits``,
        ``local_bits``, ``bit_groups`` and ``config``;
        ``build_model(**model.config, pretrained="none")`` builds the same
        architecture, into which ``model.state_dict()`` loads strictly.

    Raises:
        ValueError: invalid ``arch``, ``code_length`` or option value.
        TypeError: an option that ``arch`` does not accept.
        FileNotFoundError, RuntimeError: see ``load_pretrained_state_dict``.
    """
    if arch not in ARCH_OPTIONS:
        raise ValueError(f"Invalid arch={arch!r}; expected one of {list(ARCHITECTURES)}")
    defaults = ARCH_OPTIONS[arch]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(
            f"build_model() got option(s) {unknown} that arch={arch!r} does not accept; "
            f"valid options: {sorted(defaults)}"
        )
    settings = {**defaults, **options}
    spec = get_backbone_spec(settings["backbone"])
    if arch == "semicon":
        split_code_length(code_length)
        validate_sem_statistics(settings["sem_statistics"])
        validate_alpha(settings["alpha"])
        if settings["refine_weights"] not in REFINE_WEIGHTS:
            raise ValueError(
                f"Invalid refine_weights={settings['refine_weights']!r}; expected one of {list(REFINE_WEIGHTS)}"
            )

    # Load the weights before building the model, so that a bad path fails fast.
    state_dict, source = load_pretrained_state_dict(pretrained, spec)

    if arch == "semicon":
        model = SEMICON(
            code_length,
            backbone=settings["backbone"],
            sem_statistics=settings["sem_statistics"],
            alpha=settings["alpha"],
        )
        model.config["refine_weights"] = settings["refine_weights"]
        if state_dict is not None:
            model.load_resnet_weights(state_dict, refine_weights=settings["refine_weights"])
            num_blocks = spec.layer4_blocks - (1 if settings["refine_weights"] == "release" else 0)
            logger.info(
                "Loaded %s into the %s backbone (conv1..layer3) and layer4 blocks 1-%d of both refine stages",
                source,
                spec.name,
                num_blocks,
            )
    else:
        model = HashingResNet(code_length, backbone=settings["backbone"])
        if state_dict is not None:
            model.load_resnet_weights(state_dict)
            logger.info("Loaded %s into every %s layer except the hash layer fc", source, spec.name)

    logger.info("Built %s with weights: %s", model.config, source)
    return model
