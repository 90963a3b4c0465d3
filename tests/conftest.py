"""Shared fixtures: a tiny typefaces cache and tiny training settings."""

from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent

# Small enough for a 2-core CPU: 21 classes, 4 database and 2 query images each, 32 px.
TINY_TYPEFACES = {"image_size": 32, "train_per_class": 4, "test_per_class": 2, "seed": 0}
TINY_TRAINING = {
    "backbone": "resnet18",
    "pretrained": "none",
    "image_size": 32,
    "code_lengths": [6, 12],
    "max_iter": 2,
    "max_epoch": 1,
    "num_samples": 40,
    "batch_size": 8,
    "eval_batch_size": 32,
    "optimizer": "Adam",
    "lr": 1e-3,
    "lr_step": [1],
    "augmentation": "light",
    "num_workers": 0,
    "device": "cpu",
}


@pytest.fixture(scope="session")
def typefaces_root(tmp_path_factory):
    """A typefaces cache folder shared by the whole test session."""
    from semicon_core.data import build_splits

    root = tmp_path_factory.mktemp("typefaces")
    build_splits("typefaces", root, **TINY_TYPEFACES)
    return root


def run_train_notebook(outputs, dataset, run_name, **parameters):
    """Execute notebooks/train.ipynb with papermill into ``outputs/<dataset>/<run_name>``; return that folder."""
    import papermill

    run_dir = outputs / dataset / run_name
    run_dir.mkdir(parents=True)
    papermill.execute_notebook(
        str(REPOSITORY / "notebooks" / "train.ipynb"),
        str(run_dir / "train.ipynb"),
        parameters={
            "dataset": dataset,
            "run_name": run_name,
            "outputs_dir": str(outputs),
            "progress": "text",
            **parameters,
        },
        kernel_name="python3",
        cwd=str(outputs),
        progress_bar=False,
    )
    return run_dir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, typefaces_root):
    """A finished tiny training run executed through the train notebook; returns its folder."""
    outputs = tmp_path_factory.mktemp("outputs")
    return run_train_notebook(
        outputs, "typefaces", "tiny", root=str(typefaces_root), data_options=TINY_TYPEFACES, **TINY_TRAINING,
    )
