"""The train notebook executed by papermill on tiny typefaces data."""

import json

import nbformat
import pytest
import torch

from semicon_core.models import build_model
from semicon_core.runs import load_checkpoint


def test_run_folder_contents(tiny_run):
    names = {path.name for path in tiny_run.iterdir()}
    for expected in ("params.yaml", "metrics.json", "data_summary.json", "curves.png", "train.ipynb",
                     "checkpoint_6bits.pt", "checkpoint_12bits.pt"):
        assert expected in names


def test_metrics_record_every_iteration(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert metrics["protocol"]["tie_policy"].startswith("stable")
    assert metrics["protocol"]["topk"] is None
    assert "learned codes B" in metrics["protocol"]["database"]
    for bits in ("6", "12"):
        entry = metrics["code_lengths"][bits]
        assert entry["status"] == "complete"
        assert [row["iteration"] for row in entry["iterations"]] == [1, 2]
        for row in entry["iterations"]:
            assert row["loss"] > 0
            assert 0 <= row["map"] <= 1
        assert entry["final_map"] == entry["iterations"][-1]["map"]
        assert entry["best_map"] == max(row["map"] for row in entry["iterations"])
        assert entry["best_map_selected_on"] == "query set (test split)"
        assert 0 < entry["random_baseline_map"] < 1
    assert metrics["timings"]["total_seconds"] > 0
    assert metrics["data"]["num_query"] == 42
    assert metrics["data"]["num_database"] == 84


def test_checkpoint_loads_and_rebuilds(tiny_run):
    checkpoint = load_checkpoint(tiny_run / "checkpoint_12bits.pt")
    assert checkpoint["code_length"] == 12
    codes = checkpoint["database_codes"]
    assert codes.shape == (84, 12)
    assert set(codes.unique().tolist()) <= {-1, 1}
    assert checkpoint["query_codes"].shape == (42, 12)
    assert checkpoint["query_labels"].dtype == torch.int64
    assert checkpoint["params"]["max_iter"] == 2
    assert "torch" in checkpoint["versions"]
    config = dict(checkpoint["model_config"])
    config.pop("pretrained", None)
    model = build_model(**config, pretrained="none")
    model.load_state_dict(checkpoint["model_state"], strict=True)


def test_checkpoint_reproduces_query_codes(tiny_run):
    """Query codes stored in the checkpoint come back from the saved weights."""
    from semicon_core.data import ImageDataset, build_splits, build_transform
    from semicon_core.training import encode

    checkpoint = load_checkpoint(tiny_run / "checkpoint_12bits.pt")
    params = checkpoint["params"]
    config = dict(checkpoint["model_config"])
    config.pop("pretrained", None)
    model = build_model(**config, pretrained="none")
    model.load_state_dict(checkpoint["model_state"])
    splits = build_splits("typefaces", params["root"], **params["data_options"])
    query = ImageDataset(splits.query.paths, splits.query.labels, build_transform("eval", params["image_size"]))
    codes = encode(model, query, torch.device("cpu"), batch_size=params["eval_batch_size"], progress="none")
    assert torch.equal(codes.to(torch.int8), checkpoint["query_codes"])


def test_executed_notebook_prints_map(tiny_run):
    notebook = nbformat.read(tiny_run / "train.ipynb", as_version=4)
    text = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "mAP 12 bits: final" in text


def test_existing_run_not_overwritten(tiny_run):
    from semicon_core.params import resolve_params
    from semicon_core.experiment import TrainingRun

    params = resolve_params("typefaces")
    with pytest.raises(FileExistsError, match="already exists"):
        TrainingRun(params, run_name="tiny", outputs_dir=tiny_run.parent.parent)
