"""Training parameters: one dataclass, loaded from ``params/<dataset>.yaml`` with overrides.

Resolution order: dataclass defaults, then the dataset's YAML file, then
explicit overrides (papermill ``-p`` values or command-line flags). A value of
``None`` among the overrides means "keep the YAML value". Unknown keys and
invalid values raise ``ValueError`` naming the parameter.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import yaml

from .paths import project_root

logger = logging.getLogger(__name__)

CHOICES: Dict[str, tuple] = {
    "arch": ("semicon", "baseline"),
    "backbone": ("resnet50", "resnet34", "resnet18"),
    "refine_weights": ("release", "all"),
    "sem_statistics": ("batch", "image"),
    "optimizer": ("SGD", "Adam"),
    "augmentation": ("release", "light", "none"),
    "device": ("auto", "cpu", "cuda"),
}


@dataclass
class TrainParams:
    """Every parameter of one training run (all code lengths of one dataset)."""

    dataset: str = "typefaces"
    root: Optional[str] = None
    data_options: Dict[str, Any] = field(default_factory=dict)

    # Network
    arch: str = "semicon"
    backbone: str = "resnet50"
    pretrained: str = "IMAGENET1K_V1"  # torchvision weights name, a file path, or "none"
    refine_weights: str = "release"  # "release": layer4 Bottlenecks 1-2 only; "all": all three
    sem_statistics: str = "batch"  # "batch" reproduces the release; "image" makes codes batch-independent
    alpha: float = 0.15
    code_lengths: List[int] = field(default_factory=lambda: [12, 24, 32, 48])

    # ADSH protocol
    max_iter: int = 40
    max_epoch: int = 30
    num_samples: int = 2000
    batch_size: int = 16
    gamma: float = 200.0  # weight of the quantization term

    # Optimisation
    optimizer: str = "SGD"  # SGD always uses Nesterov momentum, as the release does
    lr: float = 2.5e-4
    momentum: float = 0.91
    weight_decay: float = 1e-4
    lr_step: List[int] = field(default_factory=lambda: [40])  # outer iterations where lr is multiplied by lr_gamma
    lr_gamma: float = 0.1

    # Data pipeline
    image_size: int = 224
    augmentation: str = "release"
    num_workers: int = 0
    eval_batch_size: int = 64

    # Evaluation
    topk: Optional[int] = None  # None: mAP over the whole ranking
    eval_every: int = 1  # evaluate on the query set every this many outer iterations (and after the last)

    # Run control
    seed: int = 68
    device: str = "auto"
    deterministic: bool = False

    def to_dict(self) -> Dict[str, Any]:
        """Return the parameters as plain Python values (YAML and checkpoint friendly)."""
        return dataclasses.asdict(self)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainParams))


def _as_int_list(name: str, value: Any) -> List[int]:
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        parts = [p for p in text.replace(" ", ",").split(",") if p]
        try:
            return [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"parameter {name}: expected integers separated by commas, got {value!r}") from None
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return [int(value)]
    if isinstance(value, (list, tuple)):
        try:
            return [int(v) for v in value]
        except (TypeError, ValueError):
            raise ValueError(f"parameter {name}: expected a list of integers, got {value!r}") from None
    raise ValueError(f"parameter {name}: expected a list of integers, got {value!r}")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of the field's default, raising ``ValueError`` naming ``name``."""
    if name in ("code_lengths", "lr_step"):
        return _as_int_list(name, value)
    if name == "data_options":
        if isinstance(value, str):
            # papermill -p passes text; read it as YAML, e.g. "{image_size: 32, seed: 1}".
            try:
                value = yaml.safe_load(value) or {}
            except yaml.YAMLError as error:
                raise ValueError(f"parameter data_options: cannot read {value!r} as a YAML mapping: {error}") from None
        if not isinstance(value, Mapping):
            raise ValueError(f"parameter data_options: expected a mapping, got {value!r}")
        return dict(value)
    if name in ("root", "topk"):
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        if name == "topk":
            return _coerce_number(name, value, int)
        return str(value)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"parameter {name}: expected true or false, got {value!r}")
    if isinstance(default, int):
        return _coerce_number(name, value, int)
    if isinstance(default, float):
        return _coerce_number(name, value, float)
    if isinstance(default, str):
        return str(value)
    return value


def _coerce_number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"parameter {name}: expected a number, got {value!r}")
    try:
        number = float(value) if isinstance(value, str) else value
        if kind is int:
            if float(number) != int(float(number)):
                raise ValueError
            return int(float(number))
        return float(number)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name}: expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None


def validate(params: TrainParams) -> TrainParams:
    """Check every value of ``params``; raise ``ValueError`` naming the first invalid one."""
    for name, choices in CHOICES.items():
        value = getattr(params, name)
        if value not in choices:
            raise ValueError(f"parameter {name}: must be one of {', '.join(choices)}, got {value!r}")

    positive_ints = ("max_iter", "max_epoch", "num_samples", "batch_size", "image_size", "eval_batch_size", "eval_every")
    for name in positive_ints:
        if getattr(params, name) < 1:
            raise ValueError(f"parameter {name}: must be >= 1, got {getattr(params, name)!r}")
    for name in ("lr", "gamma", "alpha"):
        if not getattr(params, name) > 0:
            raise ValueError(f"parameter {name}: must be > 0, got {getattr(params, name)!r}")
    for name in ("momentum", "weight_decay", "num_workers"):
        if getattr(params, name) < 0:
            raise ValueError(f"parameter {name}: must be >= 0, got {getattr(params, name)!r}")

    if not 0 < params.lr_gamma <= 1:
        raise ValueError(f"parameter lr_gamma: must be in (0, 1], got {params.lr_gamma!r}")

    if not params.code_lengths:
        raise ValueError("parameter code_lengths: give at least one code length, e.g. [12, 24, 32, 48]")
    for k in params.code_lengths:
        if k < 6:
            raise ValueError(
                f"parameter code_lengths: {k} is too short; SEMICON splits the code into a global "
                "part and three local parts of floor(k/6) bits, so every code length must be >= 6"
            )
    if len(set(params.code_lengths)) != len(params.code_lengths):
        raise ValueError(f"parameter code_lengths: contains duplicates: {params.code_lengths}")

    if params.topk is not None and params.topk < 1:
        raise ValueError(f"parameter topk: must be a positive integer or None (whole ranking), got {params.topk!r}")
    if any(step < 1 for step in params.lr_step):
        raise ValueError(f"parameter lr_step: outer iterations are counted from 1, got {params.lr_step}")
    if not params.dataset:
        raise ValueError("parameter dataset: must name a dataset")
    return params


def params_file(dataset: str, params_dir: Optional[Union[str, Path]] = None) -> Path:
    """Return the path of ``params/<dataset>.yaml``."""
    return Path(params_dir or project_root() / "params") / f"{dataset}.yaml"


def load_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    """Read a parameter file; raise ``ValueError`` naming the file when it is not a mapping."""
    path = Path(path)
    with path.open() as handle:
        content = yaml.safe_load(handle) or {}
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a mapping of parameter names to values, got {type(content).__name__}")
    return content


def resolve_params(
    dataset: str,
    overrides: Optional[Mapping[str, Any]] = None,
    params_dir: Optional[Union[str, Path]] = None,
) -> TrainParams:
    """Build validated ``TrainParams`` for ``dataset`` from its YAML file and ``overrides``.

    Overrides whose value is ``None`` are ignored, so a notebook can pass every
    parameter and leave the unset ones to the YAML file. A missing YAML file
    falls back to the dataclass defaults with a warning.
    """
    values: Dict[str, Any] = {}
    path = params_file(dataset, params_dir)
    if path.is_file():
        values.update(load_yaml(path))
        source = str(path)
    else:
        logger.warning("no parameter file %s; using the built-in defaults", path)
        source = "defaults"
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(f"{source}: unknown parameter(s) {', '.join(unknown)}; valid names are {', '.join(FIELD_NAMES)}")
    for name, value in (overrides or {}).items():
        if name not in FIELD_NAMES:
            raise ValueError(f"unknown parameter {name!r}; valid names are {', '.join(FIELD_NAMES)}")
        if value is not None:
            values[name] = value
    values["dataset"] = dataset
    defaults = TrainParams()
    coerced = {name: _coerce(name, value, getattr(defaults, name)) for name, value in values.items()}
    return validate(TrainParams(**coerced))


def save_params(params: TrainParams, path: Union[str, Path]) -> None:
    """Write ``params`` as YAML."""
    Path(path).write_text(yaml.safe_dump(params.to_dict(), sort_keys=False))


def params_from_dict(values: Mapping[str, Any]) -> TrainParams:
    """Rebuild ``TrainParams`` from ``to_dict()`` output (for example from a checkpoint)."""
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}")
    defaults = TrainParams()
    return validate(TrainParams(**{k: _coerce(k, v, getattr(defaults, k)) for k, v in values.items()}))
