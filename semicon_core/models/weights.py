"""Resolve the ``pretrained`` argument of ``build_model`` to a ResNet state dict."""

import logging
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union
from urllib.parse import urlparse

import torch
from torch import Tensor
from torchvision.models import WeightsEnum

from .backbones import BackboneSpec

logger = logging.getLogger(__name__)

PretrainedSource = Union[str, "os.PathLike[str]", WeightsEnum, None]


def weights_cache_file(weights: WeightsEnum) -> Path:
    """Return the path where torch.hub caches ``weights``: ``<torch.hub.get_dir()>/checkpoints/<file name>``."""
    file_name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def _find_weights_enum(pretrained: PretrainedSource, spec: BackboneSpec) -> Optional[WeightsEnum]:
    """Return the member of ``spec.weights_enum`` that ``pretrained`` names, or None if it names none.

    Accepts a member itself, its name (``"IMAGENET1K_V1"``, ``"DEFAULT"``) or
    its qualified name (``"ResNet50_Weights.IMAGENET1K_V1"``).
    """
    enum = spec.weights_enum
    if isinstance(pretrained, WeightsEnum):
        if not isinstance(pretrained, enum):
            raise ValueError(
                f"Invalid pretrained={pretrained}: backbone {spec.name!r} needs {enum.__name__} weights"
            )
        return pretrained
    if not isinstance(pretrained, str):
        return None
    name = pretrained.removeprefix(f"{enum.__name__}.")
    return enum.__members__.get(name)


def _load_torchvision_weights(weights: WeightsEnum) -> Tuple[Dict[str, Tensor], str]:
    """Load torchvision weights from the torch.hub cache, downloading them when missing.

    Raises:
        RuntimeError: the file is not cached and the download failed (for
            example offline); the message names the file and the folder to place it in.
    """
    cache_file = weights_cache_file(weights)
    if not cache_file.is_file():
        logger.info("Downloading %s from %s to %s", weights, weights.url, cache_file.parent)
    try:
        state_dict = weights.get_state_dict(progress=False, weights_only=True)
    except OSError as error:
        # URLError, connection errors and socket timeouts are all OSError.
        if cache_file.is_file():
            raise
        raise RuntimeError(
            f"Could not download the {weights} weights from {weights.url}: {error}. "
            f"If this machine is offline, place the file {cache_file.name!r} in {str(cache_file.parent)!r} "
            f"(torch.hub.get_dir()/checkpoints), pass pretrained=<path to a ResNet state dict file>, "
            f"or pass pretrained='none' for random initialisation."
        ) from error
    return state_dict, f"{weights} from {cache_file}"


def _load_state_dict_file(path: Path) -> Dict[str, Tensor]:
    """Load a ResNet state dict saved with ``torch.save(model.state_dict(), path)``."""
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, dict) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state_dict.items()
    ):
        raise ValueError(
            f"pretrained file {str(path)!r} does not contain a state dict (a dict of parameter "
            f"names to tensors); got {type(state_dict).__name__}"
        )
    return state_dict


def load_pretrained_state_dict(
    pretrained: PretrainedSource, spec: BackboneSpec
) -> Tuple[Optional[Dict[str, Tensor]], str]:
    """Load the ResNet state dict that ``pretrained`` names.

    Args:
        pretrained: a member name of ``spec.weights_enum`` such as
            ``"IMAGENET1K_V1"`` (loaded through torchvision and the torch.hub
            cache), a path to a file holding a torchvision ResNet state dict,
            or ``"none"``/None for random initialisation. Enum names take
            precedence over a file of the same name.
        spec: the backbone the weights are for.

    Returns:
        (state_dict, description): state_dict is None for random
        initialisation, and description names the source for logs.

    Raises:
        FileNotFoundError: ``pretrained`` is neither a weights name, ``"none"``
            nor an existing file.
        RuntimeError: torchvision weights are not cached and cannot be downloaded.
        ValueError: the file does not contain a state dict.
    """
    if pretrained is None or (isinstance(pretrained, str) and pretrained.lower() == "none"):
        return None, "random initialisation"

    weights = _find_weights_enum(pretrained, spec)
    if weights is not None:
        return _load_torchvision_weights(weights)

    if not isinstance(pretrained, (str, os.PathLike)):
        raise TypeError(
            f"pretrained must be a weights name, a file path or 'none'; got {type(pretrained).__name__}"
        )
    path = Path(pretrained)
    if not path.is_file():
        names = ", ".join(spec.weights_enum.__members__)
        raise FileNotFoundError(
            f"pretrained={str(pretrained)!r} is not an existing file, a {spec.weights_enum.__name__} "
            f"name ({names}) or 'none'"
        )
    return _load_state_dict_file(path), f"file {str(path)!r}"
