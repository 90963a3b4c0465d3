"""The semicon-run command line: flag mapping, errors, and a train then --arch test round trip."""

import contextlib
import io
import json
import logging
import re
import shutil

import pytest
import yaml
from conftest import TINY_TRAINING, TINY_TYPEFACES

from semicon_core import cli
from semicon_core.params import resolve_params

MAP_LINE = re.compile(r"^(\d+) bits: mAP ([0-9.]+)$", re.MULTILINE)

# TrainParams fields of TINY_TRAINING that have a flag. The others are passed as -p NAME VALUE.
FLAG_OF_FIELD = {
    "backbone": "--backbone",
    "pretrained": "--pretrained",
    "image_size": "--image-size",
    "code_lengths": "--code-length",
    "max_iter": "--max-iter",
    "max_epoch": "--max-epoch",
    "num_samples": "--num-samples",
    "batch_size": "--batch-size",
    "optimizer": "--optim",
    "lr": "--lr",
    "lr_step": "--lr-step",
    "num_workers": "--num-workers",
}


@pytest.fixture(autouse=True)
def remove_cli_log_handlers():
    """Drop the stderr handlers main() installs, so later tests do not write to a closed capture stream."""
    yield
    for name in ("", "papermill"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, cli._LogHandler)]:
            logger.removeHandler(handler)
    logging.getLogger("papermill").propagate = True


def parse_overrides(argv):
    parser = cli.build_parser()
    return cli.train_overrides(parser.parse_args(argv), parser)


def training_argv(settings):
    """Turn a dict of TrainParams values into command-line flags and -p pairs."""
    argv = []
    for field, value in settings.items():
        if field in FLAG_OF_FIELD:
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            argv += [FLAG_OF_FIELD[field], text]
        else:
            argv += ["-p", field, json.dumps(value)]
    return argv


def printed_maps(text):
    return {int(bits): float(value) for bits, value in MAP_LINE.findall(text)}


# --------------------------------------------------------------------------- flag mapping


@pytest.mark.parametrize("argv, field, expected", [
    (["--root", "/data/CUB_200_2011"], "root", "/data/CUB_200_2011"),
    (["--max-epoch", "30"], "max_epoch", 30),
    (["--max-iter", "40"], "max_iter", 40),
    (["--batch-size", "16"], "batch_size", 16),
    (["--code-length", "12,24,32,48"], "code_lengths", [12, 24, 32, 48]),
    (["--lr", "2.5e-4"], "lr", 2.5e-4),
    (["--wd", "1e-4"], "weight_decay", 1e-4),
    (["--optim", "SGD"], "optimizer", "SGD"),
    (["--optim", "adam"], "optimizer", "Adam"),
    (["--lr-step", "40"], "lr_step", [40]),
    (["--lr-step", "30,45"], "lr_step", [30, 45]),
    (["--num-samples", "2000"], "num_samples", 2000),
    (["--momen", "0.91"], "momentum", 0.91),
    (["--gamma", "200"], "gamma", 200.0),
    (["--topk", "100"], "topk", 100),
    (["--topk", "-1"], "topk", cli.WHOLE_RANKING),
    (["--arch", "baseline"], "arch", "baseline"),
    (["--num-workers", "4"], "num_workers", 4),
    (["--backbone", "resnet18"], "backbone", "resnet18"),
    (["--pretrained", "none"], "pretrained", "none"),
    (["--image-size", "64"], "image_size", 64),
    (["-p", "seed", "3"], "seed", 3),
    (["-p", "data_options", '{"image_size": 32}'], "data_options", {"image_size": 32}),
    (["-p", "code_lengths", "[6, 12]"], "code_lengths", [6, 12]),
    (["-p", "topk", "null"], "topk", cli.WHOLE_RANKING),
])
def test_flag_sets_one_field(argv, field, expected):
    assert parse_overrides(argv) == {field: expected}


def test_flags_left_out_set_nothing():
    assert parse_overrides([]) == {}
    assert parse_overrides(["--dataset", "cub-2011", "--info", "run-a"]) == {}


def test_info_names_the_run():
    args = cli.build_parser().parse_args(["--info", "CUB-SEMICON"])
    assert args.run_name == "CUB-SEMICON"
    assert cli.build_parser().parse_args(["--run-name", "other"]).run_name == "other"


def test_published_command_resolves():
    argv = ("--dataset cub-2011 --root /data/cub --max-epoch 3 --arch semicon --batch-size 8 --max-iter 4 "
            "--code-length 12,48 --lr 1e-3 --wd 5e-4 --optim Adam --lr-step 2 --num-samples 100 "
            "--info CUB-SEMICON --momen 0.8 --gamma 100 --topk 50 --num-workers 2").split()
    params = resolve_params("cub-2011", parse_overrides(argv))
    assert params.root == "/data/cub"
    assert (params.max_epoch, params.max_iter, params.batch_size, params.num_samples) == (3, 4, 8, 100)
    assert params.code_lengths == [12, 48]
    assert params.lr == pytest.approx(1e-3)
    assert params.weight_decay == pytest.approx(5e-4)
    assert params.optimizer == "Adam"
    assert params.lr_step == [2]
    assert params.momentum == pytest.approx(0.8)
    assert params.gamma == pytest.approx(100.0)
    assert params.topk == 50
    assert params.num_workers == 2
    assert params.arch == "semicon"


def test_flags_left_out_keep_yaml_values():
    yaml_values = resolve_params("cub-2011")
    params = resolve_params("cub-2011", parse_overrides(["--max-iter", "3"]))
    assert params.max_iter == 3
    assert params.lr == yaml_values.lr
    assert params.code_lengths == yaml_values.code_lengths


def test_topk_minus_one_overrides_yaml_topk(tmp_path):
    (tmp_path / "demo.yaml").write_text("topk: 100\n")
    assert resolve_params("demo", parse_overrides([]), params_dir=tmp_path).topk == 100
    assert resolve_params("demo", parse_overrides(["--topk", "-1"]), params_dir=tmp_path).topk is None


def test_gpu_without_cuda_warns_and_uses_auto(monkeypatch, caplog):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="semicon_core.cli"):
        overrides = parse_overrides(["--gpu", "0"])
    assert overrides == {"device": "auto"}
    assert "CUDA is not available" in caplog.text


def test_gpu_with_cuda_selects_cuda(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    assert parse_overrides(["--gpu", "1"]) == {"device": "cuda"}


def test_gpu_index_out_of_range(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    with pytest.raises(SystemExit) as raised:
        parse_overrides(["--gpu", "2"])
    assert raised.value.code == 2
    assert "CUDA has 2 visible device(s)" in capsys.readouterr().err


def test_kernel_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert cli.kernel_visible_devices(1) == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert cli.kernel_visible_devices(1) == "5"


# --------------------------------------------------------------------------- rejected command lines


@pytest.mark.parametrize("argv, message", [
    (["--bogus", "1"], "unrecognized arguments: --bogus"),
    (["--max", "3"], "unrecognized arguments: --max"),
    (["--code", "12"], "unrecognized arguments: --code"),
    (["--topk", "0"], "--topk"),
    (["--topk", "-2"], "--topk"),
    (["--code-length", "12,x"], "integers separated by commas"),
    (["--optim", "RMSprop"], "expected one of SGD, Adam"),
    (["--gpu", "-1"], "GPU index >= 0"),
    (["--arch", "resnet"], "invalid choice"),
])
def test_invalid_command_line_exits_2(argv, message, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["-p", "learning_rate", "0.1"], "-p learning_rate: unknown parameter"),
    (["-p", "dataset", "cub-2011"], "use --dataset"),
    (["--lr", "0.1", "-p", "lr", "0.2"], "already set by --lr"),
    (["-p", "seed", "1", "-p", "seed", "2"], "already set by -p"),
])
def test_invalid_param_pair_exits_2(argv, message, capsys):
    with pytest.raises(SystemExit) as raised:
        parse_overrides(argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_invalid_value_exits_2_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["--dataset", "typefaces", "--max-iter", "0", "--outputs-dir", str(tmp_path)])
    assert raised.value.code == 2
    assert "max_iter: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "typefaces").exists()


def test_unknown_dataset_exits_2(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["--dataset", "imagenet"])
    assert raised.value.code == 2
    assert "unknown dataset" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--nesterov"], ["--pretrain"], ["--num-query", "1000"], ["--lambd-sp", "0.1"],
                                  ["--save_ckpt", "checkpoints/"], ["--num_classes", "200"]])
def test_ignored_release_flag_warns(flag, caplog):
    args = cli.build_parser().parse_args(flag)
    with caplog.at_level(logging.WARNING, logger="semicon_core.cli"):
        ignored = cli.warn_ignored_flags(args)
    assert ignored == [flag[0]]
    assert f"{flag[0]} is accepted for compatibility with the authors' run.py and ignored" in caplog.text
    assert cli.train_overrides(args, cli.build_parser()) == {}


def test_momentum_with_adam_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="semicon_core.cli"), pytest.raises(SystemExit):
        # The invalid run name stops main() after the parameter checks, before any training.
        cli.main(["--optim", "Adam", "--momen", "0.9", "--info", "a/b", "--outputs-dir", str(tmp_path)])
    assert "--momen has no effect" in caplog.text


# --------------------------------------------------------------------------- failures of a run


def test_notebook_error_is_reported(tmp_path, monkeypatch, caplog):
    from papermill.exceptions import PapermillExecutionError

    def fail(*args, **kwargs):
        raise PapermillExecutionError(3, 3, "splits = run.load_data()", "DatasetNotFoundError",
                                      "typefaces: root /missing not found", [])

    monkeypatch.setattr("papermill.execute_notebook", fail)
    code = cli.main(["--dataset", "typefaces", "--info", "broken", "--outputs-dir", str(tmp_path)])
    assert code == 1
    assert "DatasetNotFoundError: typefaces: root /missing not found" in caplog.text
    assert str(tmp_path / "typefaces" / "broken" / "train.ipynb") in caplog.text


def test_existing_run_folder_not_overwritten(tmp_path, caplog):
    run_dir = tmp_path / "typefaces" / "taken"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text("{}")
    code = cli.main(["--dataset", "typefaces", "--info", "taken", "--outputs-dir", str(tmp_path)])
    assert code == 1
    assert "already exists" in caplog.text
    assert "taken-2" in caplog.text
    assert (run_dir / "metrics.json").read_text() == "{}"


def test_test_mode_needs_info(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["--arch", "test"])
    assert raised.value.code == 2
    assert "--arch test needs --info" in capsys.readouterr().err


def test_test_mode_missing_run(tmp_path, caplog):
    code = cli.main(["--dataset", "typefaces", "--arch", "test", "--info", "absent", "--outputs-dir", str(tmp_path)])
    assert code == 1
    assert str(tmp_path / "typefaces" / "absent") in caplog.text
    assert "Train it with: semicon-run --dataset typefaces --info absent" in caplog.text


# --------------------------------------------------------------------------- train, then --arch test


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, typefaces_root):
    """Train a tiny run through main(); return (outputs folder, run folder, printed stdout)."""
    outputs = tmp_path_factory.mktemp("cli-outputs")
    settings = {**TINY_TRAINING, "max_iter": 1, "num_samples": 24}
    argv = ["--dataset", "typefaces", "--root", str(typefaces_root), "--info", "cli", "--outputs-dir", str(outputs),
            "-p", "data_options", json.dumps(TINY_TYPEFACES), *training_argv(settings)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(argv)
    assert code == 0
    return outputs, outputs / "typefaces" / "cli", stdout.getvalue(), settings


def evaluate(outputs, *extra):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["--dataset", "typefaces", "--arch", "test", "--info", "cli", "--outputs-dir", str(outputs),
                         *extra])
    return code, stdout.getvalue()


def final_maps(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {int(bits): entry["final_map"] for bits, entry in metrics["code_lengths"].items()}


def test_training_writes_run_folder(cli_run):
    _, run_dir, _, settings = cli_run
    assert (run_dir / "train.ipynb").is_file()
    assert (run_dir / "checkpoint_6bits.pt").is_file()
    assert (run_dir / "checkpoint_12bits.pt").is_file()
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    for field, value in settings.items():
        assert params[field] == value, field
    assert params["data_options"] == TINY_TYPEFACES


def test_training_prints_final_map(cli_run):
    _, run_dir, stdout, _ = cli_run
    printed = printed_maps(stdout)
    expected = final_maps(run_dir)
    assert sorted(printed) == [6, 12]
    for bits, value in expected.items():
        assert printed[bits] == pytest.approx(value, abs=1e-6)
    assert f"run folder: {run_dir}" in stdout
    assert "--arch test --info cli" in stdout


def test_test_mode_reproduces_final_map(cli_run, caplog):
    outputs, run_dir, train_stdout, _ = cli_run
    with caplog.at_level(logging.WARNING, logger="semicon_core.cli"):
        code, stdout = evaluate(outputs)
    assert code == 0
    printed = printed_maps(stdout)
    assert sorted(printed) == [6, 12]
    for bits, value in final_maps(run_dir).items():
        assert printed[bits] == pytest.approx(value, abs=1e-6)
    assert "differs" not in caplog.text
    # Training and evaluation print the same mAP lines.
    assert MAP_LINE.findall(stdout) == MAP_LINE.findall(train_stdout)


def test_test_mode_selected_code_length(cli_run):
    outputs, _, _, _ = cli_run
    code, stdout = evaluate(outputs, "--code-length", "12")
    assert code == 0
    assert sorted(printed_maps(stdout)) == [12]


def test_test_mode_missing_checkpoint(cli_run, caplog):
    outputs, run_dir, _, _ = cli_run
    code, _ = evaluate(outputs, "--code-length", "24")
    assert code == 1
    assert str(run_dir / "checkpoint_24bits.pt") in caplog.text
    assert "--code-length 24" in caplog.text


def test_test_mode_topk_flag(cli_run, caplog):
    outputs, _, _, _ = cli_run
    with caplog.at_level(logging.INFO, logger="semicon_core.cli"):
        code, stdout = evaluate(outputs, "--topk", "5", "--lr", "0.5")
    assert code == 0
    assert "first 5 items" in stdout
    assert "not compared" in caplog.text
    assert "these flags have no effect: --lr" in caplog.text


def test_test_mode_warns_on_mismatch(cli_run, tmp_path, caplog):
    outputs, run_dir, _, _ = cli_run
    copy = tmp_path / "typefaces" / "cli"
    shutil.copytree(run_dir, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["code_lengths"]["12"]["final_map"] += 0.01
    (copy / "metrics.json").write_text(json.dumps(metrics))
    with caplog.at_level(logging.WARNING, logger="semicon_core.cli"):
        code, _ = evaluate(tmp_path, "--code-length", "12")
    assert code == 0
    assert "12 bits: recomputed mAP" in caplog.text
    assert "differs from the recorded final_map" in caplog.text
