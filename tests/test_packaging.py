"""Packaging files agree with each other."""

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_matches_pyproject():
    project = _pyproject()["project"]
    expected = set(project["dependencies"])
    expected |= set(project["optional-dependencies"]["dev"])
    expected |= set(project["optional-dependencies"]["lab"])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    assert len(pip_sections) == 1
    listed = {line for line in pip_sections[0] if not line.startswith("-e")}
    assert listed == expected


def test_params_files_load():
    from semicon_core.params import resolve_params

    names = sorted(path.stem for path in (ROOT / "params").glob("*.yaml"))
    assert "typefaces" in names
    for name in names:
        params = resolve_params(name)
        assert params.dataset == name
        assert params.code_lengths


def test_ci_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script


NOTEBOOK_PARAMETERS = {
    "train.ipynb": ("dataset", "root", "code_lengths", "run_name", "outputs_dir", "progress", "max_iter", "lr"),
    "evaluate.ipynb": ("run_dir", "dataset", "run_name", "code_lengths", "topk", "tie_policy", "database_protocols"),
    "attention.ipynb": ("run_dir", "code_length", "num_images", "split", "overlay_alpha", "image_indices", "progress"),
    "explore.ipynb": ("dataset", "root", "data_options", "samples_per_class", "max_classes_in_grid", "scan",
                      "outputs_dir"),
}


@pytest.mark.parametrize("name", sorted(NOTEBOOK_PARAMETERS))
def test_notebook_committed_clean(name):
    """Each notebook has one tagged parameters cell naming its parameters, and no stored outputs."""
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    for parameter in NOTEBOOK_PARAMETERS[name]:
        assert f"{parameter} = " in tagged[0].source
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


def test_every_notebook_checked():
    assert sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb")) == sorted(NOTEBOOK_PARAMETERS)
