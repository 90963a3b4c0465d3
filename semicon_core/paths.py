"""Default locations of datasets and run folders."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "SEMICON_DATA_ROOT"
OUTPUTS_ENV = "SEMICON_OUTPUTS"


def project_root() -> Path:
    """Return the repository root when the package runs from a checkout, else the working directory."""
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "notebooks").is_dir():
        return candidate
    return Path.cwd()


def default_data_root(dataset: str) -> Path:
    """Return ``$SEMICON_DATA_ROOT/<dataset>`` when the variable is set, else ``<repository>/data/<dataset>``."""
    base = os.environ.get(DATA_ROOT_ENV)
    return (Path(base) if base else project_root() / "data") / dataset


def outputs_root() -> Path:
    """Return ``$SEMICON_OUTPUTS`` when set, else ``<repository>/outputs``."""
    base = os.environ.get(OUTPUTS_ENV)
    return Path(base) if base else project_root() / "outputs"


def notebooks_dir() -> Path:
    """Return the folder holding the workbench notebooks."""
    return project_root() / "notebooks"
