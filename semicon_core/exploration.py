"""Dataset exploration: split sizes, class balance, image sizes, sample grids, overlap and unreadable files.

These helpers back ``notebooks/explore.ipynb``. They read image sizes from
file headers (no decoding), so they stay fast on large datasets. Where reading
every file would be slow they subsample, and their output states the sample size.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg", "widget", "ipympl"):
    matplotlib.use("Agg")  # headless default; Jupyter kernels keep their inline backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from .data import DatasetSplits, Split, build_splits, load_rgb  # noqa: E402
from .data.assemble import VERIFY_MODES, find_bad_images  # noqa: E402
from .data.errors import BadImageError  # noqa: E402
from .paths import outputs_root  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_MAX_SIZED_IMAGES = 2000
DEFAULT_MAX_HASHED_QUERIES = 500
# Class names are written on the class-count plot only up to this many classes.
MAX_LABELLED_CLASSES = 60
HASH_CHUNK_BYTES = 1 << 20
# Legend order, so that each split keeps its colour across the figures.
SPLIT_ORDER = ["database", "query"]


def resolve_data_options(dataset: str, data_options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Return ``data_options``, or for ``None`` the ``data_options`` of ``params/<dataset>.yaml``."""
    if data_options is not None:
        return dict(data_options)
    from .params import resolve_params

    return dict(resolve_params(dataset).data_options)


def load_splits(
    dataset: str, root: Optional[Union[str, Path]] = None, data_options: Optional[Mapping[str, Any]] = None
) -> DatasetSplits:
    """Build the splits of ``dataset`` for exploration, keeping unreadable images listed instead of failing.

    When the loader rejects unreadable images (``BadImageError``), the splits
    are built again with ``skip_bad_images=True``, so that the dropped files
    appear in ``extra["skipped_images"]`` and in :func:`scan_unreadable`.
    """
    options = resolve_data_options(dataset, data_options)
    try:
        return build_splits(dataset, root, **options)
    except BadImageError as error:
        logger.warning("%s; building the splits again with skip_bad_images=True to list them", error)
        return build_splits(dataset, root, **{**options, "skip_bad_images": True})


def explore_directory(dataset: str, outputs_dir: Optional[Union[str, Path]] = None) -> Path:
    """Return ``<outputs>/<dataset>/explore``, created if missing."""
    path = Path(outputs_dir or outputs_root()) / dataset / "explore"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save(figure, path: Optional[Union[str, Path]]) -> None:
    if path is not None:
        figure.savefig(path, dpi=110, bbox_inches="tight")
        logger.info("saved %s", path)


# ---------------------------------------------------------------------------
# Split sizes and class balance
# ---------------------------------------------------------------------------


def split_size_table(splits: DatasetSplits) -> pd.DataFrame:
    """Return one row per split: images, classes with images, and min / median / max images per class."""
    rows = []
    for split in (splits.query, splits.database):
        counts = split.class_counts()
        present = counts[counts > 0]
        rows.append({
            "split": split.name,
            "images": len(split),
            "classes with images": int(len(present)),
            "min per class": int(present.min()) if len(present) else 0,
            "median per class": float(np.median(present)) if len(present) else 0.0,
            "max per class": int(present.max()) if len(present) else 0,
        })
    return pd.DataFrame(rows).set_index("split")


def class_count_table(splits: DatasetSplits) -> pd.DataFrame:
    """Return a long table with one row per (class, split): ``class_id``, ``class_name``, ``split``, ``images``."""
    rows = []
    for split in (splits.query, splits.database):
        for class_id, count in enumerate(split.class_counts()):
            rows.append({"class_id": class_id, "class_name": split.class_names[class_id],
                         "split": split.name, "images": int(count)})
    return pd.DataFrame(rows)


def plot_class_counts(counts: pd.DataFrame, path: Optional[Union[str, Path]] = None):
    """Bar plot of images per class for query and database (seaborn), classes in id order.

    Class names label the axis up to 60 classes; beyond that the axis shows
    class ids every few classes.
    """
    import seaborn as sns

    num_classes = int(counts["class_id"].nunique())
    width = min(max(6.0, 0.28 * num_classes + 2.0), 24.0)
    figure, axis = plt.subplots(figsize=(width, 4.2))
    sns.barplot(data=counts, x="class_id", y="images", hue="split", hue_order=SPLIT_ORDER, ax=axis)
    if num_classes <= MAX_LABELLED_CLASSES:
        names = counts.drop_duplicates("class_id").sort_values("class_id")["class_name"].tolist()
        axis.set_xticks(range(num_classes))
        axis.set_xticklabels(names, rotation=75, ha="right", fontsize=7)
        axis.set_xlabel("class")
    else:
        step = int(np.ceil(num_classes / 40))
        axis.set_xticks(range(0, num_classes, step))
        axis.set_xticklabels([str(class_id) for class_id in range(0, num_classes, step)], fontsize=7)
        axis.set_xlabel("class id")
    axis.set_ylabel("images")
    axis.set_title("images per class")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    _save(figure, path)
    return figure


# ---------------------------------------------------------------------------
# Image sizes
# ---------------------------------------------------------------------------


def sample_items(splits: DatasetSplits, max_images: int = DEFAULT_MAX_SIZED_IMAGES, seed: int = 0) -> pd.DataFrame:
    """Return a uniform random subsample of at most ``max_images`` items of both splits, in split order.

    Columns: ``split``, ``index`` (position in the split), ``path``, ``label``.
    ``DataFrame.attrs["total"]`` is the number of items before subsampling.
    """
    if max_images < 1:
        raise ValueError(f"max_images must be at least 1; got {max_images!r}")
    frames = [
        pd.DataFrame({"split": split.name, "index": np.arange(len(split)), "path": split.paths, "label": split.labels})
        for split in (splits.query, splits.database)
    ]
    items = pd.concat(frames, ignore_index=True)
    total = len(items)
    if total > max_images:
        chosen = np.sort(np.random.default_rng(seed).choice(total, size=max_images, replace=False))
        items = items.iloc[chosen].reset_index(drop=True)
    items.attrs["total"] = total
    return items


def sample_note(items: pd.DataFrame) -> str:
    """Describe how many of the dataset's images a :func:`sample_items` table covers."""
    total = items.attrs.get("total", len(items))
    if len(items) < total:
        return f"sizes read from a uniform random sample of {len(items)} of {total} images (seeded)"
    return f"sizes read from all {total} images"


def read_image_sizes(items: pd.DataFrame) -> pd.DataFrame:
    """Add ``width``, ``height``, ``aspect_ratio`` (width / height), ``mode`` and ``error`` to an items table.

    Sizes come from the file header (``PIL.Image.open`` without decoding).
    Unreadable files get NaN sizes and the error text.
    """
    widths, heights, modes, errors = [], [], [], []
    for path in items["path"]:
        try:
            with Image.open(path) as image:
                width, height = image.size
                mode = image.mode
            error = None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as failure:
            width = height = np.nan
            mode = None
            error = f"{type(failure).__name__}: {failure}"
        widths.append(width)
        heights.append(height)
        modes.append(mode)
        errors.append(error)
    sized = items.copy()
    sized["width"] = np.asarray(widths, dtype=float)
    sized["height"] = np.asarray(heights, dtype=float)
    sized["aspect_ratio"] = sized["width"] / sized["height"]
    sized["mode"] = modes
    sized["error"] = errors
    return sized


def size_summary(sizes: pd.DataFrame) -> pd.DataFrame:
    """Return count, mean, std, min, quartiles and max of width, height and aspect ratio, one column per split.

    Rows are named ``<measure> <statistic>``, such as ``"width mean"``.
    """
    readable = sizes.dropna(subset=["width", "height"])
    table = readable.groupby("split")[["width", "height", "aspect_ratio"]].describe().T
    table.index = [f"{measure} {statistic}" for measure, statistic in table.index]
    return table


def plot_image_sizes(sizes: pd.DataFrame, note: str = "", path: Optional[Union[str, Path]] = None):
    """Scatter of width against height and a histogram of aspect ratios, per split."""
    import seaborn as sns

    readable = sizes.dropna(subset=["width", "height"])
    figure, (size_axis, ratio_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    sns.scatterplot(data=readable, x="width", y="height", hue="split", hue_order=SPLIT_ORDER, alpha=0.5, s=14,
                    ax=size_axis)
    size_axis.set_title("image size (pixels)")
    size_axis.grid(alpha=0.3)
    sns.histplot(data=readable, x="aspect_ratio", hue="split", hue_order=SPLIT_ORDER, bins=40, element="step",
                 ax=ratio_axis)
    ratio_axis.set_xlabel("aspect ratio (width / height)")
    ratio_axis.set_title("aspect ratio")
    ratio_axis.grid(alpha=0.3)
    if note:
        figure.suptitle(note, fontsize=9)
    figure.tight_layout()
    _save(figure, path)
    return figure


# ---------------------------------------------------------------------------
# Sample grid
# ---------------------------------------------------------------------------


def plot_sample_grid(
    split: Split,
    samples_per_class: int = 4,
    max_classes: int = 12,
    seed: int = 0,
    path: Optional[Union[str, Path]] = None,
):
    """Show ``samples_per_class`` random images of each of the first ``max_classes`` classes, one row per class.

    Classes with fewer images leave cells empty. Unreadable images show their
    error instead of the picture.
    """
    if samples_per_class < 1 or max_classes < 1:
        raise ValueError(f"samples_per_class and max_classes must be at least 1; got {samples_per_class}, {max_classes}")
    classes = [class_id for class_id in range(split.num_classes) if np.any(split.labels == class_id)][:max_classes]
    if not classes:
        raise ValueError(f"the {split.name} split has no images to show")
    rng = np.random.default_rng(seed)
    height = 1.6 * len(classes) + 0.4
    figure, axes = plt.subplots(len(classes), samples_per_class,
                                figsize=(1.6 * samples_per_class + 1.8, height), squeeze=False)
    for row, class_id in enumerate(classes):
        members = np.flatnonzero(split.labels == class_id)
        chosen = np.sort(rng.choice(members, size=min(samples_per_class, len(members)), replace=False))
        for column in range(samples_per_class):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column >= len(chosen):
                axis.axis("off")
                continue
            try:
                axis.imshow(load_rgb(split.paths[int(chosen[column])]))
            except OSError as error:
                axis.text(0.5, 0.5, f"unreadable:\n{error}"[:80], ha="center", va="center", fontsize=6, wrap=True)
        axes[row, 0].set_ylabel(split.class_names[class_id][:24], fontsize=7, rotation=0, ha="right", va="center")
    if len(classes) < split.num_classes:
        class_scope = f"first {len(classes)} of {split.num_classes} classes"
    else:
        class_scope = "all classes"
    figure.suptitle(f"{split.name} split: {samples_per_class} random images per class, {class_scope}", fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / height))
    _save(figure, path)
    return figure


# ---------------------------------------------------------------------------
# Overlap and unreadable files
# ---------------------------------------------------------------------------


def file_sha256(path: Union[str, Path]) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_size(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def find_split_overlap(
    splits: DatasetSplits, max_hashed_queries: int = DEFAULT_MAX_HASHED_QUERIES, seed: int = 0
) -> Dict[str, Any]:
    """Find images that are in both the query and the database split.

    Two checks: identical paths over all items, and identical file content
    (SHA-256) for a random sample of at most ``max_hashed_queries`` query
    images. Each sampled query is compared with every database file of the
    same byte size, so the content check is exact for the sample while
    hashing only candidate files.

    Returns:
        dict with ``same_path`` (paths in both splits), ``same_content``
        (``{"query", "database", "sha256"}`` records with different paths),
        ``hashed_queries``, ``num_query`` and ``note``.
    """
    same_path = sorted(set(splits.query.paths) & set(splits.database.paths))

    query_paths = list(splits.query.paths)
    if len(query_paths) > max_hashed_queries:
        chosen = np.sort(np.random.default_rng(seed).choice(len(query_paths), size=max_hashed_queries, replace=False))
        query_paths = [query_paths[int(index)] for index in chosen]

    database_by_size: Dict[int, List[str]] = defaultdict(list)
    for path in splits.database.paths:
        size = _file_size(path)
        if size is not None:
            database_by_size[size].append(path)

    database_hashes: Dict[str, str] = {}
    same_content = []
    for query_path in query_paths:
        size = _file_size(query_path)
        candidates = [path for path in database_by_size.get(size, []) if path != query_path] if size is not None else []
        if not candidates:
            continue
        query_hash = file_sha256(query_path)
        for database_path in candidates:
            if database_path not in database_hashes:
                database_hashes[database_path] = file_sha256(database_path)
            if database_hashes[database_path] == query_hash:
                same_content.append({"query": query_path, "database": database_path, "sha256": query_hash})

    if len(query_paths) < len(splits.query):
        note = (f"paths compared for all images; content compared for a random sample of {len(query_paths)} "
                f"of {len(splits.query)} query images against every database file of equal size")
    else:
        note = "paths and content compared for all query images against every database file of equal size"
    return {
        "same_path": same_path,
        "same_content": same_content,
        "hashed_queries": len(query_paths),
        "num_query": len(splits.query),
        "note": note,
    }


def scan_unreadable(splits: DatasetSplits, mode: str = "header") -> pd.DataFrame:
    """List the images that PIL cannot read, with the check that caught each.

    Args:
        splits: the dataset's splits; images the loader already dropped
            (``extra["skipped_images"]``) are listed with ``check`` set to
            ``"loader"``.
        mode: ``"header"`` parses each file's header, ``"full"`` also
            decodes the pixels (slow on large datasets, finds truncated
            files), ``"none"`` lists only the loader's records.

    Returns:
        DataFrame with columns ``split``, ``path``, ``error``, ``check``.
    """
    if mode not in VERIFY_MODES:
        raise ValueError(f"Invalid scan mode {mode!r}; expected one of {list(VERIFY_MODES)}")
    rows = [
        {"split": record["split"], "path": record["path"], "error": record["error"], "check": "loader"}
        for record in splits.extra.get("skipped_images", [])
    ]
    for split in (splits.query, splits.database):
        for path, error in find_bad_images(split.paths, mode):
            rows.append({"split": split.name, "path": path, "error": error, "check": mode})
    return pd.DataFrame(rows, columns=["split", "path", "error", "check"])
