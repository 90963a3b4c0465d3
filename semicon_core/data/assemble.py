"""The one function that turns a parsed layout into checked ``DatasetSplits``.

Every layout parser (``layouts.py``) returns a ``ParsedLayout``: the
``(relative path, class id)`` items of each split and the class names.
``assemble_splits`` then does the checks that every dataset shares: labels
in range, listed files present, images readable, every class in the
database, and no file in both splits.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .errors import BadImageError, DatasetError, DatasetNotFoundError
from .metadata import LayoutInfo
from .splits import DatasetSplits, Split

logger = logging.getLogger(__name__)

VERIFY_MODES = ("none", "header", "full")
# Paths quoted in an error or warning before "and N more".
MAX_LISTED_PATHS = 5
# Threads that open images during verification. PIL releases the GIL while
# decoding, and reads from network file systems are I/O-bound.
VERIFY_THREADS = min(8, os.cpu_count() or 1)


@dataclass
class ParsedLayout:
    """Metadata read by a layout parser, before any image file is opened.

    Attributes:
        info: the layout's expected files, quoted in error messages.
        root: folder that relative paths are resolved against.
        query: ``(path relative to root or absolute, class id)`` items of the
            query split (official test split), in metadata order.
        database: the same for the database split (official train split).
        class_names: display name of each class id, 0-based.
        query_source: metadata file that lists the query items, for messages.
        database_source: metadata file that lists the database items.
        extra: layout-specific entries copied into ``DatasetSplits.extra``.
    """

    info: LayoutInfo
    root: Path
    query: List[Tuple[str, int]]
    database: List[Tuple[str, int]]
    class_names: List[str]
    query_source: str
    database_source: str
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        return self.info.name


def format_paths(paths: Sequence[str]) -> str:
    """Return the first few paths, comma-separated, with a count of the rest."""
    text = ", ".join(str(path) for path in paths[:MAX_LISTED_PATHS])
    if len(paths) > MAX_LISTED_PATHS:
        text += f" and {len(paths) - MAX_LISTED_PATHS} more"
    return text


def check_image(path: str, mode: str) -> Optional[str]:
    """Return None when PIL can read ``path``, else the error text.

    ``mode="header"`` only parses the header, which catches empty, non-image
    and wrongly named files. ``mode="full"`` also decodes all pixels, which
    catches truncated and corrupt files.
    """
    try:
        with Image.open(path) as image:
            if mode == "full":
                # NOTE: truncated files pass when some other code has set
                # PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True.
                image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def find_bad_images(paths: Sequence[str], mode: str) -> List[Tuple[str, str]]:
    """Return ``(path, error)`` for each path that fails ``check_image`` in ``mode``, in input order."""
    if mode == "none" or not paths:
        return []
    with ThreadPoolExecutor(max_workers=VERIFY_THREADS) as pool:
        errors = list(pool.map(lambda path: check_image(path, mode), paths, chunksize=64))
    return [(path, error) for path, error in zip(paths, errors) if error is not None]


def _check_class_names(parsed: ParsedLayout) -> None:
    if not parsed.class_names:
        raise DatasetError(
            f"{parsed.dataset}: no classes found under root {parsed.root}. "
            f"The layout expects:\n{parsed.info.describe()}"
        )
    seen: Dict[str, int] = {}
    for class_id, name in enumerate(parsed.class_names):
        if name in seen:
            raise DatasetError(
                f"{parsed.dataset}: class name {name!r} is used by class ids {seen[name]} and {class_id} "
                f"under root {parsed.root}; class names must be unique"
            )
        seen[name] = class_id
    expected = parsed.info.num_classes
    if expected is not None and len(parsed.class_names) != expected:
        logger.warning(
            "%s: found %d classes under %s, but the official release has %d; "
            "check that the download is complete if you expect the full dataset",
            parsed.dataset, len(parsed.class_names), parsed.root, expected,
        )


def _check_labels(parsed: ParsedLayout) -> None:
    num_classes = len(parsed.class_names)
    for items, source in ((parsed.query, parsed.query_source), (parsed.database, parsed.database_source)):
        for path, label in items:
            if not 0 <= label < num_classes:
                raise DatasetError(
                    f"{parsed.dataset}: image {path} in {source} has label {label}, which is out of range "
                    f"for {num_classes} classes (valid ids are 0..{num_classes - 1}); root {parsed.root}"
                )


def _resolve(parsed: ParsedLayout, items: List[Tuple[str, int]]) -> Tuple[List[str], List[int]]:
    root = os.path.abspath(parsed.root)
    paths = [os.path.normpath(os.path.join(root, path)) for path, _ in items]
    return paths, [label for _, label in items]


def _check_files_exist(parsed: ParsedLayout, split_name: str, source: str, paths: List[str]) -> None:
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise DatasetNotFoundError(
            f"{parsed.dataset}: {len(missing)} of the {len(paths)} {split_name} images listed in {source} "
            f"are missing under root {parsed.root}: {format_paths(missing)}. Check that root points at the "
            f"folder that contains the whole dataset. The {parsed.dataset} layout is:\n{parsed.info.describe()}"
        )


def _drop_bad_images(
    parsed: ParsedLayout,
    splits: Dict[str, Tuple[List[str], List[int]]],
    verify_images: str,
    skip_bad_images: bool,
) -> List[Dict[str, str]]:
    """Verify every image, then raise BadImageError or drop the bad ones from ``splits`` in place.

    Returns one ``{"split", "path", "error"}`` record per dropped image.
    """
    if verify_images == "none":
        return []
    start = time.perf_counter()
    bad = {split_name: dict(find_bad_images(paths, verify_images)) for split_name, (paths, _) in splits.items()}
    records = [
        {"split": split_name, "path": path, "error": error}
        for split_name, errors in bad.items()
        for path, error in errors.items()
    ]
    logger.info(
        "%s: checked %d images with verify_images=%r in %.1f s, %d unreadable",
        parsed.dataset, sum(len(paths) for paths, _ in splits.values()), verify_images,
        time.perf_counter() - start, len(records),
    )
    if not records:
        return []

    bad_paths = [record["path"] for record in records]
    if not skip_bad_images:
        first = records[0]
        raise BadImageError(
            f"{parsed.dataset}: {len(records)} image(s) under root {parsed.root} cannot be read with "
            f"verify_images={verify_images!r}: {format_paths(bad_paths)}. First error, in the "
            f"{first['split']} split: {first['path']}: {first['error']}. Replace or remove these files, "
            f"or pass skip_bad_images=True to drop them."
        )
    for split_name, (paths, labels) in splits.items():
        kept = [(path, label) for path, label in zip(paths, labels) if path not in bad[split_name]]
        splits[split_name] = ([path for path, _ in kept], [label for _, label in kept])
    logger.warning(
        "%s: skipped %d unreadable images (verify_images=%r, skip_bad_images=True): %s; "
        "the full list is in DatasetSplits.extra['skipped_images']",
        parsed.dataset, len(records), verify_images, format_paths(bad_paths),
    )
    return records


def _count_overlap(parsed: ParsedLayout, query_paths: List[str], database_paths: List[str]) -> int:
    overlap = sorted(set(query_paths) & set(database_paths))
    if overlap:
        logger.warning(
            "%s: %d images are in both the query and the database split (%s); "
            "each such query finds itself in the database, which inflates retrieval scores",
            parsed.dataset, len(overlap), format_paths(overlap),
        )
    return len(overlap)


def _check_database_classes(parsed: ParsedLayout, database: Split, query: Split) -> None:
    empty = np.flatnonzero(database.class_counts() == 0)
    if len(empty):
        names = [f"{int(class_id)} ({parsed.class_names[class_id]!r})" for class_id in empty]
        raise DatasetError(
            f"{parsed.dataset}: {len(empty)} class(es) have no database images in {parsed.database_source} "
            f"under root {parsed.root}: {format_paths(names)}. Every class needs at least one "
            f"database (train split) image."
        )
    if len(query) == 0:
        raise DatasetError(
            f"{parsed.dataset}: the query split ({parsed.query_source} under root {parsed.root}) has no images"
        )


def assemble_splits(
    parsed: ParsedLayout, verify_images: str = "header", skip_bad_images: bool = False
) -> DatasetSplits:
    """Check a parsed layout and return its query and database splits.

    Args:
        parsed: items and class names read by a layout parser.
        verify_images: ``"header"`` opens each image's header with PIL (fast,
            catches empty and non-image files); ``"full"`` decodes every image
            (slow on large datasets, also catches truncated files);
            ``"none"`` opens no image. Every mode checks that each listed
            file exists.
        skip_bad_images: False raises BadImageError on unreadable images.
            True drops them, logs a warning with the count and records them
            in ``extra["skipped_images"]``.

    Returns:
        DatasetSplits whose ``extra`` contains the parser's entries plus
        ``skipped_images`` (list of ``{"split", "path", "error"}``, empty
        when none), ``overlap_count`` (images listed in both splits) and
        ``verify_images`` (the mode used).

    Raises:
        DatasetNotFoundError: listed images are missing.
        BadImageError: unreadable images with ``skip_bad_images=False``.
        DatasetError: duplicate class names, out-of-range labels, a class
            without database images or an empty query split.
    """
    if verify_images not in VERIFY_MODES:
        raise ValueError(
            f"{parsed.dataset}: verify_images must be one of {', '.join(VERIFY_MODES)}, got {verify_images!r}"
        )
    if not isinstance(skip_bad_images, (bool, np.bool_)):
        raise ValueError(f"{parsed.dataset}: skip_bad_images must be True or False, got {skip_bad_images!r}")

    _check_class_names(parsed)
    _check_labels(parsed)

    splits = {"query": _resolve(parsed, parsed.query), "database": _resolve(parsed, parsed.database)}
    sources = {"query": parsed.query_source, "database": parsed.database_source}
    for split_name, (paths, _) in splits.items():
        _check_files_exist(parsed, split_name, sources[split_name], paths)
    skipped = _drop_bad_images(parsed, splits, verify_images, bool(skip_bad_images))

    class_names = list(parsed.class_names)
    query = Split("query", splits["query"][0], np.array(splits["query"][1], dtype=np.int64), class_names)
    database = Split("database", splits["database"][0], np.array(splits["database"][1], dtype=np.int64), class_names)
    _check_database_classes(parsed, database, query)
    overlap_count = _count_overlap(parsed, query.paths, database.paths)

    extra = dict(parsed.extra)
    extra.update(skipped_images=skipped, overlap_count=overlap_count, verify_images=verify_images)
    result = DatasetSplits(parsed.dataset, os.path.abspath(parsed.root), query, database, extra=extra)
    logger.info("%s", result.summary_line())
    return result
