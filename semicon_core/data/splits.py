"""Query/database splits: the one structure every dataset loader returns."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class Split:
    """One split of a retrieval dataset.

    Attributes:
        name: ``"query"`` or ``"database"``.
        paths: absolute image paths, one per item.
        labels: (N,) int64 class ids, 0-based and contiguous over ``class_names``.
        class_names: display name of each class id, shared by both splits.
    """

    name: str
    paths: List[str]
    labels: np.ndarray
    class_names: List[str]

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.ndim != 1 or len(self.labels) != len(self.paths):
            raise ValueError(
                f"{self.name} split: expected one integer label per path, got "
                f"{len(self.paths)} paths and labels of shape {self.labels.shape}"
            )
        num_classes = len(self.class_names)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= num_classes):
            bad = self.labels[(self.labels < 0) | (self.labels >= num_classes)]
            raise ValueError(
                f"{self.name} split: label {int(bad[0])} is out of range for "
                f"{num_classes} classes (valid ids are 0..{num_classes - 1})"
            )

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        """Return (num_classes,) int64 item counts per class id."""
        return np.bincount(self.labels, minlength=self.num_classes)


@dataclass
class DatasetSplits:
    """The query split (official test split) and database split (official train split)."""

    dataset: str
    root: str
    query: Split
    database: Split
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def class_names(self) -> List[str]:
        return self.database.class_names

    @property
    def num_classes(self) -> int:
        return self.database.num_classes

    def manifest_hash(self, root: Optional[str] = None) -> str:
        """Return a SHA-256 over (split, relative path, label) of every item.

        Paths are taken relative to ``root`` (default: the dataset root), so the
        same files under another root give the same hash.
        """
        base = Path(root or self.root)
        digest = hashlib.sha256()
        for split in (self.query, self.database):
            for path, label in zip(split.paths, split.labels):
                try:
                    rel = Path(path).relative_to(base).as_posix()
                except ValueError:
                    rel = Path(path).as_posix()
                digest.update(f"{split.name}\t{rel}\t{int(label)}\n".encode())
        return digest.hexdigest()

    def summary(self) -> Dict[str, object]:
        """Return counts per split and class, the class count and the manifest hash."""
        return {
            "dataset": self.dataset,
            "root": str(self.root),
            "num_classes": self.num_classes,
            "num_query": len(self.query),
            "num_database": len(self.database),
            "class_names": list(self.class_names),
            "query_per_class": self.query.class_counts().tolist(),
            "database_per_class": self.database.class_counts().tolist(),
            "manifest_sha256": self.manifest_hash(),
            **self._extra_counts(),
        }

    def _extra_counts(self) -> Dict[str, int]:
        """Return the loader's data-quality counts, for loaders that record them in ``extra``."""
        counts = {}
        if "skipped_images" in self.extra:
            counts["num_skipped_images"] = len(self.extra["skipped_images"])
        if "overlap_count" in self.extra:
            counts["overlap_count"] = int(self.extra["overlap_count"])
        return counts

    def summary_line(self) -> str:
        """Return a one-line summary for logs: split sizes, classes, images per class and manifest hash."""
        line = f"{self.dataset}: {len(self.query)} query / {len(self.database)} database images, {self.num_classes} classes"
        if self.num_classes:
            database_counts = self.database.class_counts()
            query_counts = self.query.class_counts()
            line += (
                f" ({database_counts.min()}-{database_counts.max()} database and "
                f"{query_counts.min()}-{query_counts.max()} query images per class)"
            )
        counts = self._extra_counts()
        if counts.get("num_skipped_images"):
            line += f", {counts['num_skipped_images']} unreadable images skipped"
        if counts.get("overlap_count"):
            line += f", {counts['overlap_count']} images in both splits"
        return line + f", manifest sha256 {self.manifest_hash()[:16]}"
