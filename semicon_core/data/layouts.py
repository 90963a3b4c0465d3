"""Loaders for the benchmark datasets and for generic folder and CSV layouts.

Each layout has one parser that reads only metadata and returns a
``ParsedLayout``. The registered builders pass it to ``assemble_splits``,
which checks labels and files and builds the splits. Query = official test
split, database = official train split.

Registered names: ``cub-2011``, ``nabirds``, ``aircraft``, ``food101``,
``vegfru``, ``folder`` and ``csv``. All builders take ``verify_images``
("header", "full" or "none") and ``skip_bad_images`` (see
``assemble_splits``); ``vegfru`` and ``csv`` also take ``num_classes``.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from .assemble import ParsedLayout, assemble_splits
from .errors import DatasetError, DatasetNotFoundError
from .metadata import LayoutInfo, locate_root, parse_int, read_fields, read_id_table, require_file
from .registry import register_dataset
from .splits import DatasetSplits

logger = logging.getLogger(__name__)

# File name endings that the folder layout treats as images, compared in lower case.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

CUB_LAYOUT = LayoutInfo(
    name="cub-2011",
    files=(
        ("images.txt", "lines '<image id> <path under images/>'"),
        ("image_class_labels.txt", "lines '<image id> <class id, 1-based>'"),
        ("train_test_split.txt", "lines '<image id> <1 = train, 0 = test>'"),
        ("classes.txt", "optional, lines '<class id> <class name>'"),
        ("images/", "the image files"),
    ),
    root_subfolders=("CUB_200_2011",),
    num_classes=200,
)

NABIRDS_LAYOUT = LayoutInfo(
    name="nabirds",
    files=(
        ("images.txt", "lines '<image id> <path under images/>'"),
        ("image_class_labels.txt", "lines '<image id> <class id>' (ids are not contiguous)"),
        ("train_test_split.txt", "lines '<image id> <1 = train, 0 = test>'"),
        ("classes.txt", "optional, lines '<class id> <class name with spaces>'"),
        ("images/", "the image files"),
    ),
    root_subfolders=("nabirds",),
    num_classes=555,
)

AIRCRAFT_DATA = "fgvc-aircraft-2013b/data"
AIRCRAFT_LAYOUT = LayoutInfo(
    name="aircraft",
    files=(
        (f"{AIRCRAFT_DATA}/variants.txt", "one variant name per line, in class order"),
        (f"{AIRCRAFT_DATA}/images_variant_trainval.txt", "lines '<image id> <variant name>' (database)"),
        (f"{AIRCRAFT_DATA}/images_variant_test.txt", "lines '<image id> <variant name>' (query)"),
        (f"{AIRCRAFT_DATA}/images/", "files '<image id>.jpg'"),
    ),
    num_classes=100,
)

FOOD101_LAYOUT = LayoutInfo(
    name="food101",
    files=(
        ("meta/labels.txt", "one display name per line, in class order, e.g. 'Apple pie'"),
        ("meta/train.txt", "lines '<class key>/<image id>', class key e.g. 'apple_pie' (database)"),
        ("meta/test.txt", "lines '<class key>/<image id>' (query)"),
        ("images/", "files '<class key>/<image id>.jpg'"),
    ),
    root_subfolders=("food-101",),
    num_classes=101,
)

VEGFRU_LAYOUT = LayoutInfo(
    name="vegfru",
    files=(
        ("vegfru_list/vegfru_train.txt", "lines '<image path under the root> <class id, 0-based>' (database)"),
        ("vegfru_list/vegfru_test.txt", "lines '<image path under the root> <class id, 0-based>' (query)"),
        ("veg200_images/, fru92_images/", "the image files, one folder per class"),
    ),
    num_classes=292,
)

FOLDER_LAYOUT = LayoutInfo(
    name="folder",
    files=(
        ("train/<class name>/", "database images of that class (subfolders included)"),
        ("test/<class name>/", "query images of that class"),
    ),
)

CSV_LAYOUT = LayoutInfo(
    name="csv",
    files=(
        ("manifest.csv", "header 'path,label,split'; the root may also be the CSV file itself"),
        ("path", "image path, relative to the CSV's folder or absolute"),
        ("label", "class name, or integer class id when every label is an integer"),
        ("split", "'train' or 'database' for the database split, 'test' or 'query' for the query split"),
    ),
)


# --------------------------------------------------------------------------- CUB-200-2011 and NABirds


def parse_cub_style(info: LayoutInfo, root: Path) -> ParsedLayout:
    """Parse the CUB-200-2011 layout, which NABirds shares.

    Class ids in ``image_class_labels.txt`` may be non-contiguous, as the
    555 ids of NABirds are. The ids that label at least one image
    are mapped to 0..C-1 in increasing id order. ``classes.txt`` names them
    when present; it may list more ids than are used, since NABirds also
    lists the parent categories. Without it, the class with id ``k`` in
    ``image_class_labels.txt`` is named ``class_<k>``.
    """
    root = locate_root(info, root)
    images = read_id_table(info, root, "images.txt", "<image id> <path under images/>")
    labels = read_id_table(info, root, "image_class_labels.txt", "<image id> <class id>")
    is_train = read_id_table(info, root, "train_test_split.txt", "<image id> <1 = train, 0 = test>")
    for file_name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", is_train)):
        missing = [image_id for image_id in images if image_id not in table]
        unknown = [image_id for image_id in table if image_id not in images]
        if missing or unknown:
            raise DatasetError(
                f"{info.name}: {file_name} under root {root} does not match images.txt: "
                f"{len(missing)} image ids have no line in it (first: {missing[:3]}) and "
                f"{len(unknown)} of its ids are not in images.txt (first: {unknown[:3]}). "
                f"Use the metadata files of one release together."
            )

    label_path = root / "image_class_labels.txt"
    original_ids = {
        image_id: parse_int(info, label_path, line_number, value, "class id")
        for image_id, (line_number, value) in labels.items()
    }
    used_ids = sorted(set(original_ids.values()))
    class_index = {original_id: index for index, original_id in enumerate(used_ids)}
    class_names = _cub_class_names(info, root, used_ids)

    split_path = root / "train_test_split.txt"
    query, database = [], []
    for image_id, (_, relative_path) in images.items():
        line_number, flag = is_train[image_id]
        if flag not in ("0", "1"):
            raise DatasetError(
                f"{info.name}: line {line_number} of {split_path} has split flag {flag!r}, "
                f"expected 1 (train) or 0 (test)"
            )
        item = (f"images/{relative_path}", class_index[original_ids[image_id]])
        (database if flag == "1" else query).append(item)
    return ParsedLayout(
        info, root, query, database, class_names,
        query_source="images.txt (train_test_split.txt flag 0)",
        database_source="images.txt (train_test_split.txt flag 1)",
        extra={"original_class_ids": used_ids},
    )


def _cub_class_names(info: LayoutInfo, root: Path, used_ids: List[int]) -> List[str]:
    if not (root / "classes.txt").is_file():
        logger.info("%s: no classes.txt under %s, naming classes class_<id>", info.name, root)
        return [f"class_{class_id}" for class_id in used_ids]
    table = read_id_table(info, root, "classes.txt", "<class id> <class name>")
    names = {
        parse_int(info, root / "classes.txt", line_number, key, "class id"): name
        for key, (line_number, name) in table.items()
    }
    unnamed = [class_id for class_id in used_ids if class_id not in names]
    if unnamed:
        raise DatasetError(
            f"{info.name}: class ids {unnamed[:5]} label images in image_class_labels.txt but are "
            f"missing from classes.txt under root {root}"
        )
    return [names[class_id] for class_id in used_ids]


# --------------------------------------------------------------------------- FGVC-Aircraft


def parse_aircraft(root: Path) -> ParsedLayout:
    """Parse FGVC-Aircraft 2013b at the variant level (100 classes).

    The metadata folder is ``<root>/fgvc-aircraft-2013b/data``; ``<root>/data``
    and ``<root>`` itself are also accepted. Variant names may contain spaces
    and slashes ("F/A-18", "Cessna 172"). The database is the official
    ``trainval`` list (train + val), the query the ``test`` list.
    """
    info = AIRCRAFT_LAYOUT
    root = locate_root(info, root)
    data_dir = next(
        (candidate for candidate in (AIRCRAFT_DATA, "data", ".") if (root / candidate / "variants.txt").is_file()),
        AIRCRAFT_DATA,
    )

    variants_path = require_file(info, root, f"{data_dir}/variants.txt")
    class_names = [line.strip() for line in variants_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    class_index = {name: index for index, name in enumerate(class_names)}

    splits = {}
    for split_name, file_name in (("database", "images_variant_trainval.txt"), ("query", "images_variant_test.txt")):
        relative_list = f"{data_dir}/{file_name}"
        items = []
        for line_number, (image_id, variant) in read_fields(info, root, relative_list, 2, "<image id> <variant name>"):
            if variant not in class_index:
                raise DatasetError(
                    f"{info.name}: line {line_number} of {root / relative_list} names variant {variant!r}, "
                    f"which is not in {variants_path}"
                )
            items.append((os.path.normpath(f"{data_dir}/images/{image_id}.jpg"), class_index[variant]))
        splits[split_name] = (items, relative_list)
    return ParsedLayout(
        info, root, splits["query"][0], splits["database"][0], class_names,
        query_source=splits["query"][1], database_source=splits["database"][1],
    )


# --------------------------------------------------------------------------- Food-101


def food101_class_key(display_name: str) -> str:
    """Return the Food-101 class key of a display name: lower case, spaces to underscores."""
    return display_name.strip().lower().replace(" ", "_")


def parse_food101(root: Path) -> ParsedLayout:
    """Parse Food-101: class names from ``meta/labels.txt``, items from ``meta/train.txt`` and ``meta/test.txt``."""
    info = FOOD101_LAYOUT
    root = locate_root(info, root)
    labels_path = require_file(info, root, "meta/labels.txt")
    class_names = [line.strip() for line in labels_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    class_index: Dict[str, int] = {}
    for index, name in enumerate(class_names):
        key = food101_class_key(name)
        if key in class_index:
            raise DatasetError(
                f"{info.name}: display names {class_names[class_index[key]]!r} and {name!r} in {labels_path} "
                f"map to the same class key {key!r}"
            )
        class_index[key] = index

    splits = {}
    for split_name, relative_list in (("database", "meta/train.txt"), ("query", "meta/test.txt")):
        items = []
        for line_number, (entry,) in read_fields(info, root, relative_list, 1, "<class key>/<image id>"):
            key = entry.split("/", 1)[0]
            if "/" not in entry or key not in class_index:
                raise DatasetError(
                    f"{info.name}: line {line_number} of {root / relative_list} is {entry!r}, expected "
                    f"'<class key>/<image id>' with a class key made from {labels_path} "
                    f"(lower case, spaces to '_')"
                )
            items.append((f"images/{entry}.jpg", class_index[key]))
        splits[split_name] = items
    return ParsedLayout(
        info, root, splits["query"], splits["database"], class_names,
        query_source="meta/test.txt", database_source="meta/train.txt",
    )


# --------------------------------------------------------------------------- VegFru


def parse_vegfru(root: Path, num_classes: Optional[int] = 292) -> ParsedLayout:
    """Parse VegFru: ``vegfru_list/vegfru_train.txt`` (database) and ``vegfru_test.txt`` (query).

    The lists contain 0-based class ids and no names, so names come from the
    image folders (``veg200_images/<class>/``, ``fru92_images/<class>/``).
    Class ``k`` gets the name of its images' parent folder when all its
    images share one and no other class uses it. If any class fails this,
    every class is named ``class_<k>``. ``num_classes=None`` takes the
    largest listed id + 1. ``vegfru_val.txt`` is not used.
    """
    info = VEGFRU_LAYOUT
    root = locate_root(info, root)
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"vegfru: num_classes must be a positive integer or None, got {num_classes!r}")

    splits = {}
    for split_name, relative_list in (
        ("database", "vegfru_list/vegfru_train.txt"),
        ("query", "vegfru_list/vegfru_test.txt"),
    ):
        list_path = root / relative_list
        items = []
        for line_number, (line,) in read_fields(info, root, relative_list, 1, "<image path> <class id>"):
            fields = line.rsplit(None, 1)
            if len(fields) != 2:
                raise DatasetError(
                    f"{info.name}: line {line_number} of {list_path} is {line!r}, expected '<image path> <class id>'"
                )
            items.append((fields[0], parse_int(info, list_path, line_number, fields[1], "class id")))
        splits[split_name] = items

    all_items = splits["database"] + splits["query"]
    if num_classes is None:
        num_classes = max(label for _, label in all_items) + 1
    class_names = _names_from_folders(all_items, num_classes)
    return ParsedLayout(
        info, root, splits["query"], splits["database"], class_names,
        query_source="vegfru_list/vegfru_test.txt", database_source="vegfru_list/vegfru_train.txt",
    )


def _names_from_folders(items: List[Tuple[str, int]], num_classes: int) -> List[str]:
    folders: Dict[int, set] = {}
    for path, label in items:
        folders.setdefault(label, set()).add(Path(path).parent.name)
    fallback = [f"class_{class_id}" for class_id in range(num_classes)]
    if set(folders) != set(range(num_classes)) or any(len(found) != 1 for found in folders.values()):
        logger.info("vegfru: classes do not map one-to-one to image folders, naming them class_<id>")
        return fallback

    names = [next(iter(folders[class_id])) for class_id in range(num_classes)]
    if "" in names or len(set(names)) != len(names):
        logger.info("vegfru: image folder names are empty or shared by classes, naming classes class_<id>")
        return fallback
    return names


# --------------------------------------------------------------------------- folder


def _list_images(folder: Path) -> List[str]:
    """Return the image files under ``folder`` (recursively, hidden entries skipped), sorted, relative to it."""
    found = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(directory, name), folder))
    return found


def parse_folder(root: Path) -> ParsedLayout:
    """Parse ``<root>/train/<class>/*`` (database) and ``<root>/test/<class>/*`` (query).

    Class names are the sorted union of the class folder names of both
    splits. Image extensions are matched case-insensitively (``.JPG`` counts);
    other files are ignored. A class folder with no train images fails the
    check that every class has database images.
    """
    info = FOLDER_LAYOUT
    root = locate_root(info, root)
    split_dirs = {"database": "train", "query": "test"}
    for split_dir in split_dirs.values():
        if not (root / split_dir).is_dir():
            raise DatasetNotFoundError(
                f"{info.name}: folder {split_dir}/ not found under root {root}. "
                f"The folder layout is:\n{info.describe()}"
            )

    class_names = sorted({
        entry.name
        for split_dir in split_dirs.values()
        for entry in (root / split_dir).iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    })
    splits = {}
    for split_name, split_dir in split_dirs.items():
        loose = [entry.name for entry in (root / split_dir).iterdir() if entry.is_file()]
        if loose:
            logger.warning(
                "%s: ignoring %d files directly in %s (first: %s); images must be in a class folder",
                info.name, len(loose), root / split_dir, sorted(loose)[0],
            )
        items = []
        for class_id, name in enumerate(class_names):
            class_dir = root / split_dir / name
            if class_dir.is_dir():
                items.extend((f"{split_dir}/{name}/{file}", class_id) for file in _list_images(class_dir))
        splits[split_name] = items
    return ParsedLayout(
        info, root, splits["query"], splits["database"], class_names,
        query_source="test/", database_source="train/",
    )


# --------------------------------------------------------------------------- csv

CSV_SPLITS = {"train": "database", "database": "database", "test": "query", "query": "query"}


def parse_csv(root: Path, num_classes: Optional[int] = None) -> ParsedLayout:
    """Parse a CSV manifest with columns ``path,label,split`` (other columns are ignored).

    ``root`` is the CSV file or a folder containing ``manifest.csv``. Paths
    are relative to the CSV's folder or absolute. Split values (any case) are
    ``train``/``database`` or ``test``/``query``. When every label is an
    integer, labels are class ids named ``class_<id>``, and there are
    ``num_classes`` classes (None: largest id + 1). Otherwise labels are class
    names, numbered in sorted name order.
    """
    info = CSV_LAYOUT
    root = Path(root)
    if root.is_dir():
        csv_path = require_file(info, root, "manifest.csv")
    elif root.is_file():
        csv_path = root
    else:
        raise DatasetNotFoundError(
            f"{info.name}: {root} is neither a CSV file nor a folder containing manifest.csv. "
            f"The manifest layout is:\n{info.describe()}"
        )
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"csv: num_classes must be a positive integer or None, got {num_classes!r}")

    rows = _read_csv_rows(info, csv_path)
    labels = [label for _, _, label, _ in rows]
    if all(_is_integer(label) for label in labels):
        ids = [int(label) for label in labels]
        count = num_classes if num_classes is not None else max(ids) + 1
        class_names = [f"class_{class_id}" for class_id in range(count)]
        label_ids = ids
    else:
        if num_classes is not None:
            raise ValueError(
                f"csv: num_classes={num_classes} applies only to integer labels, but {csv_path} has "
                f"class names such as {next(label for label in labels if not _is_integer(label))!r}"
            )
        class_names = sorted(set(labels))
        index = {name: class_id for class_id, name in enumerate(class_names)}
        label_ids = [index[label] for label in labels]

    splits: Dict[str, List[Tuple[str, int]]] = {"query": [], "database": []}
    for (_, path, _, split_name), label_id in zip(rows, label_ids):
        splits[split_name].append((path, label_id))
    source = str(csv_path.name)
    return ParsedLayout(
        info, csv_path.parent, splits["query"], splits["database"], class_names,
        query_source=f"{source} (split test/query)", database_source=f"{source} (split train/database)",
        extra={"manifest": str(csv_path)},
    )


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _read_csv_rows(info: LayoutInfo, csv_path: Path) -> List[Tuple[int, str, str, str]]:
    """Return ``(line number, path, label, split)`` rows, with split mapped to "query" or "database"."""
    rows = []
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [name for name in ("path", "label", "split") if name not in columns]
        if missing:
            raise DatasetError(
                f"{info.name}: {csv_path} lacks the column(s) {', '.join(missing)}; its header is "
                f"{reader.fieldnames}, expected 'path,label,split'"
            )
        reader.fieldnames = columns
        for record in reader:
            values = {key: (record.get(key) or "").strip() for key in ("path", "label", "split")}
            if not any(values.values()):
                continue
            line_number = reader.line_num
            split_name = CSV_SPLITS.get(values["split"].lower())
            if split_name is None:
                raise DatasetError(
                    f"{info.name}: line {line_number} of {csv_path} has split {values['split']!r}; "
                    f"expected train or database (database split), test or query (query split)"
                )
            if not values["path"] or not values["label"]:
                raise DatasetError(
                    f"{info.name}: line {line_number} of {csv_path} has an empty path or label: {record}"
                )
            rows.append((line_number, values["path"], values["label"], split_name))
    if not rows:
        raise DatasetError(f"{info.name}: {csv_path} has a header but no rows")
    return rows


# --------------------------------------------------------------------------- registered builders

RootPath = Union[str, Path]


@register_dataset("cub-2011")
def build_cub(root: RootPath, verify_images: str = "header", skip_bad_images: bool = False) -> DatasetSplits:
    """Load CUB-200-2011 (200 classes; database 5,994 / query 5,794 in the official split)."""
    return assemble_splits(parse_cub_style(CUB_LAYOUT, Path(root)), verify_images, skip_bad_images)


@register_dataset("nabirds")
def build_nabirds(root: RootPath, verify_images: str = "header", skip_bad_images: bool = False) -> DatasetSplits:
    """Load NABirds (555 classes, ids mapped to 0..554 in increasing id order)."""
    return assemble_splits(parse_cub_style(NABIRDS_LAYOUT, Path(root)), verify_images, skip_bad_images)


@register_dataset("aircraft")
def build_aircraft(root: RootPath, verify_images: str = "header", skip_bad_images: bool = False) -> DatasetSplits:
    """Load FGVC-Aircraft (100 variants; database = trainval, query = test)."""
    return assemble_splits(parse_aircraft(Path(root)), verify_images, skip_bad_images)


@register_dataset("food101")
def build_food101(root: RootPath, verify_images: str = "header", skip_bad_images: bool = False) -> DatasetSplits:
    """Load Food-101 (101 classes named by their display names)."""
    return assemble_splits(parse_food101(Path(root)), verify_images, skip_bad_images)


@register_dataset("vegfru")
def build_vegfru(
    root: RootPath,
    verify_images: str = "header",
    skip_bad_images: bool = False,
    num_classes: Optional[int] = 292,
) -> DatasetSplits:
    """Load VegFru (292 classes; database = train list, query = test list)."""
    return assemble_splits(parse_vegfru(Path(root), num_classes), verify_images, skip_bad_images)


@register_dataset("folder")
def build_folder(root: RootPath, verify_images: str = "header", skip_bad_images: bool = False) -> DatasetSplits:
    """Load a ``train/<class>/``, ``test/<class>/`` image folder tree."""
    return assemble_splits(parse_folder(Path(root)), verify_images, skip_bad_images)


@register_dataset("csv")
def build_csv(
    root: RootPath,
    verify_images: str = "header",
    skip_bad_images: bool = False,
    num_classes: Optional[int] = None,
) -> DatasetSplits:
    """Load the images listed in a ``path,label,split`` CSV manifest."""
    return assemble_splits(parse_csv(Path(root), num_classes), verify_images, skip_bad_images)
