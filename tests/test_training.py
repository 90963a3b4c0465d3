"""ADSH training loop on tiny typefaces data: sampling, errors and records."""

import logging

import numpy as np
import pytest
import torch
from conftest import TINY_TRAINING, TINY_TYPEFACES

from semicon_core.data import DatasetSplits, Split, build_splits
from semicon_core.params import resolve_params
from semicon_core.training import encode, select_device, train_code_length


@pytest.fixture(scope="module")
def tiny_splits(typefaces_root):
    return build_splits("typefaces", typefaces_root, **TINY_TYPEFACES)


def _params(**changes):
    values = {**TINY_TRAINING, "code_lengths": [6], "max_iter": 1, **changes}
    return resolve_params("typefaces", values)


def test_oversized_sample_uses_whole_database(tiny_splits, caplog):
    params = _params(num_samples=10_000)
    with caplog.at_level(logging.WARNING, logger="semicon_core.training"):
        _, result = train_code_length(params, tiny_splits, 6, torch.device("cpu"), progress="none")
    assert "samples the whole database" in caplog.text
    assert result.status == "complete"
    assert result.database_codes.shape == (len(tiny_splits.database), 6)


def test_codes_are_plus_minus_one(tiny_splits):
    _, result = train_code_length(_params(), tiny_splits, 6, torch.device("cpu"), progress="none")
    assert set(result.database_codes.unique().tolist()) <= {-1.0, 1.0}
    assert set(result.query_codes.unique().tolist()) <= {-1.0, 1.0}
    assert result.query_codes.shape == (len(tiny_splits.query), 6)


def test_single_class_database_rejected(tiny_splits):
    database = tiny_splits.database
    keep = np.flatnonzero(database.labels == 0)
    single = DatasetSplits(
        "typefaces", tiny_splits.root, tiny_splits.query,
        Split("database", [database.paths[i] for i in keep], database.labels[keep], database.class_names),
    )
    with pytest.raises(ValueError, match="single class"):
        train_code_length(_params(), single, 6, torch.device("cpu"), progress="none")


def test_same_seed_same_result(tiny_splits):
    first = train_code_length(_params(), tiny_splits, 6, torch.device("cpu"), progress="none")[1]
    second = train_code_length(_params(), tiny_splits, 6, torch.device("cpu"), progress="none")[1]
    assert torch.equal(first.database_codes, second.database_codes)
    assert first.iterations[0]["loss"] == pytest.approx(second.iterations[0]["loss"], rel=1e-5)


def test_image_statistics_codes_ignore_batching(tiny_splits):
    from semicon_core.data import ImageDataset, build_transform
    from semicon_core.models import build_model

    model = build_model("semicon", 12, pretrained="none", backbone="resnet18", sem_statistics="image")
    query = ImageDataset(tiny_splits.query.paths, tiny_splits.query.labels, build_transform("eval", 32))
    whole = encode(model, query, torch.device("cpu"), batch_size=64, progress="none")
    small = encode(model, query, torch.device("cpu"), batch_size=5, progress="none")
    assert torch.equal(whole, small)


def test_cuda_request_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(RuntimeError, match="no GPU"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"


def test_run_records_skipped_images(tmp_path):
    import json

    from PIL import Image

    from semicon_core.experiment import TrainingRun

    root = tmp_path / "images"
    for split in ("train", "test"):
        for name in ("a", "b"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(2):
                Image.new("RGB", (16, 16), (index * 90, 30, 60)).save(folder / f"{index}.png")
    broken = root / "train" / "a" / "0.png"
    broken.write_bytes(broken.read_bytes()[:20])

    params = resolve_params("folder", {**TINY_TRAINING, "root": str(root),
                                       "data_options": {"verify_images": "full", "skip_bad_images": True}})
    run = TrainingRun(params, run_name="skipped", outputs_dir=tmp_path / "outputs", progress="none")
    splits = run.load_data()

    assert len(splits.database) == 3
    records = json.loads((run.directory / "skipped_images.json").read_text())
    assert [record["path"] for record in records] == [str(broken)]
    summary = json.loads((run.directory / "data_summary.json").read_text())
    assert summary["num_database"] == 3
    assert len(summary["manifest_sha256"]) == 64


def test_unknown_dataset_creates_no_folder(tmp_path):
    from semicon_core.experiment import TrainingRun

    params = resolve_params("nosuch", {**TINY_TRAINING})
    with pytest.raises(ValueError, match="unknown dataset 'nosuch'"):
        TrainingRun(params, run_name="never", outputs_dir=tmp_path)
    assert not (tmp_path / "nosuch").exists()


def test_failed_data_loading_marks_run(tmp_path):
    import json

    from semicon_core.experiment import TrainingRun

    params = resolve_params("folder", {**TINY_TRAINING, "root": str(tmp_path / "missing")})
    run = TrainingRun(params, run_name="broken", outputs_dir=tmp_path / "outputs", progress="none")
    with pytest.raises(FileNotFoundError):
        run.load_data()
    metrics = json.loads((run.directory / "metrics.json").read_text())
    assert metrics["status"] == "failed"
    assert "missing" in metrics["error"]
