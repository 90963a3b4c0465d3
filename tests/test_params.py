"""Parameter resolution: YAML values, overrides and validation errors."""

import pytest

from semicon_core.params import TrainParams, params_from_dict, resolve_params


@pytest.fixture
def params_dir(tmp_path):
    (tmp_path / "demo.yaml").write_text("max_iter: 7\ncode_lengths: [12, 48]\nlr: 1.0e-3\n")
    return tmp_path


def test_yaml_values_used(params_dir):
    params = resolve_params("demo", params_dir=params_dir)
    assert params.max_iter == 7
    assert params.code_lengths == [12, 48]
    assert params.lr == pytest.approx(1e-3)


def test_none_override_keeps_yaml(params_dir):
    params = resolve_params("demo", {"max_iter": None, "batch_size": 8}, params_dir=params_dir)
    assert params.max_iter == 7
    assert params.batch_size == 8


def test_string_overrides_are_coerced(params_dir):
    params = resolve_params("demo", {"code_lengths": "12,24", "max_iter": "3", "lr": "5e-4",
                                     "deterministic": "true", "topk": "none"}, params_dir=params_dir)
    assert params.code_lengths == [12, 24]
    assert params.max_iter == 3
    assert params.lr == pytest.approx(5e-4)
    assert params.deterministic is True
    assert params.topk is None


def test_unknown_yaml_key_rejected(tmp_path):
    (tmp_path / "bad.yaml").write_text("max_itr: 3\n")
    with pytest.raises(ValueError, match="max_itr"):
        resolve_params("bad", params_dir=tmp_path)


def test_unknown_override_rejected(params_dir):
    with pytest.raises(ValueError, match="learning_rate"):
        resolve_params("demo", {"learning_rate": 0.1}, params_dir=params_dir)


@pytest.mark.parametrize("name, value, words", [
    ("code_lengths", [4, 12], "code_lengths"),
    ("optimizer", "RMSprop", "optimizer"),
    ("max_iter", 0, "max_iter"),
    ("lr", -1.0, "lr"),
    ("batch_size", "many", "batch_size"),
    ("sem_statistics", "global", "sem_statistics"),
    ("topk", 0, "topk"),
])
def test_invalid_value_names_parameter(params_dir, name, value, words):
    with pytest.raises(ValueError, match=words):
        resolve_params("demo", {name: value}, params_dir=params_dir)


def test_round_trip_through_dict():
    params = TrainParams(code_lengths=[16], max_iter=2)
    assert params_from_dict(params.to_dict()) == params


def test_missing_file_uses_defaults(tmp_path, caplog):
    params = resolve_params("nothing-here", params_dir=tmp_path)
    assert params.max_iter == TrainParams().max_iter
    assert "no parameter file" in caplog.text


def test_data_options_text_read_as_yaml(params_dir):
    params = resolve_params("demo", {"data_options": "{image_size: 32, seed: 1}"}, params_dir=params_dir)
    assert params.data_options == {"image_size": 32, "seed": 1}


def test_data_options_text_not_mapping(params_dir):
    with pytest.raises(ValueError, match="data_options"):
        resolve_params("demo", {"data_options": "[1, 2]"}, params_dir=params_dir)
