"""Dataset exploration helpers and the explore notebook."""

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from conftest import TINY_TYPEFACES
from semicon_core import exploration
from semicon_core.data import build_splits

REPOSITORY = Path(__file__).resolve().parent.parent


def write_image(path, size, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


@pytest.fixture
def folder_dataset(tmp_path):
    """A "folder" dataset with two classes, one copy across splits, one non-image file and one truncated PNG.

    Database (train/): a/0..2 at 40x20, b/0..1 at 20x40, b/broken.png (not an image).
    Query (test/): a/copy.png (same bytes as train/a/0.png), b/truncated.png (header only).
    """
    root = tmp_path / "folder-data"
    for index in range(3):
        write_image(root / "train" / "a" / f"{index}.png", (40, 20), 10 * index)
    for index in range(2):
        write_image(root / "train" / "b" / f"{index}.png", (20, 40), 100 + 10 * index)
    (root / "train" / "b" / "broken.png").write_bytes(b"this is not an image")
    (root / "test" / "a").mkdir(parents=True)
    shutil.copyfile(root / "train" / "a" / "0.png", root / "test" / "a" / "copy.png")
    write_image(root / "test" / "b" / "full.png", (64, 64), 200)
    data = (root / "test" / "b" / "full.png").read_bytes()
    (root / "test" / "b" / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "test" / "b" / "full.png").unlink()
    return root


def test_unreadable_file_listed_not_fatal(folder_dataset):
    splits = exploration.load_splits("folder", folder_dataset, {})
    assert len(splits.database) == 5
    unreadable = exploration.scan_unreadable(splits, "header")
    loader_rows = unreadable[unreadable["check"] == "loader"]
    assert list(loader_rows["path"].map(lambda path: Path(path).name)) == ["broken.png"]
    assert list(loader_rows["split"]) == ["database"]


def test_full_scan_finds_truncated_file(folder_dataset):
    splits = exploration.load_splits("folder", folder_dataset, {"verify_images": "header"})
    header_scan = exploration.scan_unreadable(splits, "header")
    assert "truncated.png" not in set(header_scan["path"].map(lambda path: Path(path).name))
    full_scan = exploration.scan_unreadable(splits, "full")
    found = full_scan[full_scan["check"] == "full"]
    assert list(found["path"].map(lambda path: Path(path).name)) == ["truncated.png"]
    assert list(found["split"]) == ["query"]


def test_scan_rejects_unknown_mode(folder_dataset):
    splits = exploration.load_splits("folder", folder_dataset, {})
    with pytest.raises(ValueError, match="scan mode"):
        exploration.scan_unreadable(splits, "deep")


def test_overlap_by_content(folder_dataset):
    splits = exploration.load_splits("folder", folder_dataset, {})
    overlap = exploration.find_split_overlap(splits)
    assert overlap["same_path"] == []
    assert len(overlap["same_content"]) == 1
    record = overlap["same_content"][0]
    assert Path(record["query"]).name == "copy.png"
    assert Path(record["database"]).as_posix().endswith("train/a/0.png")
    assert overlap["hashed_queries"] == 2


def test_overlap_by_path(folder_dataset):
    splits = exploration.load_splits("folder", folder_dataset, {})
    splits.query.paths[1] = splits.database.paths[4]
    overlap = exploration.find_split_overlap(splits)
    assert overlap["same_path"] == [splits.database.paths[4]]


def test_overlap_hash_sample_note(folder_dataset):
    splits = exploration.load_splits("folder", folder_dataset, {})
    overlap = exploration.find_split_overlap(splits, max_hashed_queries=1)
    assert overlap["hashed_queries"] == 1
    assert "sample of 1 of 2 query images" in overlap["note"]


def test_image_sizes_from_headers(folder_dataset):
    splits = exploration.load_splits("folder", folder_dataset, {})
    sizes = exploration.read_image_sizes(exploration.sample_items(splits))
    database = sizes[sizes["split"] == "database"]
    database = database.set_index(database["path"].map(lambda path: "/".join(Path(path).parts[-2:])))
    assert database.loc["a/0.png", "width"] == 40
    assert database.loc["a/0.png", "aspect_ratio"] == 2.0
    assert database.loc["b/1.png", "aspect_ratio"] == 0.5
    assert sizes["error"].isna().all()
    summary = exploration.size_summary(sizes)
    assert summary.loc["width max", "database"] == 40


def test_sample_items_subsamples_with_note(typefaces_root):
    splits = build_splits("typefaces", typefaces_root, **TINY_TYPEFACES)
    items = exploration.sample_items(splits, max_images=10, seed=3)
    assert len(items) == 10
    assert items.attrs["total"] == 126
    assert "sample of 10 of 126 images" in exploration.sample_note(items)
    again = exploration.sample_items(splits, max_images=10, seed=3)
    assert list(again["path"]) == list(items["path"])
    everything = exploration.sample_items(splits, max_images=1000)
    assert exploration.sample_note(everything) == "sizes read from all 126 images"


def test_split_and_class_tables(typefaces_root):
    splits = build_splits("typefaces", typefaces_root, **TINY_TYPEFACES)
    table = exploration.split_size_table(splits)
    assert table.loc["query", "images"] == 42
    assert table.loc["database", "images"] == 84
    assert table.loc["database", "min per class"] == 4
    counts = exploration.class_count_table(splits)
    assert len(counts) == 2 * 21
    assert counts.groupby("split")["images"].sum().to_dict() == {"database": 84, "query": 42}


def test_data_options_from_params_file():
    from semicon_core.params import resolve_params

    assert exploration.resolve_data_options("typefaces") == resolve_params("typefaces").data_options
    assert exploration.resolve_data_options("typefaces", {"image_size": 16}) == {"image_size": 16}


def test_explore_notebook(tmp_path, typefaces_root):
    import papermill

    outputs = tmp_path / "outputs"
    executed = tmp_path / "explore.ipynb"
    papermill.execute_notebook(
        str(REPOSITORY / "notebooks" / "explore.ipynb"),
        str(executed),
        parameters={
            "dataset": "typefaces",
            "root": str(typefaces_root),
            "data_options": TINY_TYPEFACES,
            "samples_per_class": 2,
            "max_classes_in_grid": 3,
            "outputs_dir": str(outputs),
        },
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    figures = outputs / "typefaces" / "explore"
    for name in ("class_counts.png", "image_sizes.png", "samples_database.png", "samples_query.png"):
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    summary = json.loads((figures / "explore_summary.json").read_text())
    assert summary["num_query"] == 42
    assert summary["num_database"] == 84
    assert summary["overlap"]["same_path"] == []
    assert summary["unreadable"]["files"] == []
    assert summary["image_sizes"]["images_read"] == 126
    notebook = nbformat.read(executed, as_version=4)
    text = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "explored typefaces: 42 query / 84 database images, 21 classes, 0 overlapping, 0 unreadable" in text


def test_sample_grid_layout(typefaces_root):
    splits = build_splits("typefaces", typefaces_root, **TINY_TYPEFACES)
    with pytest.raises(ValueError, match="at least 1"):
        exploration.plot_sample_grid(splits.query, samples_per_class=0)
    figure = exploration.plot_sample_grid(splits.query, samples_per_class=3, max_classes=2)
    axes = np.asarray(figure.axes).reshape(2, 3)
    # 2 query images per class, so the third cell of each row stays empty.
    assert [len(axis.images) for axis in axes.ravel()] == [1, 1, 0, 1, 1, 0]
    assert axes[0, 0].get_ylabel() == splits.class_names[0]
    assert axes[1, 0].get_ylabel() == splits.class_names[1]
