"""Packaging files agree with each other."""

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

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
