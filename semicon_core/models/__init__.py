"""SEMICON fine-grained hashing network, its ADSH baseline and their building blocks.

Build models with :func:`build_model`; the classes are exported for type
checks, tests and custom assembly.
"""

from .baseline import HashingResNet
from .factory import ARCHITECTURES, build_model
from .icon import ICON
from .sem import SEM_STATISTICS, SEMAttention, suppression_mask
from .semicon import REFINE_WEIGHTS, SEMICON, RefineStage, split_code_length
from .weights import load_pretrained_state_dict, weights_cache_file

__all__ = [
    "ARCHITECTURES",
    "HashingResNet",
    "ICON",
    "REFINE_WEIGHTS",
    "RefineStage",
    "SEMAttention",
    "SEMICON",
    "SEM_STATISTICS",
    "build_model",
    "load_pretrained_state_dict",
    "split_code_length",
    "suppression_mask",
    "weights_cache_file",
]
