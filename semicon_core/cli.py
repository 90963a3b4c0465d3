"""Command line ``semicon-run``: train through the train notebook, or re-evaluate a run.

The flags are those of the authors' ``run.py``, so a published command runs
unchanged, for example::

    semicon-run --dataset cub-2011 --root /data/CUB_200_2011 --gpu 0 --arch semicon \\
        --max-iter 40 --max-epoch 30 --batch-size 16 --code-length 12,24,32,48 \\
        --lr 2.5e-4 --wd 1e-4 --optim SGD --lr-step 40 --num-samples 2000 \\
        --momen 0.91 --info CUB-SEMICON

Training (``--arch semicon`` or ``--arch baseline``) executes
``notebooks/train.ipynb`` with papermill, saves the executed notebook in the run
folder ``<outputs>/<dataset>/<info>/`` and prints the final mAP per code length.
``--arch test --info NAME`` loads the run's checkpoints and recomputes the mAP
from the saved query codes and learned database codes. Every training flag left
out takes its value from ``params/<dataset>.yaml``.

Also runnable as ``python -m semicon_core.cli``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import yaml

from .params import CHOICES, FIELD_NAMES, resolve_params
from .paths import notebooks_dir, outputs_root
from .runs import checkpoint_path, create_run_directory, default_run_name, read_json, run_directory

logger = logging.getLogger(__name__)

PROG = "semicon-run"

# TrainParams coerces the string "none" for topk to None. A None override would
# mean "keep the YAML value" instead, so the whole ranking is requested this way.
WHOLE_RANKING = "none"

# Recomputed and recorded mAP may differ by float rounding only.
MAP_TOLERANCE = 1e-6

CHECKPOINT_NAME = re.compile(r"^checkpoint_(\d+)bits\.pt$")

# Flags of the authors' run.py (the public SEMICON release) that have no counterpart here.
# They are parsed so that old commands keep working, and each one given logs a warning.
# NOTE: the list is taken from a copy of run.py found in a public repository; flags that
# other versions of the release added are rejected as unknown.
IGNORED_RELEASE_FLAGS = (
    (("--num-query",), {"type": int}, "the query set is always the official test split of the dataset"),
    (("--save_ckpt", "--save-ckpt"), {}, "checkpoints are saved in the run folder (see --outputs-dir)"),
    (("--pretrain",), {"action": "store_true"},
     "ImageNet weights are selected with --pretrained (default from params/<dataset>.yaml)"),
    (("--nesterov",), {"action": "store_true"},
     "SGD here always uses Nesterov momentum, like the authors' SEMICON training"),
    (("--quan-loss",), {"action": "store_true"},
     "the quantization term is always in the loss, and --gamma sets its weight"),
    (("--align-step",), {"type": int}, "this workbench has no alignment step"),
    (("--lambd",), {"type": float}, "this workbench has no such loss weight"),
    (("--lambd-sp",), {"type": float}, "this workbench has no such loss weight"),
    (("--lambd-ch",), {"type": float}, "this workbench has no such loss weight"),
    (("--num_classes", "--num-classes"), {"type": int}, "the number of classes is read from the dataset"),
)

# Flags that --arch test uses. Every other training flag given with it is reported as ignored.
EVALUATION_DESTS = ("dataset", "arch", "run_name", "outputs_dir", "code_lengths", "topk", "quiet")


# --------------------------------------------------------------------------- parsing


def _int_list(text: str) -> List[int]:
    """Parse ``"12,24,32,48"`` (commas or spaces) into a list of integers."""
    parts = [part for part in text.replace(" ", ",").split(",") if part]
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, e.g. 12,24,32,48, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
    return values


def _topk(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or -1, got {text!r}") from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or -1 (whole ranking), got {value}")
    return value


def _gpu_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a GPU index such as 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a GPU index >= 0, got {value}")
    return value


def _optimizer(text: str) -> str:
    names = {name.lower(): name for name in CHOICES["optimizer"]}
    if text.lower() not in names:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(CHOICES['optimizer'])}, got {text!r}")
    return names[text.lower()]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each default, and name the YAML file for training flags that default to it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default:" in text:
            return text
        if action.default is None and action.dest in FIELD_NAMES:
            return text + " (default: from params/<dataset>.yaml)"
        if action.default is None or action.default is False:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser. Training flags default to None, so the YAML value applies."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train SEMICON or the ADSH baseline through notebooks/train.ipynb, "
                    "or recompute the mAP of a finished run (--arch test). Training flags "
                    "left out take their values from params/<dataset>.yaml.",
        epilog="Differences from the authors' run.py: --topk -1 ranks the whole database "
               "(the authors' version dropped the last item); without --gpu the device comes from the "
               "YAML file (auto = a GPU when torch sees one) instead of the CPU; an existing "
               "run folder is never overwritten.",
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )

    release = parser.add_argument_group("flags of the authors' run.py")
    release.add_argument("--dataset", default="typefaces",
                         help="dataset name, e.g. cub-2011, aircraft, food101, vegfru, nabirds, folder, csv, typefaces")
    release.add_argument("--root", dest="root",
                         help="dataset folder (default: root in params/<dataset>.yaml, else "
                              "$SEMICON_DATA_ROOT/<dataset> or <repository>/data/<dataset>)")
    release.add_argument("--arch", dest="arch", choices=("semicon", "baseline", "test"),
                         help="network to train, or 'test' to recompute the mAP of the run named by --info")
    release.add_argument("--info", "--run-name", dest="run_name", metavar="NAME",
                         help="run name: the run folder is <outputs>/<dataset>/NAME "
                              "(default when training: a time-stamped name such as run-20250101-120000)")
    release.add_argument("--code-length", dest="code_lengths", type=_int_list, metavar="K[,K...]",
                         help="code lengths in bits, e.g. 12,24,32,48, each trained from a fresh network")
    release.add_argument("--max-iter", dest="max_iter", type=int, metavar="N",
                         help="outer ADSH iterations per code length")
    release.add_argument("--max-epoch", dest="max_epoch", type=int, metavar="N",
                         help="epochs over the sampled images in each outer iteration")
    release.add_argument("--num-samples", dest="num_samples", type=int, metavar="N",
                         help="database images sampled in each outer iteration")
    release.add_argument("--batch-size", dest="batch_size", type=int, metavar="N", help="training batch size")
    release.add_argument("--lr", dest="lr", type=float, help="learning rate")
    release.add_argument("--wd", dest="weight_decay", type=float, metavar="WD", help="weight decay")
    release.add_argument("--optim", dest="optimizer", type=_optimizer, metavar="{SGD,Adam}",
                         help="optimizer (SGD always uses Nesterov momentum)")
    release.add_argument("--momen", dest="momentum", type=float, metavar="MOMENTUM",
                         help="SGD momentum (no effect with Adam)")
    release.add_argument("--lr-step", dest="lr_step", type=_int_list, metavar="T[,T...]",
                         help="outer iterations after which the learning rate is multiplied by lr_gamma")
    release.add_argument("--gamma", dest="gamma", type=float, help="weight of the quantization loss term")
    release.add_argument("--topk", dest="topk", type=_topk, metavar="TOPK",
                         help="mAP over the first TOPK database items; -1 ranks the whole database")
    release.add_argument("--gpu", type=_gpu_index, metavar="INDEX",
                         help="train on this GPU: device cuda, with CUDA_VISIBLE_DEVICES set for the notebook "
                              "kernel. Without CUDA a warning is logged and the device is 'auto' "
                              "(default: the device in params/<dataset>.yaml)")
    release.add_argument("--num-workers", dest="num_workers", type=int, metavar="N",
                         help="data loading worker processes")

    extras = parser.add_argument_group("workbench flags")
    extras.add_argument("--backbone", dest="backbone", choices=CHOICES["backbone"], help="ResNet backbone")
    extras.add_argument("--pretrained", dest="pretrained", metavar="WEIGHTS",
                        help="torchvision weights name (e.g. IMAGENET1K_V1), a weights file, or 'none'")
    extras.add_argument("--image-size", dest="image_size", type=int, metavar="PIXELS",
                        help="side of the network input in pixels")
    extras.add_argument("--outputs-dir", type=Path, metavar="DIR",
                        help="folder holding <dataset>/<run name>/ (default: $SEMICON_OUTPUTS or <repository>/outputs)")
    extras.add_argument("--params-dir", type=Path, metavar="DIR",
                        help="folder holding <dataset>.yaml (default: <repository>/params)")
    extras.add_argument("-p", "--param", dest="extra_params", nargs=2, action="append", metavar=("NAME", "VALUE"),
                        help="set any TrainParams field; VALUE is read as YAML, e.g. -p seed 1 or "
                             "-p data_options '{image_size: 32}' (repeatable)")
    extras.add_argument("-q", "--quiet", action="store_true",
                        help="log warnings and errors only, and do not stream the notebook's output")

    ignored = parser.add_argument_group(
        "accepted for compatibility with the authors' run.py and ignored (a warning gives the reason)")
    for option_strings, options, reason in IGNORED_RELEASE_FLAGS:
        if "action" not in options:
            options = {**options, "metavar": "VALUE"}
        ignored.add_argument(*option_strings, dest=_ignored_dest(option_strings[0]), default=None,
                             help=f"ignored: {reason}", **options)
    return parser


def _ignored_dest(option: str) -> str:
    return "ignored_" + option.lstrip("-").replace("-", "_")


def _option_names(parser: argparse.ArgumentParser) -> Dict[str, str]:
    """Map each argument's dest to its first option string, for messages."""
    return {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}


def _parse_value(text: str) -> Any:
    """Read a ``-p`` value as YAML (numbers, lists, mappings), keeping unparsable text as a string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def warn_ignored_flags(args: argparse.Namespace) -> List[str]:
    """Log a warning for each given flag of the authors' run.py that has no effect here, and return those flags."""
    ignored_options = []
    for option_strings, _, reason in IGNORED_RELEASE_FLAGS:
        if getattr(args, _ignored_dest(option_strings[0])) is not None:
            ignored_options.append(option_strings[0])
            logger.warning("%s is accepted for compatibility with the authors' run.py and ignored: %s",
                           option_strings[0], reason)
    return ignored_options


def gpu_device(index: Optional[int]) -> Optional[str]:
    """Map the authors' ``--gpu INDEX`` to a TrainParams device (None when the flag is absent).

    Returns ``"cuda"`` when CUDA is available and ``index`` is below
    ``torch.cuda.device_count()``. Without CUDA it logs a warning and returns
    ``"auto"``. Raises ``ValueError`` when ``index`` is out of range.
    """
    if index is None:
        return None
    import torch

    if not torch.cuda.is_available():
        logger.warning("--gpu %d: CUDA is not available, so training uses device 'auto' (the CPU here)", index)
        return "auto"
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"--gpu {index}: invalid index, CUDA has {count} visible device(s), numbered 0 to {count - 1}")
    return "cuda"


def kernel_visible_devices(index: int) -> str:
    """Return the ``CUDA_VISIBLE_DEVICES`` value that leaves only GPU ``index`` to the notebook kernel.

    When this process already has ``CUDA_VISIBLE_DEVICES``, ``index`` counts
    within that list, because torch numbers only the visible devices.
    """
    visible = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    if visible and index < len(visible):
        return visible[index]
    return str(index)


def train_overrides(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Dict[str, Any]:
    """Collect the TrainParams values set on the command line. Flags left out add no key.

    ``--topk -1`` becomes the whole ranking, ``--gpu`` becomes ``device`` (see
    :func:`gpu_device`) and ``-p NAME VALUE`` pairs are added last. Invalid
    names and a field set twice end the program through ``parser.error`` (exit code 2).
    """
    names = _option_names(parser)
    overrides: Dict[str, Any] = {}
    for field in FIELD_NAMES:
        value = getattr(args, field, None)
        if field == "dataset" or value is None or (field == "arch" and value == "test"):
            continue
        overrides[field] = WHOLE_RANKING if field == "topk" and value == -1 else value

    try:
        device = gpu_device(args.gpu)
    except ValueError as error:
        parser.error(str(error))
    if device is not None:
        overrides["device"] = device

    for name, text in args.extra_params or []:
        if name not in FIELD_NAMES:
            parser.error(f"-p {name}: unknown parameter. Valid names are {', '.join(FIELD_NAMES)}")
        if name == "dataset":
            parser.error("-p dataset: use --dataset to choose the dataset")
        if name in overrides:
            flag = names.get(name, "-p")
            if name == "device" and args.gpu is not None:
                flag = "--gpu"
            parser.error(f"-p {name}: the parameter is already set by {flag}, so give it only once")
        value = _parse_value(text)
        if name == "topk" and value is None:
            value = WHOLE_RANKING
        overrides[name] = value
    return overrides


# --------------------------------------------------------------------------- output


def format_map_table(run_dir: Path, maps: Dict[int, Optional[float]], topk: Optional[int]) -> str:
    """Return the mAP lines printed by both training and ``--arch test``, one per code length."""
    ranking = "whole ranking" if topk is None else f"first {topk} items"
    lines = [
        f"run folder: {run_dir}",
        f"mAP per code length (final iteration, database = learned codes B, {ranking}):",
    ]
    for code_length in sorted(maps):
        value = maps[code_length]
        text = "n/a" if value is None or math.isnan(value) else f"{value:.6f}"
        lines.append(f"{code_length} bits: mAP {text}")
    return "\n".join(lines)


@contextlib.contextmanager
def _environment_variable(name: str, value: Optional[str]) -> Iterator[None]:
    """Set an environment variable (inherited by the notebook kernel) for the duration of the block."""
    if value is None:
        yield
        return
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


# --------------------------------------------------------------------------- training


def train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the parameters, execute the train notebook and print the final mAP per code length."""
    from .data import available_datasets

    if args.dataset not in available_datasets():
        parser.error(f"--dataset {args.dataset}: unknown dataset. Valid names are {', '.join(available_datasets())}")
    overrides = train_overrides(args, parser)
    if overrides.get("root"):
        # The notebook kernel and later readers of params.yaml may run from another directory.
        overrides["root"] = str(Path(overrides["root"]).expanduser().absolute())
    try:
        params = resolve_params(args.dataset, overrides, params_dir=args.params_dir)
    except ValueError as error:
        parser.error(str(error))
    if args.momentum is not None and params.optimizer == "Adam":
        logger.warning("--momen has no effect: the optimizer is Adam, which has no momentum parameter")

    notebook = notebooks_dir() / "train.ipynb"
    if not notebook.is_file():
        logger.error("train notebook %s not found. Run semicon-run from a checkout of the workbench", notebook)
        return 1
    run_dir = _create_run_folder(args, parser)
    if run_dir is None:
        return 1

    parameters = {
        "dataset": args.dataset,
        "run_name": run_dir.name,
        "outputs_dir": str(run_dir.parent.parent),
        "params_dir": None if args.params_dir is None else str(Path(args.params_dir).expanduser().absolute()),
        "progress": "text",
        **overrides,
    }
    visible = None if args.gpu is None or params.device != "cuda" else kernel_visible_devices(args.gpu)
    logger.info("training %s on %s, code lengths %s, run folder %s",
                params.arch, args.dataset, ",".join(map(str, params.code_lengths)), run_dir)
    failure = _execute_notebook(notebook, run_dir / "train.ipynb", parameters, visible, log_output=not args.quiet)
    if failure:
        return failure

    metrics = read_json(run_dir / "metrics.json")
    maps = {int(bits): entry.get("final_map") for bits, entry in metrics["code_lengths"].items()}
    print(format_map_table(run_dir, maps, metrics["protocol"].get("topk")))
    print("metrics.json also records best_map, the maximum over iterations, selected on the query (test) set.")
    outputs_flag = "" if args.outputs_dir is None else f" --outputs-dir {run_dir.parent.parent}"
    print(f"evaluate again with: {PROG} --dataset {args.dataset} --arch test --info {run_dir.name}{outputs_flag}")
    return 0


def _create_run_folder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Optional[Path]:
    """Create ``<outputs>/<dataset>/<info>/``, naming the run when --info is missing.

    Returns None after logging when a run folder of that name already has content.
    """
    run_name = args.run_name or default_run_name()
    if not args.run_name:
        logger.info("no --info given, so the run is named %s", run_name)
    outputs_dir = Path(args.outputs_dir or outputs_root()).expanduser().absolute()
    try:
        return create_run_directory(args.dataset, run_name, outputs_dir)
    except ValueError as error:
        parser.error(f"--info {run_name}: {error}")
    except FileExistsError:
        logger.error("run folder %s already exists and is not empty. Choose another --info NAME "
                     "(for example %s-2) or delete the folder", run_directory(args.dataset, run_name, outputs_dir),
                     run_name)
    return None


def _execute_notebook(notebook: Path, executed: Path, parameters: Dict[str, Any],
                      visible_devices: Optional[str], log_output: bool) -> int:
    """Execute ``notebook`` with papermill into ``executed``. Return 0, or log the failure and return 1."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        with _environment_variable("CUDA_VISIBLE_DEVICES", visible_devices):
            papermill.execute_notebook(
                str(notebook), str(executed), parameters=parameters, kernel_name="python3",
                progress_bar=False, log_output=log_output,
            )
    except PapermillExecutionError as error:
        logger.error("training failed in notebook cell [%s]: %s: %s", error.exec_count, error.ename, error.evalue)
        logger.error("the executed notebook with the full traceback is %s", executed)
        return 1
    except DeadKernelError as error:
        logger.error("the notebook kernel died, for example because it ran out of memory: %s. "
                     "The output up to that point is in %s", error, executed)
        return 1
    except NoSuchKernel:
        logger.error("Jupyter kernel 'python3' not found. Install ipykernel into this Python environment")
        return 1
    return 0


# --------------------------------------------------------------------------- evaluation


def _find_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Optional[Path]:
    """Return the run folder named by ``--info``, or log that it is missing and return None."""
    if not args.run_name:
        parser.error("--arch test needs --info NAME, the run to evaluate")
    outputs_dir = Path(args.outputs_dir or outputs_root()).expanduser().absolute()
    try:
        run_dir = run_directory(args.dataset, args.run_name, outputs_dir)
    except ValueError as error:
        parser.error(f"--info {args.run_name}: {error}")
    if run_dir.is_dir():
        return run_dir

    existing = []
    if run_dir.parent.is_dir():
        existing = sorted(path.name for path in run_dir.parent.iterdir() if path.is_dir())
    found = f" (runs in {run_dir.parent}: {', '.join(existing)})" if existing else ""
    outputs_flag = "" if args.outputs_dir is None else f" --outputs-dir {outputs_dir}"
    logger.error("run folder %s not found%s. Train it with: %s --dataset %s --info %s%s [training flags]",
                 run_dir, found, PROG, args.dataset, args.run_name, outputs_flag)
    return None


def _select_code_lengths(run_dir: Path, requested: Optional[List[int]]) -> Optional[List[int]]:
    """Return the requested code lengths, or all saved ones. Log a missing checkpoint and return None."""
    found = (CHECKPOINT_NAME.match(path.name) for path in run_dir.iterdir())
    saved = sorted(int(match.group(1)) for match in found if match)
    if not saved:
        logger.error("no checkpoint_<k>bits.pt in %s, because the training of that run stopped before the "
                     "first checkpoint. Train again under another --info NAME", run_dir)
        return None
    missing = sorted(set(requested or []) - set(saved))
    if missing:
        logger.error("%s not found. The run has checkpoints for %s bits only. Train the other code lengths "
                     "under another --info NAME with --code-length %s",
                     ", ".join(str(checkpoint_path(run_dir, k)) for k in missing),
                     ", ".join(map(str, saved)), ",".join(map(str, missing)))
        return None
    return requested or saved


def _recompute_map(path: Path, topk_flag: Optional[int], recorded_map: Optional[float]) -> Optional[float]:
    """Recompute the mAP of one checkpoint and warn when it disagrees with ``recorded_map``.

    The query codes are ranked against the learned database codes ``B`` with
    the run's topk, unless ``topk_flag`` (the ``--topk`` value, -1 = whole
    ranking) replaces it. Returns None after logging when the checkpoint contains no codes.
    """
    from .evaluation import mean_average_precision
    from .runs import load_checkpoint

    checkpoint = load_checkpoint(path)
    if checkpoint.get("status", "complete") != "complete":
        logger.warning("%s was saved by a training with status %r after %s outer iterations",
                       path, checkpoint.get("status"), checkpoint.get("iterations_done"))
    if checkpoint["query_codes"] is None or checkpoint["database_codes"] is None:
        logger.error("%s contains no codes because its training stopped before the first evaluation", path)
        return None

    stored_topk = checkpoint["params"].get("topk")
    if topk_flag is None:
        topk = stored_topk
    else:
        topk = None if topk_flag == -1 else topk_flag
    value = mean_average_precision(checkpoint["query_codes"], checkpoint["database_codes"],
                                   checkpoint["query_labels"], checkpoint["database_labels"], topk=topk)

    code_length = checkpoint["code_length"]
    if recorded_map is None:
        recorded_map = checkpoint.get("final_map")
    if topk != stored_topk:
        logger.info("%d bits: topk %s differs from the run's topk %s, so the mAP is not compared with the "
                    "recorded one", code_length, topk, stored_topk)
    elif recorded_map is None:
        logger.warning("%d bits: the run recorded no final mAP to compare with", code_length)
    elif abs(value - recorded_map) > MAP_TOLERANCE:
        logger.warning("%d bits: recomputed mAP %.6f differs from the recorded final_map %.6f by %.2e",
                       code_length, value, recorded_map, abs(value - recorded_map))
    return value


def evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Recompute the mAP of each checkpoint of a run and print it as training does."""
    names = _option_names(parser)
    unused = [names[dest] for dest, value in sorted(vars(args).items())
              if dest in names and dest not in EVALUATION_DESTS and not dest.startswith("ignored_")
              and value not in (None, False, [])]
    if unused:
        logger.warning("--arch test reads the codes saved by training, so these flags have no effect: %s",
                       ", ".join(unused))
    run_dir = _find_run(args, parser)
    if run_dir is None:
        return 1
    code_lengths = _select_code_lengths(run_dir, args.code_lengths)
    if code_lengths is None:
        return 1

    metrics_path = run_dir / "metrics.json"
    recorded = read_json(metrics_path).get("code_lengths", {}) if metrics_path.is_file() else {}
    maps: Dict[int, Optional[float]] = {}
    for code_length in code_lengths:
        path = checkpoint_path(run_dir, code_length)
        try:
            value = _recompute_map(path, args.topk, recorded.get(str(code_length), {}).get("final_map"))
        except ValueError as error:
            logger.error("failed to evaluate %s: %s", path, error)
            return 1
        if value is None:
            return 1
        maps[code_length] = value

    if args.topk is None:
        table_topk = read_json(metrics_path)["protocol"].get("topk") if metrics_path.is_file() else None
    else:
        table_topk = None if args.topk == -1 else args.topk
    print(format_map_table(run_dir, maps, table_topk))
    return 0


# --------------------------------------------------------------------------- entry point


class _LogHandler(logging.StreamHandler):
    """A stderr handler installed by :func:`configure_logging`, so a second call replaces it."""


def configure_logging(quiet: bool = False) -> None:
    """Send log records to stderr: package messages with level and logger name, notebook output as it is.

    stdout stays free for the mAP table.
    """
    level = logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    papermill_logger = logging.getLogger("papermill")
    for logger_ in (root, papermill_logger):
        for handler in [h for h in logger_.handlers if isinstance(h, _LogHandler)]:
            logger_.removeHandler(handler)

    handler = _LogHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)

    # papermill relays the notebook's output through its logger, so print those lines unchanged.
    plain = _LogHandler(sys.stderr)
    plain.setFormatter(logging.Formatter("%(message)s"))
    papermill_logger.addHandler(plain)
    papermill_logger.setLevel(level)
    papermill_logger.propagate = False


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``semicon-run`` command line and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet)
    warn_ignored_flags(args)
    try:
        if args.arch == "test":
            return evaluate(args, parser)
        return train(args, parser)
    except KeyboardInterrupt:
        logger.error("interrupted by the user. A training run keeps every finished outer iteration "
                     "in its metrics.json")
        return 130


if __name__ == "__main__":
    sys.exit(main())
