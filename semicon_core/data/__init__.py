"""Dataset loaders: every one returns query and database ``Split`` objects."""

from . import typefaces  # noqa: F401  (registers "typefaces")
from . import layouts  # noqa: F401  (registers cub-2011, nabirds, aircraft, food101, vegfru, folder, csv)
from .dataset import ImageDataset, build_transform, eval_transform, load_rgb, train_transform
from .registry import available_datasets, build_splits, register_dataset
from .splits import DatasetSplits, Split

__all__ = [
    "DatasetSplits",
    "ImageDataset",
    "Split",
    "available_datasets",
    "build_splits",
    "build_transform",
    "eval_transform",
    "load_rgb",
    "register_dataset",
    "train_transform",
]
