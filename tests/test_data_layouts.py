"""Dataset layout loaders, checked on tiny on-disk replicas of each layout built in tmp_path."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semicon_core.data import build_splits, load_rgb
from semicon_core.data.errors import BadImageError, DatasetError, DatasetNotFoundError

# --------------------------------------------------------------------------- image writers


def write_image(path: Path, mode: str = "RGB", value: int = 128) -> Path:
    """Write a small image in ``mode``; the format follows the file extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = (8, 6)
    if mode == "RGB":
        image = Image.new("RGB", size, (value, 255 - value, 40))
    elif mode == "L":
        image = Image.new("L", size, value)
    elif mode == "CMYK":
        image = Image.new("CMYK", size, (0, 255, 255, 0))  # pure red
    elif mode == "P":
        image = Image.new("P", size, 0)
        image.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
        image.putpixel((0, 0), 1)
    elif mode == "RGBA":
        image = Image.new("RGBA", size, (0, 255, 0, 255))
        image.putpixel((0, 0), (0, 255, 0, 0))  # fully transparent pixel
    elif mode == "I;16":
        array = np.zeros((size[1], size[0]), dtype=np.uint16)
        array[0, 0] = 65535
        array[0, 1] = 32768
        image = Image.fromarray(array)
    else:
        raise ValueError(mode)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    image.save(path, fmt)
    return path


def write_truncated_jpeg(path: Path) -> Path:
    """Write a JPEG whose header is intact but whose second half is cut off."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# --------------------------------------------------------------------------- replicas

# (image id, class id, is_train) of the CUB replica: 3 classes, 5 database and 3 query images.
CUB_ITEMS = [(1, 1, 1), (2, 1, 1), (3, 1, 0), (4, 2, 1), (5, 2, 0), (6, 3, 1), (7, 3, 1), (8, 3, 0)]
CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def make_cub(root: Path, with_classes: bool = True) -> Path:
    image_lines, label_lines, split_lines = [], [], []
    for image_id, class_id, is_train in CUB_ITEMS:
        relative = f"{CUB_CLASSES[class_id - 1]}/img_{image_id:04d}.jpg"
        write_image(root / "images" / relative, value=image_id * 20)
        image_lines.append(f"{image_id} {relative}")
        label_lines.append(f"{image_id} {class_id}")
        split_lines.append(f"{image_id} {is_train}")
    write_lines(root / "images.txt", image_lines)
    write_lines(root / "image_class_labels.txt", label_lines)
    write_lines(root / "train_test_split.txt", split_lines)
    if with_classes:
        write_lines(root / "classes.txt", [f"{i} {name}" for i, name in enumerate(CUB_CLASSES, start=1)])
    return root


# NABirds replica: class ids 817, 295, 1010 (non-contiguous); classes.txt also lists parent categories.
NABIRDS_ITEMS = [
    ("0000139e-21dc-4d0c-bfe1-4cae3c85c829", 817, 1),
    ("0000d9fc-4e02-4c06-a0af-a55cfb16b12b", 817, 0),
    ("00019306-9d83-4334-b255-a447742edce3", 295, 1),
    ("0001afd4-99a1-4a67-b940-d419413e23b3", 295, 0),
    ("000332b8-997c-4540-9647-2f0a8495aecf", 1010, 1),
    ("000343bd-5215-49ba-ab9c-7c97a70ac1a5", 1010, 1),
    ("0004ff8d-0cc8-47ee-94ba-43352a8b9eb4", 1010, 0),
]
NABIRDS_CLASSES = {
    0: "Birds",
    1: "Ducks, Geese, and Swans",
    295: "Oldsquaw",
    817: "Oak Titmouse",
    1010: "Yellow-rumped Warbler (Myrtle)",
}


def make_nabirds(root: Path) -> Path:
    image_lines, label_lines, split_lines = [], [], []
    for image_id, class_id, is_train in NABIRDS_ITEMS:
        relative = f"{class_id:04d}/{image_id.replace('-', '')}.jpg"
        write_image(root / "images" / relative)
        image_lines.append(f"{image_id} {relative}")
        label_lines.append(f"{image_id} {class_id}")
        split_lines.append(f"{image_id} {is_train}")
    write_lines(root / "images.txt", image_lines)
    write_lines(root / "image_class_labels.txt", label_lines)
    write_lines(root / "train_test_split.txt", split_lines)
    write_lines(root / "classes.txt", [f"{i} {name}" for i, name in NABIRDS_CLASSES.items()])
    write_lines(root / "hierarchy.txt", ["295 1", "817 0", "1010 0"])
    return root


# Aircraft replica: variants in file order (not sorted), names with a slash and spaces.
AIRCRAFT_VARIANTS = ["707-320", "F/A-18", "Cessna 172"]
AIRCRAFT_TRAINVAL = [("1025794", "707-320"), ("1340192", "F/A-18"), ("0056978", "Cessna 172"), ("0062765", "F/A-18")]
AIRCRAFT_TEST = [("1514522", "Cessna 172"), ("0814316", "707-320")]


def make_aircraft(root: Path) -> Path:
    data = root / "fgvc-aircraft-2013b" / "data"
    write_lines(data / "variants.txt", AIRCRAFT_VARIANTS)
    write_lines(data / "images_variant_trainval.txt", [f"{i} {v}" for i, v in AIRCRAFT_TRAINVAL])
    write_lines(data / "images_variant_test.txt", [f"{i} {v}" for i, v in AIRCRAFT_TEST])
    for image_id, _ in AIRCRAFT_TRAINVAL + AIRCRAFT_TEST:
        write_image(data / "images" / f"{image_id}.jpg")
    return root


FOOD_LABELS = ["Apple pie", "Baby back ribs", "Eggs benedict"]
FOOD_TRAIN = ["apple_pie/1005649", "baby_back_ribs/1008", "eggs_benedict/2001", "eggs_benedict/2002"]
FOOD_TEST = ["apple_pie/1011328", "eggs_benedict/3003"]


def make_food101(root: Path) -> Path:
    write_lines(root / "meta" / "labels.txt", FOOD_LABELS)
    write_lines(root / "meta" / "classes.txt", [name.lower().replace(" ", "_") for name in FOOD_LABELS])
    write_lines(root / "meta" / "train.txt", FOOD_TRAIN)
    write_lines(root / "meta" / "test.txt", FOOD_TEST)
    for entry in FOOD_TRAIN + FOOD_TEST:
        write_image(root / "images" / f"{entry}.jpg")
    return root


VEGFRU_TRAIN = [
    ("veg200_images/bitter_gourd/v_01_01_0001.jpg", 0),
    ("veg200_images/bitter_gourd/v_01_01_0002.jpg", 0),
    ("veg200_images/lotus_root/v_02_03_0001.jpg", 1),
    ("fru92_images/blood_orange/f_01_01_0001.jpg", 2),
]
VEGFRU_TEST = [
    ("veg200_images/lotus_root/v_02_03_0100.jpg", 1),
    ("fru92_images/blood_orange/f_01_01_0100.jpg", 2),
    ("veg200_images/bitter_gourd/v_01_01_0100.jpg", 0),
]


def make_vegfru(root: Path, train=VEGFRU_TRAIN, test=VEGFRU_TEST) -> Path:
    write_lines(root / "vegfru_list" / "vegfru_train.txt", [f"{p} {c}" for p, c in train])
    write_lines(root / "vegfru_list" / "vegfru_test.txt", [f"{p} {c}" for p, c in test])
    write_lines(root / "vegfru_list" / "vegfru_val.txt", ["veg200_images/not_used.jpg 0"])
    for path, _ in train + test:
        write_image(root / path)
    return root


def make_folder(root: Path) -> Path:
    """Two classes; the images cover every mode load_rgb converts, plus an upper-case .JPG."""
    write_image(root / "train" / "cat" / "a.jpg")
    write_image(root / "train" / "cat" / "B.JPG")
    write_image(root / "train" / "cat" / "gray.png", "L")
    write_image(root / "train" / "cat" / "nested" / "c.jpeg")
    write_image(root / "train" / "dog" / "cmyk.jpg", "CMYK")
    write_image(root / "train" / "dog" / "palette.png", "P")
    write_image(root / "test" / "cat" / "rgba.PNG", "RGBA")
    write_image(root / "test" / "dog" / "deep.png", "I;16")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "dog" / ".hidden.jpg").write_bytes(b"")
    return root


def make_csv(root: Path, rows, name: str = "manifest.csv") -> Path:
    """Write a manifest; each row is (path, label, split) and every relative path gets a real image."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["path,label,split"]
    for path, label, split in rows:
        if not Path(path).is_absolute():
            write_image(root / path)
        lines.append(f"{path},{label},{split}")
    write_lines(root / name, lines)
    return root / name


def relative_paths(split, root: Path):
    return [Path(path).relative_to(root).as_posix() for path in split.paths]


# --------------------------------------------------------------------------- replicas load exactly


def test_cub_replica(tmp_path):
    root = make_cub(tmp_path / "cub")
    splits = build_splits("cub-2011", root)

    assert len(splits.database) == 5
    assert len(splits.query) == 3
    assert splits.class_names == CUB_CLASSES
    assert splits.database.labels.tolist() == [0, 0, 1, 2, 2]
    assert splits.query.labels.tolist() == [0, 1, 2]
    assert relative_paths(splits.query, root)[0] == f"images/{CUB_CLASSES[0]}/img_0003.jpg"
    assert splits.extra["original_class_ids"] == [1, 2, 3]
    assert splits.extra["skipped_images"] == []
    assert splits.extra["overlap_count"] == 0


def test_cub_without_classes_txt(tmp_path):
    splits = build_splits("cub-2011", make_cub(tmp_path / "cub", with_classes=False))

    assert splits.class_names == ["class_1", "class_2", "class_3"]


def test_cub_root_above_archive_folder(tmp_path):
    make_cub(tmp_path / "CUB_200_2011")

    splits = build_splits("cub-2011", tmp_path)

    assert Path(splits.root) == tmp_path / "CUB_200_2011"
    assert len(splits.database) == 5


def test_nabirds_noncontiguous_ids(tmp_path):
    root = make_nabirds(tmp_path / "nabirds")
    splits = build_splits("nabirds", root)

    assert splits.class_names == ["Oldsquaw", "Oak Titmouse", "Yellow-rumped Warbler (Myrtle)"]
    assert splits.extra["original_class_ids"] == [295, 817, 1010]
    # images.txt order: 817 train, 817 test, 295 train, 295 test, 1010 train x2, 1010 test
    assert splits.database.labels.tolist() == [1, 0, 2, 2]
    assert splits.query.labels.tolist() == [1, 0, 2]


def test_aircraft_variant_names(tmp_path):
    root = make_aircraft(tmp_path / "aircraft")
    splits = build_splits("aircraft", root)

    assert splits.class_names == AIRCRAFT_VARIANTS
    assert splits.database.labels.tolist() == [0, 1, 2, 1]
    assert splits.query.labels.tolist() == [2, 0]
    assert relative_paths(splits.query, root) == [
        "fgvc-aircraft-2013b/data/images/1514522.jpg",
        "fgvc-aircraft-2013b/data/images/0814316.jpg",
    ]


def test_aircraft_root_at_data_folder(tmp_path):
    make_aircraft(tmp_path / "aircraft")

    splits = build_splits("aircraft", tmp_path / "aircraft" / "fgvc-aircraft-2013b")

    assert len(splits.database) == 4
    assert len(splits.query) == 2


def test_food101_display_names(tmp_path):
    root = make_food101(tmp_path / "food101")
    splits = build_splits("food101", root)

    assert splits.class_names == FOOD_LABELS
    assert splits.database.labels.tolist() == [0, 1, 2, 2]
    assert splits.query.labels.tolist() == [0, 2]
    assert relative_paths(splits.query, root) == ["images/apple_pie/1011328.jpg", "images/eggs_benedict/3003.jpg"]


def test_vegfru_labels_and_names(tmp_path):
    root = make_vegfru(tmp_path / "vegfru")
    splits = build_splits("vegfru", root, num_classes=3)

    assert splits.class_names == ["bitter_gourd", "lotus_root", "blood_orange"]
    assert splits.database.labels.tolist() == [0, 0, 1, 2]
    assert splits.query.labels.tolist() == [1, 2, 0]
    assert relative_paths(splits.database, root)[0] == VEGFRU_TRAIN[0][0]


def test_vegfru_infers_class_count(tmp_path):
    splits = build_splits("vegfru", make_vegfru(tmp_path / "vegfru"), num_classes=None)

    assert splits.num_classes == 3


def test_vegfru_shared_folder_names_fall_back(tmp_path):
    train = [("a/x/1.jpg", 0), ("b/x/2.jpg", 1)]
    test = [("a/x/3.jpg", 0)]
    splits = build_splits("vegfru", make_vegfru(tmp_path / "vegfru", train, test), num_classes=2)

    assert splits.class_names == ["class_0", "class_1"]


def test_folder_layout(tmp_path):
    root = make_folder(tmp_path / "folder")
    splits = build_splits("folder", root)

    assert splits.class_names == ["cat", "dog"]
    assert relative_paths(splits.database, root) == [
        "train/cat/B.JPG",
        "train/cat/a.jpg",
        "train/cat/gray.png",
        "train/cat/nested/c.jpeg",
        "train/dog/cmyk.jpg",
        "train/dog/palette.png",
    ]
    assert splits.database.labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert relative_paths(splits.query, root) == ["test/cat/rgba.PNG", "test/dog/deep.png"]
    assert splits.query.labels.tolist() == [0, 1]


def test_csv_named_labels(tmp_path):
    outside = write_image(tmp_path / "elsewhere" / "far.png")
    rows = [
        ("img/z1.jpg", "zebra", "train"),
        ("img/a1.jpg", "ant", "database"),
        ("img/a2.jpg", "ant", "Train"),
        (str(outside), "zebra", "test"),
        ("img/a3.jpg", "ant", "query"),
    ]
    csv_path = make_csv(tmp_path / "manifest_dir", rows)

    for root in (csv_path, csv_path.parent):
        splits = build_splits("csv", root)

        assert splits.class_names == ["ant", "zebra"]
        assert splits.database.labels.tolist() == [1, 0, 0]
        assert splits.query.labels.tolist() == [1, 0]
        assert splits.query.paths[0] == str(outside)
        assert Path(splits.database.paths[0]) == csv_path.parent / "img" / "z1.jpg"


def test_csv_integer_labels(tmp_path):
    rows = [("a.png", 1, "train"), ("b.png", 0, "train"), ("c.png", 2, "train"), ("d.png", 2, "test")]
    csv_path = make_csv(tmp_path / "data", rows, name="list.csv")

    splits = build_splits("csv", csv_path)

    assert splits.class_names == ["class_0", "class_1", "class_2"]
    assert splits.database.labels.tolist() == [1, 0, 2]
    assert splits.query.labels.tolist() == [2]


def test_manifest_hash_independent_of_root(tmp_path):
    first = make_cub(tmp_path / "one")
    second = tmp_path / "two"
    shutil.copytree(first, second)

    assert build_splits("cub-2011", first).manifest_hash() == build_splits("cub-2011", second).manifest_hash()


def test_build_logs_summary(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="semicon_core.data"):
        splits = build_splits("food101", make_food101(tmp_path / "food101"))

    summary = [record.getMessage() for record in caplog.records if "manifest sha256" in record.getMessage()]
    assert len(summary) == 1
    assert "2 query / 4 database images, 3 classes" in summary[0]
    assert splits.manifest_hash()[:16] in summary[0]


# --------------------------------------------------------------------------- load_rgb on every mode

# file name in the folder replica -> (source mode, expected RGB of pixel (0, 0), expected RGB of pixel (1, 0))
LOAD_CASES = {
    "train/cat/gray.png": ("L", (128, 128, 128), (128, 128, 128)),
    "train/dog/cmyk.jpg": ("CMYK", (255, 0, 0), (255, 0, 0)),
    "train/dog/palette.png": ("P", (255, 0, 0), (0, 0, 255)),
    "test/cat/rgba.PNG": ("RGBA", (255, 255, 255), (0, 255, 0)),
    "test/dog/deep.png": ("I;16", (255, 255, 255), (127, 127, 127)),
}


@pytest.mark.parametrize("name", sorted(LOAD_CASES))
def test_load_rgb_modes(tmp_path, name):
    source_mode, first_pixel, second_pixel = LOAD_CASES[name]
    path = make_folder(tmp_path / "folder") / name
    with Image.open(path) as raw:
        assert raw.mode == source_mode

    image = load_rgb(str(path))
    array = np.asarray(image)

    assert image.mode == "RGB"
    assert array.dtype == np.uint8
    assert array.shape == (6, 8, 3)
    # JPEG is lossy, so compare with a tolerance.
    np.testing.assert_allclose(array[0, 0], first_pixel, atol=3)
    np.testing.assert_allclose(array[0, 1], second_pixel, atol=3)


# --------------------------------------------------------------------------- bad input

EXPECTED_MARKER_FILES = {
    "cub-2011": "image_class_labels.txt",
    "nabirds": "train_test_split.txt",
    "aircraft": "images_variant_trainval.txt",
    "food101": "meta/labels.txt",
    "vegfru": "vegfru_list/vegfru_train.txt",
    "folder": "train/<class name>/",
    "csv": "manifest.csv",
}


@pytest.mark.parametrize("dataset", sorted(EXPECTED_MARKER_FILES))
def test_missing_root_lists_expected_files(tmp_path, dataset):
    missing = tmp_path / "does-not-exist"

    with pytest.raises(FileNotFoundError) as raised:
        build_splits(dataset, missing)

    message = str(raised.value)
    assert isinstance(raised.value, DatasetNotFoundError)
    assert dataset in message
    assert str(missing) in message
    assert EXPECTED_MARKER_FILES[dataset] in message


@pytest.mark.parametrize(
    "dataset, make, relative",
    [
        ("cub-2011", make_cub, "train_test_split.txt"),
        ("nabirds", make_nabirds, "image_class_labels.txt"),
        ("aircraft", make_aircraft, "fgvc-aircraft-2013b/data/images_variant_test.txt"),
        ("food101", make_food101, "meta/test.txt"),
        ("vegfru", make_vegfru, "vegfru_list/vegfru_test.txt"),
    ],
)
def test_missing_metadata_file(tmp_path, dataset, make, relative):
    root = make(tmp_path / dataset)
    (root / relative).unlink()

    with pytest.raises(DatasetNotFoundError) as raised:
        build_splits(dataset, root)

    message = str(raised.value)
    assert dataset in message
    assert relative in message
    assert str(root) in message


def test_folder_missing_test_folder(tmp_path):
    root = make_folder(tmp_path / "folder")
    shutil.rmtree(root / "test")

    with pytest.raises(DatasetNotFoundError, match=r"folder: folder test/ not found"):
        build_splits("folder", root)


def test_missing_listed_images(tmp_path):
    root = make_food101(tmp_path / "food101")
    (root / "images" / "eggs_benedict" / "2001.jpg").unlink()
    (root / "images" / "eggs_benedict" / "2002.jpg").unlink()

    with pytest.raises(DatasetNotFoundError) as raised:
        build_splits("food101", root)

    message = str(raised.value)
    assert "food101" in message
    assert "2 of the 4 database images" in message
    assert "meta/train.txt" in message
    assert "eggs_benedict/2001.jpg" in message
    assert "eggs_benedict/2002.jpg" in message


def test_unreadable_image_raises(tmp_path):
    root = make_cub(tmp_path / "cub")
    broken = root / "images" / CUB_CLASSES[1] / "img_0004.jpg"
    broken.write_bytes(b"this is not a JPEG")

    with pytest.raises(BadImageError) as raised:
        build_splits("cub-2011", root)

    message = str(raised.value)
    assert "cub-2011" in message
    assert "img_0004.jpg" in message
    assert "skip_bad_images=True" in message


def test_truncated_image_needs_full_check(tmp_path):
    root = make_folder(tmp_path / "folder")
    write_truncated_jpeg(root / "train" / "dog" / "cut.jpg")

    header_checked = build_splits("folder", root, verify_images="header")
    assert len(header_checked.database) == 7

    with pytest.raises(BadImageError) as raised:
        build_splits("folder", root, verify_images="full")
    assert "cut.jpg" in str(raised.value)
    assert "truncated" in str(raised.value)


def test_skip_bad_images_records_list(tmp_path, caplog):
    root = make_folder(tmp_path / "folder")
    cut = write_truncated_jpeg(root / "train" / "dog" / "cut.jpg")
    empty = root / "test" / "cat" / "empty.jpg"
    empty.write_bytes(b"")

    with caplog.at_level(logging.WARNING, logger="semicon_core.data"):
        splits = build_splits("folder", root, verify_images="full", skip_bad_images=True)

    skipped = splits.extra["skipped_images"]
    assert sorted(record["path"] for record in skipped) == sorted([str(cut), str(empty)])
    assert {record["split"] for record in skipped} == {"query", "database"}
    assert all(record["error"] for record in skipped)
    assert len(splits.database) == 6
    assert len(splits.query) == 2
    assert str(cut) not in splits.database.paths
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("skipped 2 unreadable images" in message for message in warnings)
    assert splits.summary()["num_skipped_images"] == 2


def test_verify_none_opens_nothing(tmp_path):
    root = make_folder(tmp_path / "folder")
    (root / "train" / "cat" / "a.jpg").write_bytes(b"garbage")

    splits = build_splits("folder", root, verify_images="none")

    assert len(splits.database) == 6


def test_invalid_verify_mode(tmp_path):
    with pytest.raises(ValueError, match="verify_images"):
        build_splits("folder", make_folder(tmp_path / "folder"), verify_images="quick")


def test_unknown_option_raises_type_error(tmp_path):
    with pytest.raises(TypeError):
        build_splits("cub-2011", make_cub(tmp_path / "cub"), num_classes=3)


def test_vegfru_label_out_of_range(tmp_path):
    train = VEGFRU_TRAIN + [("fru92_images/blood_orange/f_01_01_0002.jpg", 7)]
    root = make_vegfru(tmp_path / "vegfru", train=train)

    with pytest.raises(DatasetError) as raised:
        build_splits("vegfru", root, num_classes=3)

    message = str(raised.value)
    assert "vegfru" in message
    assert "label 7" in message
    assert "f_01_01_0002.jpg" in message
    assert "vegfru_train.txt" in message


def test_vegfru_default_class_count_on_subset(tmp_path):
    with pytest.raises(DatasetError, match=r"289 class\(es\) have no database images"):
        build_splits("vegfru", make_vegfru(tmp_path / "vegfru"))


def test_class_count_differs_from_release(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="semicon_core.data"):
        build_splits("cub-2011", make_cub(tmp_path / "cub"))

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("found 3 classes" in message and "official release has 200" in message for message in warnings)


def test_vegfru_non_integer_label(tmp_path):
    root = make_vegfru(tmp_path / "vegfru")
    write_lines(root / "vegfru_list" / "vegfru_test.txt", ["veg200_images/lotus_root/v_02_03_0100.jpg one"])

    with pytest.raises(DatasetError, match=r"line 1 of .*vegfru_test.txt has class id 'one'"):
        build_splits("vegfru", root, num_classes=3)


@pytest.mark.parametrize(
    "rows, num_classes, expected",
    [
        ([("a.png", -1, "train"), ("b.png", 0, "test")], None, "label -1"),
        ([("a.png", 0, "train"), ("b.png", 5, "test")], 3, "label 5"),
        ([("a.png", "ant", "train"), ("b.png", "ant", "val")], None, "split 'val'"),
        ([("a.png", "ant", "train"), ("b.png", "ant", "test")], 2, "num_classes=2 applies only to integer labels"),
    ],
)
def test_csv_bad_rows(tmp_path, rows, num_classes, expected):
    csv_path = make_csv(tmp_path / "data", rows)

    with pytest.raises(ValueError) as raised:
        build_splits("csv", csv_path, num_classes=num_classes)

    assert "csv" in str(raised.value)
    assert expected in str(raised.value)


def test_csv_missing_column(tmp_path):
    csv_path = tmp_path / "manifest.csv"
    csv_path.write_text("file,label,split\na.png,ant,train\n")

    with pytest.raises(DatasetError, match="lacks the column"):
        build_splits("csv", csv_path)


def test_class_without_database_images(tmp_path):
    root = make_folder(tmp_path / "folder")
    write_image(root / "test" / "bird" / "only_query.jpg")

    with pytest.raises(ValueError) as raised:
        build_splits("folder", root)

    message = str(raised.value)
    assert "folder" in message
    assert "'bird'" in message
    assert "no database images" in message


def test_overlap_warns_and_counts(tmp_path, caplog):
    rows = [("a.png", "ant", "train"), ("b.png", "bee", "train"), ("a.png", "ant", "test"), ("c.png", "bee", "test")]
    csv_path = make_csv(tmp_path / "data", rows)

    with caplog.at_level(logging.WARNING, logger="semicon_core.data"):
        splits = build_splits("csv", csv_path)

    assert splits.extra["overlap_count"] == 1
    assert splits.summary()["overlap_count"] == 1
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("1 images are in both the query and the database split" in message for message in warnings)


def test_malformed_metadata_line(tmp_path):
    root = make_cub(tmp_path / "cub")
    with open(root / "train_test_split.txt", "a") as handle:
        handle.write("9\n")

    with pytest.raises(DatasetError) as raised:
        build_splits("cub-2011", root)

    message = str(raised.value)
    assert "cub-2011" in message
    assert "line 9" in message
    assert "train_test_split.txt" in message


def test_cub_metadata_ids_disagree(tmp_path):
    root = make_cub(tmp_path / "cub")
    write_lines(root / "image_class_labels.txt", [f"{i} {c}" for i, c, _ in CUB_ITEMS[:-1]])

    with pytest.raises(DatasetError, match=r"image_class_labels.txt .* does not match images.txt"):
        build_splits("cub-2011", root)


def test_aircraft_unknown_variant(tmp_path):
    root = make_aircraft(tmp_path / "aircraft")
    test_list = root / "fgvc-aircraft-2013b" / "data" / "images_variant_test.txt"
    write_lines(test_list, ["1514522 Cessna 999"])

    with pytest.raises(DatasetError, match=r"aircraft: line 1 of .*images_variant_test.txt names variant 'Cessna 999'"):
        build_splits("aircraft", root)


def test_food101_unknown_class_key(tmp_path):
    root = make_food101(tmp_path / "food101")
    write_lines(root / "meta" / "test.txt", ["apple_pies/1011328"])

    with pytest.raises(DatasetError, match=r"food101: line 1 of .*test.txt is 'apple_pies/1011328'"):
        build_splits("food101", root)


def test_nabirds_class_missing_from_classes_txt(tmp_path):
    root = make_nabirds(tmp_path / "nabirds")
    write_lines(root / "classes.txt", ["295 Oldsquaw", "817 Oak Titmouse"])

    with pytest.raises(DatasetError, match=r"class ids \[1010\]"):
        build_splits("nabirds", root)
