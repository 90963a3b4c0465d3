"""The ADSH baseline trained by the train notebook on a generic image-folder dataset."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import TINY_TRAINING, run_train_notebook

from semicon_core.evaluation import mean_average_precision
from semicon_core.models import build_model
from semicon_core.runs import load_checkpoint

CLASSES = ("anemone", "bluebell", "crocus")
TRAIN_PER_CLASS = 4
TEST_PER_CLASS = 2
CODE_LENGTH = 8


def write_image(path, class_id, index):
    """Save a 40 px RGB image whose colour depends on the class, with per-image noise."""
    generator = np.random.default_rng(100 * class_id + index)
    colour = np.zeros(3)
    colour[class_id] = 200
    pixels = np.clip(colour + generator.normal(0, 30, size=(40, 40, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    """A folder-layout dataset: train/<class>/ and test/<class>/, PNG and JPEG files mixed."""
    root = tmp_path_factory.mktemp("folder-dataset")
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for class_id, name in enumerate(CLASSES):
            class_dir = root / split / name
            class_dir.mkdir(parents=True)
            for index in range(count):
                suffix = ".png" if index % 2 == 0 else ".JPG"
                write_image(class_dir / f"{split}_{index}{suffix}", class_id, index + (0 if split == "train" else 50))
    return root


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory, folder_root):
    """Execute the train notebook with arch baseline; return the run folder."""
    outputs = tmp_path_factory.mktemp("baseline-outputs")
    settings = {
        **TINY_TRAINING,
        "code_lengths": [CODE_LENGTH],
        "num_samples": 12,
        "batch_size": 4,
        "eval_batch_size": 16,
    }
    return run_train_notebook(outputs, "folder", "baseline", root=str(folder_root), arch="baseline", **settings)


def test_baseline_metrics(baseline_run):
    metrics = json.loads((baseline_run / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert metrics["arch"] == "baseline"
    assert metrics["dataset"] == "folder"
    assert metrics["data"]["num_classes"] == len(CLASSES)
    assert metrics["data"]["num_database"] == len(CLASSES) * TRAIN_PER_CLASS
    assert metrics["data"]["num_query"] == len(CLASSES) * TEST_PER_CLASS
    entry = metrics["code_lengths"][str(CODE_LENGTH)]
    assert entry["status"] == "complete"
    assert [row["iteration"] for row in entry["iterations"]] == [1, 2]
    assert 0 <= entry["final_map"] <= 1
    assert entry["final_map"] == entry["iterations"][-1]["map"]


def test_baseline_checkpoint(baseline_run):
    checkpoint = load_checkpoint(baseline_run / f"checkpoint_{CODE_LENGTH}bits.pt")
    assert checkpoint["model_config"]["arch"] == "baseline"
    assert checkpoint["model_config"]["backbone"] == "resnet18"
    assert checkpoint["params"]["arch"] == "baseline"
    assert checkpoint["code_length"] == CODE_LENGTH
    assert checkpoint["class_names"] == list(CLASSES)
    database_codes = checkpoint["database_codes"]
    assert database_codes.shape == (len(CLASSES) * TRAIN_PER_CLASS, CODE_LENGTH)
    assert set(database_codes.unique().tolist()) <= {-1, 1}
    assert checkpoint["query_codes"].shape == (len(CLASSES) * TEST_PER_CLASS, CODE_LENGTH)
    assert checkpoint["query_labels"].tolist() == [0, 0, 1, 1, 2, 2]


def test_baseline_checkpoint_rebuilds_and_scores(baseline_run):
    checkpoint = load_checkpoint(baseline_run / f"checkpoint_{CODE_LENGTH}bits.pt")
    config = dict(checkpoint["model_config"])
    config.pop("pretrained", None)
    model = build_model(**config, pretrained="none")
    model.load_state_dict(checkpoint["model_state"], strict=True)
    with torch.no_grad():
        output = model.eval()(torch.zeros(2, 3, 32, 32))
    assert output.shape == (2, CODE_LENGTH)

    value = mean_average_precision(checkpoint["query_codes"], checkpoint["database_codes"],
                                   checkpoint["query_labels"], checkpoint["database_labels"])
    assert value == pytest.approx(checkpoint["final_map"], abs=1e-6)
