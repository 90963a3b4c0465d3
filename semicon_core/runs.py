"""Run folders, checkpoints and JSON records.

A run folder ``outputs/<dataset>/<run_name>/`` contains ``params.yaml``,
``metrics.json``, one checkpoint per code length, figures and executed
notebooks. Files are written atomically (temporary file, then rename), so an
interrupted run keeps every file it finished.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from .paths import outputs_root

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


def default_run_name() -> str:
    """Return a time-stamped run name such as ``run-20261204-193000``."""
    return time.strftime("run-%Y%m%d-%H%M%S")


def run_directory(dataset: str, run_name: str, root: Optional[Union[str, Path]] = None) -> Path:
    """Return ``<outputs>/<dataset>/<run_name>`` without creating it."""
    if not run_name or "/" in run_name or run_name in (".", ".."):
        raise ValueError(f"run_name must be a plain folder name, got {run_name!r}")
    return Path(root or outputs_root()) / dataset / run_name


def create_run_directory(dataset: str, run_name: str, root: Optional[Union[str, Path]] = None) -> Path:
    """Create a new run folder; raise ``FileExistsError`` if one with content exists.

    An existing run is never overwritten: pick another ``run_name`` or delete
    the old folder yourself. A folder holding only ``.ipynb`` files counts as
    new, because papermill writes the executed notebook there before the
    notebook creates the run.
    """
    path = run_directory(dataset, run_name, root)
    if path.exists() and any(entry.suffix != ".ipynb" for entry in path.iterdir()):
        raise FileExistsError(
            f"run folder {path} already exists and is not empty; choose another run_name "
            f"(for example -p run_name {run_name}-2) or delete the folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Union[str, Path], payload: Any) -> None:
    """Write ``payload`` as indented JSON through a temporary file and an atomic rename."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; run records are meant to be shared
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=2, allow_nan=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_json(path: Union[str, Path]) -> Any:
    """Read a JSON file."""
    with Path(path).open() as stream:
        return json.load(stream)


def environment_info() -> Dict[str, str]:
    """Return the versions of Python, torch, torchvision, numpy and this package."""
    import numpy
    import torchvision

    from . import __version__

    return {
        "semicon_core": __version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # torch.load(weights_only=True) rejects TorchVersion
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cuda": torch.version.cuda or "none",
    }


def checkpoint_path(run_dir: Union[str, Path], code_length: int) -> Path:
    """Return the checkpoint file of one code length inside a run folder."""
    return Path(run_dir) / f"checkpoint_{code_length}bits.pt"


def save_checkpoint(path: Union[str, Path], payload: Dict[str, Any]) -> None:
    """Save a checkpoint atomically; every value must load with ``weights_only=True``."""
    path = Path(path)
    payload = {"format_version": CHECKPOINT_FORMAT, **payload}
    temporary = path.with_name(path.name + ".partial")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True``.

    Raises ``FileNotFoundError`` naming the file, and ``ValueError`` when its
    format version is newer than this package understands.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; train that code length first")
    payload = torch.load(path, weights_only=True, map_location="cpu")
    version = payload.get("format_version")
    if version != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path} has format version {version!r}; this package reads version {CHECKPOINT_FORMAT}")
    return payload
