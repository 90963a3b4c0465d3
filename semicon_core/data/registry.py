"""Dataset names mapped to the functions that build their splits."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, Optional, Union

from ..paths import default_data_root
from .splits import DatasetSplits

logger = logging.getLogger(__name__)

SplitBuilder = Callable[..., DatasetSplits]
_BUILDERS: Dict[str, SplitBuilder] = {}


def register_dataset(name: str) -> Callable[[SplitBuilder], SplitBuilder]:
    """Register ``builder(root: Path, **options) -> DatasetSplits`` under ``name``."""

    def decorator(builder: SplitBuilder) -> SplitBuilder:
        assert name not in _BUILDERS, f"dataset {name!r} registered twice"
        _BUILDERS[name] = builder
        return builder

    return decorator


def available_datasets() -> list:
    """Return the registered dataset names, sorted."""
    return sorted(_BUILDERS)


def build_splits(dataset: str, root: Optional[Union[str, Path]] = None, **options) -> DatasetSplits:
    """Build the query and database splits of ``dataset``.

    Args:
        dataset: a registered name (see ``available_datasets()``).
        root: dataset folder; ``None`` uses ``$SEMICON_DATA_ROOT/<dataset>`` or
            ``<repository>/data/<dataset>``.
        **options: loader options (for example ``skip_bad_images`` or the
            ``typefaces`` rendering sizes); unknown options raise ``TypeError``.

    Returns:
        DatasetSplits with ``query`` (official test split) and ``database``
        (official train split), each holding ``paths``, 0-based ``labels`` and
        ``class_names``.
    """
    if dataset not in _BUILDERS:
        raise ValueError(
            f"unknown dataset {dataset!r}; valid names are {', '.join(available_datasets())}"
        )
    root_path = Path(root).expanduser() if root else default_data_root(dataset)
    splits = _BUILDERS[dataset](root_path, **options)
    logger.info(
        "%s: %d query and %d database images in %d classes (root %s)",
        dataset, len(splits.query), len(splits.database), splits.num_classes, root_path,
    )
    return splits
