"""Evaluation of a finished training run: load its checkpoints, compute the report, plot it.

The evaluation notebook calls these helpers. Nothing is retrained: the query codes, the
learned database codes ``B`` and the weights come from the checkpoints that training saved.
Two database protocols are reported:

- ``learned``: the database is represented by the learned codes ``B`` of the checkpoint,
  as in the authors' release;
- ``encoded``: the database images are encoded by the saved network, ``sign(u)`` in eval
  mode. This needs the images. When they are not available, only ``learned`` is reported.

Both protocols rank with the query codes stored in the checkpoint, which training encoded
with the network of its final iteration. The one exception is a checkpoint of an
interrupted run, whose queries the ``encoded`` protocol re-encodes with the saved weights.
"""

from __future__ import annotations

import logging
import math
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg", "widget", "ipympl"):
    matplotlib.use("Agg")  # outside a Jupyter kernel, draw headless

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from .evaluation import (  # noqa: E402
    average_precision_per_class,
    bit_balance,
    bit_correlation,
    bit_entropy,
    evaluate_retrieval,
    hamming_distance,
    mean_average_precision,
    precision_recall_at_k,
    precision_recall_by_radius,
    worst_classes,
)
from .paths import outputs_root  # noqa: E402
from .published import describe_protocol  # noqa: E402
from .runs import environment_info, load_checkpoint, read_json, run_directory, write_json  # noqa: E402

logger = logging.getLogger(__name__)

REPORT_FORMAT = 1
PROTOCOLS = ("learned", "encoded")
PROTOCOL_DESCRIPTIONS = {
    "learned": "database = learned codes B saved by training (the authors' release protocol)",
    "encoded": "database = the database images encoded by the saved network, sign(u) in eval mode",
}
QUERY_DESCRIPTION = "query = query split codes saved in the checkpoint, encoded by the network of the final iteration"
TIE_POLICIES = ("index", "random")
TIE_POLICY_DESCRIPTIONS = {
    "index": "equal Hamming distances keep database index order (stable sort)",
    "random": "equal Hamming distances in a random order: the database is shuffled with a fixed seed, then sorted stably",
}
HAMMING_RADIUS = 2
CHECKPOINT_PATTERN = "checkpoint_*bits.pt"


# Parameters -----------------------------------------------------------------------------


def parse_int_list(value: Union[None, int, str, Iterable[int]], name: str) -> Optional[List[int]]:
    """Parse a notebook parameter given as an int, a list of ints or a comma-separated string.

    Returns None for None or an empty string, otherwise the positive ints in the given order
    without repeats. Raises ``ValueError`` naming ``name`` for anything else.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must contain positive ints, got {value!r}")
    if isinstance(value, str):
        items: Iterable = [item.strip() for item in value.split(",") if item.strip()]
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items = [value]
    else:
        items = value
    parsed: List[int] = []
    for item in items:
        try:
            number = int(item)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must contain positive ints, got {item!r} in {value!r}") from None
        if isinstance(item, bool) or number < 1 or (isinstance(item, float) and item != number):
            raise ValueError(f"{name} must contain positive ints, got {item!r} in {value!r}")
        if number not in parsed:
            parsed.append(number)
    return parsed


def parse_protocols(value: Union[str, Iterable[str]]) -> List[str]:
    """Parse ``database_protocols`` ("learned,encoded" or a list) into a list of known protocol names."""
    items = [item.strip() for item in value.split(",")] if isinstance(value, str) else [str(item).strip() for item in value]
    items = [item for item in items if item]
    unknown = [item for item in items if item not in PROTOCOLS]
    if unknown or not items:
        raise ValueError(f"database_protocols must list one or more of {', '.join(PROTOCOLS)}, got {value!r}")
    return list(dict.fromkeys(items))


def check_tie_policy(tie_policy: str) -> str:
    """Return ``tie_policy`` when it names a supported policy, else raise ``ValueError``."""
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"tie_policy must be one of {', '.join(TIE_POLICIES)}, got {tie_policy!r}")
    return tie_policy


# Loading a run --------------------------------------------------------------------------


def resolve_run_dir(
    run_dir: Union[None, str, Path] = None,
    dataset: Optional[str] = None,
    run_name: Optional[str] = None,
    outputs_dir: Union[None, str, Path] = None,
) -> Path:
    """Find the run folder to evaluate.

    Args:
        run_dir: the run folder itself; when given, the other arguments are ignored.
        dataset: dataset name, used with ``run_name`` as ``<outputs>/<dataset>/<run_name>``.
        run_name: run folder name. None picks the run folder of ``dataset`` whose newest
            checkpoint is the most recent.
        outputs_dir: outputs root; None means ``$SEMICON_OUTPUTS`` or ``<repository>/outputs``.

    Raises:
        ValueError: neither ``run_dir`` nor ``dataset`` is given.
        FileNotFoundError: the folder does not exist or contains no checkpoint.
    """
    if run_dir is not None:
        path = Path(run_dir).expanduser()
    elif dataset is None:
        raise ValueError("set run_dir, or dataset (and optionally run_name), to choose the run to evaluate")
    elif run_name is not None:
        path = run_directory(dataset, run_name, outputs_dir)
    else:
        base = Path(outputs_dir or outputs_root()) / dataset
        candidates = [
            (max(checkpoint.stat().st_mtime for checkpoint in folder.glob(CHECKPOINT_PATTERN)), folder)
            for folder in (base.iterdir() if base.is_dir() else [])
            if folder.is_dir() and any(folder.glob(CHECKPOINT_PATTERN))
        ]
        if not candidates:
            raise FileNotFoundError(f"no run folder with a checkpoint under {base}; train {dataset} first or set run_dir")
        path = max(candidates)[1]
        logger.info("run_name not set; evaluating the most recent run of %s: %s", dataset, path.name)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder {path} not found; check run_dir, or dataset and run_name")
    return path


def find_checkpoints(run_dir: Union[str, Path], code_lengths: Optional[Sequence[int]] = None) -> Dict[int, Path]:
    """Map each code length to its checkpoint file ``checkpoint_<k>bits.pt`` in ``run_dir``.

    Args:
        run_dir: run folder.
        code_lengths: code lengths to evaluate; None takes every checkpoint in the folder.

    Returns:
        dict from code length to path, in increasing code length.

    Raises:
        FileNotFoundError: the folder contains no checkpoint, or a requested code length has none.
    """
    run_dir = Path(run_dir)
    found: Dict[int, Path] = {}
    for path in run_dir.glob(CHECKPOINT_PATTERN):
        bits = path.name[len("checkpoint_"):-len("bits.pt")]
        if bits.isdigit():
            found[int(bits)] = path
    if not found:
        raise FileNotFoundError(f"no {CHECKPOINT_PATTERN} file in {run_dir}; is it a finished run folder?")
    if code_lengths is None:
        return dict(sorted(found.items()))
    missing = [bits for bits in code_lengths if bits not in found]
    if missing:
        raise FileNotFoundError(
            f"no checkpoint for code length(s) {missing} in {run_dir}; available: {sorted(found)}"
        )
    return {bits: found[bits] for bits in sorted(code_lengths)}


@dataclass
class LoadedRun:
    """A run folder and the checkpoints to evaluate.

    Attributes:
        run_dir: the run folder.
        checkpoints: code length -> checkpoint dict as ``runs.load_checkpoint`` returns it.
        paths: code length -> checkpoint file.
        metrics: content of ``metrics.json``, or None when the folder has none.
    """

    run_dir: Path
    checkpoints: Dict[int, Dict[str, Any]]
    paths: Dict[int, Path]
    metrics: Optional[Dict[str, Any]] = None

    @property
    def first(self) -> Dict[str, Any]:
        return next(iter(self.checkpoints.values()))

    @property
    def dataset(self) -> str:
        return self.first["params"]["dataset"]

    @property
    def params(self) -> Dict[str, Any]:
        return self.first["params"]

    @property
    def class_names(self) -> List[str]:
        return list(self.first["class_names"])


def load_run(run_dir: Union[str, Path], code_lengths: Optional[Sequence[int]] = None) -> LoadedRun:
    """Load the checkpoints (on the CPU) and ``metrics.json`` of a run folder.

    Raises ``ValueError`` when the checkpoints disagree on the dataset, its labels or its
    data manifest, because their results could then not be compared side by side.
    """
    run_dir = Path(run_dir)
    paths = find_checkpoints(run_dir, code_lengths)
    checkpoints = {bits: load_checkpoint(path) for bits, path in paths.items()}
    reference_bits, reference = next(iter(checkpoints.items()))
    for bits, checkpoint in checkpoints.items():
        if checkpoint["code_length"] != bits:
            raise ValueError(
                f"invalid checkpoint {paths[bits]}: it contains code length {checkpoint['code_length']}, "
                f"but its file name gives {bits}; rename or retrain it"
            )
        same_data = (
            checkpoint["params"]["dataset"] == reference["params"]["dataset"]
            and checkpoint.get("data_manifest_sha256") == reference.get("data_manifest_sha256")
            and torch.equal(checkpoint["query_labels"], reference["query_labels"])
            and torch.equal(checkpoint["database_labels"], reference["database_labels"])
        )
        if not same_data:
            raise ValueError(
                f"checkpoints for {bits} and {reference_bits} bits in {run_dir} were trained on different data; "
                "evaluate them separately with code_lengths"
            )
    metrics_path = run_dir / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.is_file() else None
    for bits, checkpoint in checkpoints.items():
        logger.info(
            "%d bits: %s after %d iterations, final mAP %s", bits, checkpoint["status"], checkpoint["iterations_done"],
            "-" if checkpoint.get("final_map") is None else f"{checkpoint['final_map']:.4f}",
        )
    return LoadedRun(run_dir=run_dir, checkpoints=checkpoints, paths=paths, metrics=metrics)


def build_network(checkpoint: Dict[str, Any]) -> torch.nn.Module:
    """Rebuild the network of a checkpoint with its saved weights (strict load), in eval mode, on the CPU."""
    from .models import build_model

    config = dict(checkpoint["model_config"])
    config.pop("pretrained", None)
    model = build_model(**config, pretrained="none")
    model.load_state_dict(checkpoint["model_state"], strict=True)
    return model.eval()


def load_images(run: LoadedRun):
    """Rebuild the dataset splits that the run was trained on, when the images are available.

    Returns:
        ``(splits, note)``. ``splits`` is a ``DatasetSplits`` whose query and database
        labels equal those of the checkpoints, or None. ``note`` gives the reason when
        ``splits`` is None, and is None otherwise.
    """
    from .data import build_splits
    from .data.errors import DatasetError

    params = run.params
    try:
        splits = build_splits(params["dataset"], params.get("root"), **dict(params.get("data_options") or {}))
    except (DatasetError, OSError) as error:
        return None, f"dataset images not available ({type(error).__name__}: {error})"
    expected = run.first.get("data_manifest_sha256")
    if expected is not None and splits.manifest_hash() != expected:
        return None, (
            f"the dataset under {splits.root} differs from the one the run was trained on "
            f"(manifest SHA-256 {splits.manifest_hash()[:16]} instead of {expected[:16]})"
        )
    labels_match = np.array_equal(splits.query.labels, run.first["query_labels"].numpy()) and np.array_equal(
        splits.database.labels, run.first["database_labels"].numpy()
    )
    if not labels_match:
        return None, f"the labels of the dataset under {splits.root} differ from those saved in the checkpoints"
    return splits, None


def encode_images(
    model: torch.nn.Module,
    paths: Sequence[str],
    labels: np.ndarray,
    params: Dict[str, Any],
    device: Union[str, torch.device] = "cpu",
    progress: str = "auto",
    description: str = "encoding",
) -> torch.Tensor:
    """Encode images with the evaluation transform and batch size that training used.

    Args:
        model: network from :func:`build_network`.
        paths: N image files.
        labels: (N,) int class ids (carried along by the dataset, not used for coding).
        params: the checkpoint's training parameters (``image_size``, ``eval_batch_size``,
            ``num_workers``). The batch size matters for SEMICON with batch mask statistics,
            whose codes depend on the other images of the batch.
        device: where the network runs.
        progress: progress bar style (see ``semicon_core.progress``).

    Returns:
        int8 tensor (N, k) in {-1, +1}, on the CPU.
    """
    from .data import ImageDataset, build_transform
    from .training import encode

    device = torch.device(device)
    dataset = ImageDataset(paths, labels, build_transform("eval", params["image_size"]))
    model = model.to(device)
    codes = encode(model, dataset, device, batch_size=params["eval_batch_size"],
                   num_workers=params.get("num_workers", 0), progress=progress, description=description)
    return codes.to(torch.int8)


# Metrics --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Convert numpy and torch scalars and arrays to JSON values, NaN to None."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, torch.Tensor):
        return _plain(value.tolist())
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def tie_order(num_database: int, tie_policy: str, seed: int = 0) -> Optional[np.ndarray]:
    """Return the database permutation that implements ``tie_policy``, or None for ``"index"``.

    Every metric of ``semicon_core.evaluation`` breaks ties by database index, so metrics
    computed on ``database[permutation]`` rank equal distances in the permuted order.
    Returns int64 (Nd,) for ``"random"``.
    """
    check_tie_policy(tie_policy)
    if tie_policy == "index":
        return None
    return np.random.default_rng(seed).permutation(num_database)


def curve_cutoffs(num_database: int, topk: Sequence[int] = (), num_log: int = 40, num_linear: int = 100) -> List[int]:
    """Return the rank cut-offs for the precision@k and precision–recall-by-rank curves.

    The union of ``num_log`` log-spaced and ``num_linear`` evenly spaced ranks in
    [1, Nd], plus every cut-off of ``topk`` up to Nd, sorted without repeats.
    """
    log_spaced = np.geomspace(1, num_database, num_log)
    linear = np.linspace(1, num_database, num_linear)
    requested = [k for k in topk if k <= num_database]
    values = np.concatenate([log_spaced, linear, requested]).round().astype(np.int64)
    return sorted(set(int(value) for value in values if value >= 1))


def code_statistics(codes) -> Dict[str, Any]:
    """Compute per-bit balance and entropy of (N, k) codes in {-1, +1}, as JSON values.

    Returns a dict with ``balance`` and ``entropy`` (lists of k floats, see
    ``evaluation.bit_balance`` and ``evaluation.bit_entropy``) and ``mean_entropy``.
    """
    entropy = bit_entropy(codes)
    return {"balance": _plain(bit_balance(codes)), "entropy": _plain(entropy), "mean_entropy": float(entropy.mean())}


def evaluate_protocol(
    query_codes,
    database_codes,
    query_labels,
    database_labels,
    class_names: Sequence[str],
    topk: Sequence[int] = (100, 1000),
    tie_policy: str = "index",
    tie_seed: int = 0,
    radius: int = HAMMING_RADIUS,
    num_worst_classes: int = 10,
) -> Dict[str, Any]:
    """Compute every metric of the report for one code length and one database representation.

    Args:
        query_codes: (Nq, k) int or float in {-1, +1}.
        database_codes: (Nd, k), same encoding.
        query_labels: (Nq,) int64 class ids.
        database_labels: (Nd,) int64 class ids.
        class_names: C names in class id order.
        topk: cut-offs for mAP@k and precision@k, at least one.
        tie_policy: ``"index"`` or ``"random"`` (see ``TIE_POLICY_DESCRIPTIONS``). It orders
            ties for every metric except the tie-aware mAP, which needs no tie order.
        tie_seed: seed of the database shuffle of the ``"random"`` policy.
        radius: Hamming radius of the hash-lookup metrics.
        num_worst_classes: how many of the lowest-AP classes to name.

    Returns:
        JSON-ready dict with the keys of ``evaluation.evaluate_retrieval`` (``map``,
        ``map_at_k``, ``precision_at_k``, ``map_tie_aware``, ``radius``, ...) and the keys
        below. Its query bit statistics are left out, because the code length entry contains
        them.

        - ``tie_policy`` (the policy name) and ``tie_policy_description``;
        - ``precision_recall_at_k``: ``k``, ``precision``, ``recall`` lists over
          :func:`curve_cutoffs`, the precision@k and precision–recall-by-rank curves;
        - ``precision_recall_by_radius``: ``radius``, ``precision``, ``recall``,
          ``num_queries_retrieving`` lists for radius 0..k;
        - ``per_class_ap``: C floats (None for a class without queries) and
          ``worst_classes``: list of ``{class_id, class_name, ap}``, lowest AP first;
        - ``database_bits``: :func:`code_statistics` of ``database_codes``.
    """
    topk = list(topk)
    if not topk:
        raise ValueError("topk must contain at least one cut-off; mAP over the whole ranking is always reported")
    permutation = tie_order(len(database_labels), tie_policy, tie_seed)
    if permutation is not None:
        database_codes = database_codes[torch.as_tensor(permutation)]
        database_labels = database_labels[torch.as_tensor(permutation)]

    report = evaluate_retrieval(query_codes, database_codes, query_labels, database_labels, topk_list=topk, radius=radius)
    for key in ("bit_balance", "bit_entropy", "mean_bit_entropy"):
        report.pop(key)
    report["tie_policy"] = tie_policy
    report["tie_policy_description"] = TIE_POLICY_DESCRIPTIONS[tie_policy]
    if permutation is not None:
        report["tie_seed"] = tie_seed

    cutoffs = curve_cutoffs(len(database_labels), topk)
    at_k = precision_recall_at_k(query_codes, database_codes, query_labels, database_labels, ks=cutoffs)
    report["precision_recall_at_k"] = _plain({key: at_k[key] for key in ("k", "precision", "recall")})
    by_radius = precision_recall_by_radius(query_codes, database_codes, query_labels, database_labels)
    report["precision_recall_by_radius"] = _plain(
        {key: by_radius[key] for key in ("radius", "precision", "recall", "num_queries_retrieving")}
    )

    class_ap = average_precision_per_class(
        query_codes, database_codes, query_labels, database_labels, num_classes=len(class_names)
    )
    report["per_class_ap"] = _plain(class_ap)
    report["worst_classes"] = worst_classes(class_ap, count=num_worst_classes, class_names=list(class_names))
    report["database_bits"] = code_statistics(database_codes)
    return report


@dataclass
class RunEvaluation:
    """The evaluation of a run: the JSON report and the codes behind it.

    Attributes:
        report: JSON-ready dict, written as ``evaluation.json`` (see :func:`evaluate_run`).
        query_codes: code length -> protocol -> int8 (Nq, k) in {-1, +1}, the query codes
            that protocol ranked with.
        database_codes: code length -> protocol -> int8 (Nd, k) in {-1, +1}.
        bit_groups: code length -> ``[(name, start, stop), ...]`` of the network's heads.
        splits: the rebuilt ``DatasetSplits`` when the images are available, else None.
        class_names: C names in class id order.
    """

    report: Dict[str, Any]
    query_codes: Dict[int, Dict[str, torch.Tensor]] = field(default_factory=dict)
    database_codes: Dict[int, Dict[str, torch.Tensor]] = field(default_factory=dict)
    bit_groups: Dict[int, List[Tuple[str, int, int]]] = field(default_factory=dict)
    splits: Any = None
    class_names: List[str] = field(default_factory=list)

    @property
    def code_lengths(self) -> List[int]:
        """Code lengths with at least one evaluated protocol, in increasing order."""
        return sorted(bits for bits, codes in self.database_codes.items() if codes)


def _checkpoint_summary(checkpoint: Dict[str, Any], path: Path) -> Dict[str, Any]:
    return {
        "file": path.name,
        "status": checkpoint["status"],
        "iterations_done": int(checkpoint["iterations_done"]),
        "final_map": checkpoint.get("final_map"),
        "best_map": checkpoint.get("best_map"),
        "best_map_selected_on": "query set (test split)",
        "topk": checkpoint["params"].get("topk"),
        "arch": checkpoint["model_config"].get("arch"),
        "backbone": checkpoint["model_config"].get("backbone"),
    }


def check_final_map(checkpoint: Dict[str, Any], learned: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Compare the checkpoint's final mAP with the mAP of its own query codes against its learned codes.

    Training evaluates the final iteration with the query codes and the learned codes B
    that the checkpoint stores, ties by database index and its own ``topk``, so the two
    values agree up to float rounding for a complete run.

    Args:
        checkpoint: checkpoint dict.
        learned: the ``learned`` protocol entry of :func:`evaluate_protocol`, reused when its
            tie policy and cut-off match training's. None recomputes from the checkpoint.

    Returns:
        dict with ``final_map``, ``recomputed_map``, ``topk`` and ``matches`` (absolute
        difference at most 1e-9), or None when the checkpoint has no final mAP or no codes.
    """
    final_map = checkpoint.get("final_map")
    if final_map is None or checkpoint.get("query_codes") is None or checkpoint.get("database_codes") is None:
        return None
    topk = checkpoint["params"].get("topk")
    if learned is not None and learned["tie_policy"] == "index" and topk is None:
        recomputed = learned["map"]
    else:
        recomputed = mean_average_precision(checkpoint["query_codes"], checkpoint["database_codes"],
                                            checkpoint["query_labels"], checkpoint["database_labels"], topk=topk)
    return {"final_map": final_map, "recomputed_map": recomputed, "topk": topk,
            "matches": abs(recomputed - final_map) <= 1e-9}


def evaluate_run(
    run: LoadedRun,
    topk: Sequence[int] = (100, 1000),
    tie_policy: str = "index",
    protocols: Sequence[str] = PROTOCOLS,
    device: Union[str, torch.device] = "cpu",
    progress: str = "auto",
    tie_seed: int = 0,
    num_worst_classes: int = 10,
) -> RunEvaluation:
    """Evaluate every checkpoint of a run under each requested database protocol.

    Args:
        run: from :func:`load_run`.
        topk: cut-offs for mAP@k and precision@k.
        tie_policy: ``"index"`` or ``"random"``, the tie order of the headline numbers.
            The tie-aware expected mAP and its [min, max] range are always reported.
        protocols: subset of ``("learned", "encoded")``.
        device: where the network encodes database images (``encoded`` protocol only).
        progress: progress bar style for encoding.
        tie_seed: seed of the ``"random"`` tie policy.
        num_worst_classes: classes named as the worst per protocol.

    Returns:
        RunEvaluation whose ``report`` contains ``run_dir``, ``run_name``, ``dataset``,
        ``created``, ``versions``, ``settings`` (topk, radius, tie policy, protocols,
        device), ``protocols`` (label -> description), ``query_protocol``, ``data``
        (whether the images were found and why not), ``notes`` (each skipped step with its
        reason) and ``code_lengths``: str(k) -> {``checkpoint``, ``bit_groups``,
        ``query_bits``, ``protocols``: {label -> :func:`evaluate_protocol` entry},
        ``skipped_protocols``: {label -> reason}, ``final_map_check``}.
    """
    check_tie_policy(tie_policy)
    protocols = parse_protocols(protocols)
    topk = parse_int_list(topk, "topk") or []
    notes: List[str] = []
    started = time.perf_counter()

    # The images serve the encoded protocol and the retrieval examples.
    splits, data_note = load_images(run)
    if data_note:
        skipped = "the encoded protocol and the retrieval examples are" if "encoded" in protocols else \
            "the retrieval examples are"
        notes.append(f"{skipped} skipped: {data_note}")
        logger.warning("%s skipped: %s", skipped, data_note)

    report: Dict[str, Any] = {
        "format_version": REPORT_FORMAT,
        "run_dir": str(run.run_dir.resolve()),
        "run_name": run.run_dir.name,
        "dataset": run.dataset,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": environment_info(),
        "settings": {
            "topk": topk,
            "radius": HAMMING_RADIUS,
            "tie_policy": tie_policy,
            "tie_policy_description": TIE_POLICY_DESCRIPTIONS[tie_policy],
            "tie_seed": tie_seed if tie_policy == "random" else None,
            "tie_aware": "expected mAP and its [min, max] over random tie orders, reported for every protocol",
            "database_protocols": protocols,
            "device": str(device),
        },
        "protocols": {label: PROTOCOL_DESCRIPTIONS[label] for label in protocols},
        "query_protocol": QUERY_DESCRIPTION,
        "data": {"images_available": splits is not None, "note": data_note},
        "notes": notes,
        "code_lengths": {},
    }
    evaluation = RunEvaluation(report=report, splits=splits, class_names=run.class_names)

    for bits, checkpoint in run.checkpoints.items():
        entry = _evaluate_checkpoint(run, bits, checkpoint, evaluation, topk, tie_policy, protocols, splits,
                                     data_note, device, progress, tie_seed, num_worst_classes)
        if entry is not None:
            report["code_lengths"][str(bits)] = entry
    report["seconds"] = time.perf_counter() - started
    return evaluation


def _evaluate_checkpoint(run, bits, checkpoint, evaluation, topk, tie_policy, protocols, splits, data_note,
                         device, progress, tie_seed, num_worst_classes) -> Optional[Dict[str, Any]]:
    """Evaluate one code length under each protocol; fill ``evaluation`` and return its report entry."""
    if checkpoint.get("query_codes") is None:
        note = f"{bits} bits skipped: the checkpoint contains no query codes (status {checkpoint['status']})"
        evaluation.report["notes"].append(note)
        logger.warning(note)
        return None

    model = build_network(checkpoint)
    groups = [tuple(group) for group in model.bit_groups]
    query_codes = checkpoint["query_codes"]
    query_labels = checkpoint["query_labels"]
    database_labels = checkpoint["database_labels"]
    entry: Dict[str, Any] = {
        "checkpoint": _checkpoint_summary(checkpoint, run.paths[bits]),
        "bit_groups": [{"name": name, "start": start, "stop": stop} for name, start, stop in groups],
        "query_bits": code_statistics(query_codes),
        "protocols": {},
        "skipped_protocols": {},
    }
    evaluation.bit_groups[bits] = groups
    evaluation.query_codes[bits] = {}
    evaluation.database_codes[bits] = {}

    for protocol in protocols:
        protocol_query_codes = query_codes
        query_source = "checkpoint"
        if protocol == "learned":
            if checkpoint.get("database_codes") is None:
                entry["skipped_protocols"]["learned"] = "the checkpoint contains no learned database codes"
                continue
            database_codes = checkpoint["database_codes"]
        else:
            if splits is None:
                entry["skipped_protocols"]["encoded"] = data_note
                continue
            if checkpoint["status"] != "complete":
                # NOTE: an interrupted run may have saved query codes of an earlier iteration than its
                # weights, so this protocol's query codes are re-encoded with the saved weights.
                logger.warning("%d bits: status %s, so the queries are re-encoded with the saved network",
                               bits, checkpoint["status"])
                protocol_query_codes = encode_images(model, splits.query.paths, splits.query.labels,
                                                     checkpoint["params"], device, progress,
                                                     description=f"encoding queries ({bits} bits)")
                query_source = "re-encoded with the saved network"
            start = time.perf_counter()
            database_codes = encode_images(model, splits.database.paths, splits.database.labels,
                                           checkpoint["params"], device, progress,
                                           description=f"encoding database ({bits} bits)")
            logger.info("%d bits: encoded %d database images in %.1f s", bits, len(database_codes),
                        time.perf_counter() - start)
        start = time.perf_counter()
        result = evaluate_protocol(protocol_query_codes, database_codes, query_labels, database_labels,
                                   evaluation.class_names, topk, tie_policy, tie_seed,
                                   num_worst_classes=num_worst_classes)
        result["protocol"] = protocol
        result["description"] = PROTOCOL_DESCRIPTIONS[protocol]
        result["query_codes_source"] = query_source
        entry["protocols"][protocol] = result
        evaluation.query_codes[bits][protocol] = protocol_query_codes
        evaluation.database_codes[bits][protocol] = database_codes
        logger.info("%d bits, %s database: mAP %.4f (tie-aware expected %.4f), %.1f s", bits, protocol,
                    result["map"], result["map_tie_aware"]["expected"], time.perf_counter() - start)

    entry["final_map_check"] = check_final_map(checkpoint, entry["protocols"].get("learned"))
    return entry


def write_evaluation(report: Dict[str, Any], directory: Union[str, Path]) -> Path:
    """Write ``report`` as ``<directory>/evaluation.json`` in strict JSON (NaN stored as null) and return the path."""
    path = Path(directory) / "evaluation.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, _plain(report))
    logger.info("saved %s", path)
    return path


# Tables ---------------------------------------------------------------------------------


def summary_table(report: Dict[str, Any]) -> pd.DataFrame:
    """Tabulate the headline scalars: one row per (bits, protocol).

    Columns: ``mAP`` (under the report's tie policy), ``tie-aware expected``, ``tie-aware
    min``, ``tie-aware max``, ``mAP@k`` and ``P@k`` for each requested k, and
    ``P (r<=2)``, ``R (r<=2)``, ``mAP (r<=2)`` within the Hamming radius.
    """
    rows = []
    for bits, entry in report["code_lengths"].items():
        for protocol, result in entry["protocols"].items():
            row = {"bits": int(bits), "protocol": protocol, "mAP": result["map"],
                   "tie-aware expected": result["map_tie_aware"]["expected"],
                   "tie-aware min": result["map_tie_aware"]["min"], "tie-aware max": result["map_tie_aware"]["max"]}
            row.update({f"mAP@{k}": value for k, value in result["map_at_k"].items()})
            row.update({f"P@{k}": value for k, value in result["precision_at_k"].items()})
            radius = result["radius"]
            row.update({f"P (r<={radius['radius']})": radius["precision"],
                        f"R (r<={radius['radius']})": radius["recall"],
                        f"mAP (r<={radius['radius']})": radius["map"]})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["bits", "protocol"]) if rows else pd.DataFrame()


def worst_classes_table(report: Dict[str, Any]) -> pd.DataFrame:
    """Tabulate the worst classes of every (bits, protocol): rank, class id, class name and AP."""
    rows = [
        {"bits": int(bits), "protocol": protocol, "rank": rank, **item}
        for bits, entry in report["code_lengths"].items()
        for protocol, result in entry["protocols"].items()
        for rank, item in enumerate(result["worst_classes"], start=1)
    ]
    return pd.DataFrame(rows)


def comparison_table(report: Dict[str, Any], published: pd.DataFrame) -> pd.DataFrame:
    """Put this run's mAP (in percent) next to published figures of the same dataset and code lengths.

    This run contributes three rows per code length. The first is the best mAP over
    iterations selected on the query set (``best_over_iterations_test_selected``, the
    protocol of the authors' logs). The others are the final-iteration mAP against the
    learned codes and, when it was computed, against the encoded database. A training
    ``topk`` other than None is appended to the protocol label as ``@k``.

    Args:
        report: the report of :func:`evaluate_run`.
        published: rows from ``published.published_results``.

    Returns:
        DataFrame with columns ``bits``, ``method``, ``source``, ``protocol``,
        ``protocol_description``, ``map_percent`` and ``note``, this run's rows first within
        each code length.
    """
    rows = []
    source = f"this run ({report['run_name']})"
    for bits, entry in report["code_lengths"].items():
        checkpoint = entry["checkpoint"]
        method = {"semicon": "SEMICON", "baseline": "ADSH"}.get(checkpoint["arch"], str(checkpoint["arch"]))
        method = f"{method} ({checkpoint['backbone']})"
        if checkpoint["best_map"] is not None:
            label = "best_over_iterations_test_selected"
            description = describe_protocol(label)
            if checkpoint["topk"] is not None:
                label += f"@{checkpoint['topk']}"
                description += f", cut after the first {checkpoint['topk']} items"
            rows.append({"bits": int(bits), "method": method, "source": source, "protocol": label,
                         "protocol_description": description, "map_percent": 100 * checkpoint["best_map"],
                         "note": "recorded by training"})
        for protocol, result in entry["protocols"].items():
            rows.append({"bits": int(bits), "method": method, "source": source,
                         "protocol": f"final_iteration_{protocol}_database_ties_{result['tie_policy']}",
                         "protocol_description": f"final iteration; {PROTOCOL_DESCRIPTIONS[protocol]}; "
                                                 f"ties: {TIE_POLICY_DESCRIPTIONS[result['tie_policy']]}",
                         "map_percent": 100 * result["map"],
                         "note": f"tie-aware expected {100 * result['map_tie_aware']['expected']:.2f}"})
    columns = ["bits", "method", "source", "protocol", "protocol_description", "map_percent", "note"]
    table = pd.DataFrame(rows, columns=columns)
    if len(published):
        others = published.assign(protocol_description=published["protocol"].map(describe_protocol))[columns]
        table = pd.concat([table, others], ignore_index=True)
    # A stable sort by bits keeps this run's rows ahead of the published ones.
    table = table.sort_values("bits", kind="stable").reset_index(drop=True)
    table["bits"] = table["bits"].astype(int)
    return table


# Retrieval examples ---------------------------------------------------------------------


def select_queries(query_labels, count: int, seed: int = 0) -> List[int]:
    """Pick ``count`` query indices from as many different classes as possible.

    Args:
        query_labels: (Nq,) int class ids.
        count: number of queries; more than Nq returns every query.
        seed: seed of the random choice.

    Returns:
        list of distinct query indices: one from each of ``count`` random classes, topped up
        with random other queries when there are fewer classes than ``count``.
    """
    labels = np.asarray(query_labels)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    chosen_classes = rng.choice(classes, size=min(count, len(classes)), replace=False)
    picked = [int(rng.choice(np.flatnonzero(labels == label))) for label in chosen_classes]
    if len(picked) < count:
        rest = np.setdiff1d(np.arange(len(labels)), picked)
        picked += [int(index) for index in rng.choice(rest, size=min(count - len(picked), len(rest)), replace=False)]
    return picked


def top_results(
    query_codes, database_codes, query_indices: Sequence[int], topk: int, tie_policy: str = "index", tie_seed: int = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """Rank the database for a few queries, with the same tie policy as the report.

    Args:
        query_codes: (Nq, k) in {-1, +1}.
        database_codes: (Nd, k) in {-1, +1}.
        query_indices: Q query rows to rank for.
        topk: results kept per query (at most Nd).
        tie_policy: ``"index"`` or ``"random"``; ``"random"`` uses the shuffle of
            :func:`tie_order` with ``tie_seed``, so it agrees with the report's metrics.

    Returns:
        ``(indices, distances)``: int64 (Q, topk) database indices in rank order and
        int64 (Q, topk) their Hamming distances.
    """
    num_database = database_codes.shape[0]
    topk = min(topk, num_database)
    distances = hamming_distance(query_codes[list(query_indices)], database_codes).numpy().astype(np.int64)
    permutation = tie_order(num_database, tie_policy, tie_seed)
    tie_key = np.arange(num_database) if permutation is None else np.argsort(permutation)
    indices = np.stack([np.lexsort((tie_key, row))[:topk] for row in distances]).astype(np.int64)
    return indices, np.take_along_axis(distances, indices, axis=1)


def plot_retrieval_grid(
    query_paths: Sequence[str],
    query_labels: Sequence[int],
    result_paths: Sequence[Sequence[str]],
    result_labels,
    result_distances,
    class_names: Sequence[str],
    title: str = "",
    path: Union[None, str, Path] = None,
):
    """Draw each query followed by its ranked database results.

    A result with the query's class gets a green frame and a wrong one a red frame. Each
    result is titled with its Hamming distance to the query.

    Args:
        query_paths: Q image files of the queries.
        query_labels: Q class ids.
        result_paths: Q lists of T image files, in rank order.
        result_labels: (Q, T) class ids of the results.
        result_distances: (Q, T) Hamming distances.
        class_names: C names in class id order.
        title: figure title.
        path: PNG file to save; None only returns the figure.
    """
    from .data import load_rgb

    num_queries = len(query_paths)
    num_results = max((len(row) for row in result_paths), default=0)
    figure, axes = plt.subplots(num_queries, num_results + 1, figsize=(1.6 * (num_results + 1), 1.9 * num_queries),
                                squeeze=False)
    for row in range(num_queries):
        axis = axes[row, 0]
        axis.imshow(load_rgb(query_paths[row]))
        axis.set_title(textwrap.shorten(f"query: {class_names[query_labels[row]]}", 28), fontsize=7)
        _frame(axis, "black", 1.0)
        for column in range(num_results):
            axis = axes[row, column + 1]
            if column >= len(result_paths[row]):
                axis.axis("off")
                continue
            correct = int(result_labels[row][column]) == int(query_labels[row])
            axis.imshow(load_rgb(result_paths[row][column]))
            axis.set_title(f"#{column + 1}  d={int(result_distances[row][column])}", fontsize=7)
            _frame(axis, "tab:green" if correct else "tab:red", 3.0)
    figure.suptitle(title + "\n(green frame: same class as the query, red: another class; d: Hamming distance)",
                    fontsize=9)
    figure.tight_layout()
    _save(figure, path)
    return figure


def _frame(axis, color: str, width: float) -> None:
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(width)


def retrieval_examples(
    evaluation: RunEvaluation,
    code_length: int,
    protocol: str,
    num_queries: int = 6,
    topk: int = 8,
    seed: int = 0,
    path: Union[None, str, Path] = None,
):
    """Plot the retrieval grid of one code length and protocol, or return None without the images.

    The queries come from :func:`select_queries` with ``seed``, and the ranking uses the
    report's tie policy.
    """
    splits = evaluation.splits
    if splits is None:
        return None
    settings = evaluation.report["settings"]
    query_codes = evaluation.query_codes[code_length][protocol]
    database_codes = evaluation.database_codes[code_length][protocol]
    queries = select_queries(splits.query.labels, num_queries, seed)
    indices, distances = top_results(query_codes, database_codes, queries, topk, settings["tie_policy"],
                                     settings["tie_seed"] or 0)
    return plot_retrieval_grid(
        [splits.query.paths[q] for q in queries],
        [int(splits.query.labels[q]) for q in queries],
        [[splits.database.paths[d] for d in row] for row in indices],
        splits.database.labels[indices],
        distances,
        evaluation.class_names,
        title=f"{evaluation.report['dataset']}, {code_length} bits, {protocol} database: top {indices.shape[1]} results",
        path=path,
    )


# Figures --------------------------------------------------------------------------------

_LINESTYLES = {"learned": "-", "encoded": "--"}


def _save(figure, path: Union[None, str, Path]) -> None:
    if path is not None:
        figure.savefig(path, dpi=120)
        logger.info("saved %s", path)


def _curve_colors(report: Dict[str, Any]) -> Dict[str, Any]:
    palette = plt.get_cmap("tab10")
    return {bits: palette(index % 10) for index, bits in enumerate(report["code_lengths"])}


def _array(values) -> np.ndarray:
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def plot_tie_ranges(report: Dict[str, Any], path: Union[None, str, Path] = None):
    """Plot, per code length and protocol, the headline mAP next to the tie-aware expected mAP and its [min, max].

    The vertical bar spans min to max over all tie orders, the circle is the expected mAP
    under random tie order and the cross is the mAP of the report's tie policy.
    """
    figure, axis = plt.subplots(figsize=(max(6.0, 2.2 * len(report["code_lengths"]) + 3), 4))
    positions, labels = [], []
    for position, (bits, entry) in enumerate(report["code_lengths"].items()):
        for offset, (protocol, result) in enumerate(entry["protocols"].items()):
            x = 2.5 * position + offset
            ties = result["map_tie_aware"]
            axis.vlines(x, ties["min"], ties["max"], color="0.4", linewidth=6, alpha=0.5,
                        label="[min, max] over tie orders" if not positions else None)
            axis.scatter([x], [ties["expected"]], marker="o", facecolors="none", edgecolors="black", s=50, zorder=3,
                         label="tie-aware expected" if not positions else None)
            axis.scatter([x], [result["map"]], marker="x", color="tab:red", s=40, zorder=4,
                         label=f"ties by {result['tie_policy']}" if not positions else None)
            positions.append(x)
            labels.append(f"{bits} bits\n{protocol}")
    axis.set_xticks(positions, labels, fontsize=8)
    axis.set_xlim(min(positions, default=0) - 1, max(positions, default=0) + 3.5)
    axis.set_ylabel("mAP")
    axis.set_title("mAP and the effect of tie order")
    axis.grid(axis="y", alpha=0.3)
    if positions:
        axis.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    _save(figure, path)
    return figure


def plot_precision_at_k(report: Dict[str, Any], path: Union[None, str, Path] = None):
    """Plot precision@k against k (log scale), one line per code length and protocol (solid: learned, dashed: encoded)."""
    figure, axis = plt.subplots(figsize=(6.5, 4))
    colors = _curve_colors(report)
    for bits, entry in report["code_lengths"].items():
        for protocol, result in entry["protocols"].items():
            curve = result["precision_recall_at_k"]
            axis.plot(curve["k"], _array(curve["precision"]), color=colors[bits],
                      linestyle=_LINESTYLES.get(protocol, ":"), label=f"{bits} bits, {protocol}")
    axis.set_xscale("log")
    axis.set_xlabel("k (retrieved items)")
    axis.set_ylabel("precision@k")
    axis.set_ylim(0, 1.02)
    axis.set_title(f"precision@k (ties by {report['settings']['tie_policy']})")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    _save(figure, path)
    return figure


def plot_precision_recall(report: Dict[str, Any], path: Union[None, str, Path] = None):
    """Plot precision–recall curves by Hamming radius (left) and by rank cut-off (right).

    One line per code length and protocol (solid: learned, dashed: encoded). On the left,
    markers are radii 0..k and the radius-2 point is circled. Precision at a radius is
    averaged over the queries that retrieve something within it.
    """
    figure, (radius_axis, rank_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = _curve_colors(report)
    radius = report["settings"]["radius"]
    for bits, entry in report["code_lengths"].items():
        for protocol, result in entry["protocols"].items():
            style = dict(color=colors[bits], linestyle=_LINESTYLES.get(protocol, ":"), label=f"{bits} bits, {protocol}")
            by_radius = result["precision_recall_by_radius"]
            recall, precision = _array(by_radius["recall"]), _array(by_radius["precision"])
            radius_axis.plot(recall, precision, marker=".", **style)
            if radius < len(recall):
                radius_axis.scatter([recall[radius]], [precision[radius]], s=80, facecolors="none",
                                    edgecolors=colors[bits], zorder=3)
            by_rank = result["precision_recall_at_k"]
            rank_axis.plot(_array(by_rank["recall"]), _array(by_rank["precision"]), **style)
    radius_axis.set_title(f"by Hamming radius 0..k (circle: radius {radius})")
    rank_axis.set_title(f"by rank cut-off (ties by {report['settings']['tie_policy']})")
    for axis in (radius_axis, rank_axis):
        axis.set_xlabel("recall")
        axis.set_ylabel("precision")
        axis.set_xlim(0, 1.02)
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    _save(figure, path)
    return figure


def plot_per_class_ap(report: Dict[str, Any], count: int = 10, path: Union[None, str, Path] = None):
    """Plot per-class AP, one row per code length.

    Left: AP of every class sorted in increasing order, one line per protocol. Right: the
    ``count`` worst classes of the first protocol, named, with their AP under each protocol.
    """
    entries = list(report["code_lengths"].items())
    figure, axes = plt.subplots(len(entries), 2, figsize=(12, (2.4 + 0.22 * count) * len(entries)), squeeze=False)
    for row, (bits, entry) in enumerate(entries):
        sorted_axis, worst_axis = axes[row]
        protocols = list(entry["protocols"])
        for protocol in protocols:
            values = _array(entry["protocols"][protocol]["per_class_ap"])
            values = np.sort(values[~np.isnan(values)])
            sorted_axis.plot(np.arange(1, len(values) + 1), values, linestyle=_LINESTYLES.get(protocol, ":"),
                             label=protocol)
        sorted_axis.set_xlabel("class (sorted by AP)")
        sorted_axis.set_ylabel("AP")
        sorted_axis.set_ylim(0, 1.02)
        sorted_axis.set_title(f"{bits} bits: per-class AP")
        sorted_axis.grid(alpha=0.3)
        if protocols:
            sorted_axis.legend(fontsize=8)
            worst = entry["protocols"][protocols[0]]["worst_classes"][:count]
            names = [textwrap.shorten(str(item["class_name"]), 32) for item in worst]
            height = 0.8 / len(protocols)
            for offset, protocol in enumerate(protocols):
                per_class = _array(entry["protocols"][protocol]["per_class_ap"])
                values = [per_class[item["class_id"]] for item in worst]
                worst_axis.barh(np.arange(len(worst)) + offset * height, values, height=height, label=protocol)
            worst_axis.set_yticks(np.arange(len(worst)) + height * (len(protocols) - 1) / 2, names, fontsize=8)
            worst_axis.invert_yaxis()
            worst_axis.set_xlim(0, 1)
            worst_axis.set_xlabel("AP")
            worst_axis.set_title(f"{bits} bits: {len(worst)} worst classes ({protocols[0]} database)")
            worst_axis.legend(fontsize=8)
    figure.tight_layout()
    _save(figure, path)
    return figure


def _mark_groups(axis, groups: Sequence[Tuple[str, int, int]], heatmap: bool) -> None:
    """Draw the boundaries of the bit groups on a per-bit bar chart or on a correlation heatmap."""
    for _, start, _ in groups[1:]:
        if heatmap:
            axis.axhline(start, color="black", linewidth=1.5)
            axis.axvline(start, color="black", linewidth=1.5)
        else:
            axis.axvline(start - 0.5, color="black", linewidth=1.0, linestyle="--")
    if heatmap:
        centres = [(start + stop) / 2 for _, start, stop in groups]
        names = [name for name, _, _ in groups]
        axis.set_xticks(centres, names, rotation=0, fontsize=8)
        axis.set_yticks(centres, names, rotation=90, va="center", fontsize=8)
    else:
        top = axis.get_ylim()[1]
        for name, start, stop in groups:
            axis.text((start + stop - 1) / 2, top, name, ha="center", va="bottom", fontsize=8)


def plot_bit_statistics(
    codes_by_name: Dict[str, Any],
    groups: Sequence[Tuple[str, int, int]],
    title: str = "",
    path: Union[None, str, Path] = None,
):
    """Plot bit balance, bit entropy and bit-correlation heatmaps of one code length.

    Args:
        codes_by_name: label -> (N, k) codes in {-1, +1}, e.g. query codes and learned B.
        groups: ``(name, start, stop)`` column ranges of the global and local heads, drawn as
            dashed lines on the bar charts and solid lines on the heatmaps.
        title: figure title.
        path: PNG file to save; None only returns the figure.

    Top row: balance (mean of each bit, 0 = half +1) and entropy (bits) per bit, one bar
    series per code set. Bottom row: the Pearson correlation between bits of each code set;
    a constant bit has no correlation and is left blank.
    """
    import seaborn as sns

    names = list(codes_by_name)
    code_length = next(iter(codes_by_name.values())).shape[1]
    figure = plt.figure(figsize=(6 * max(2, len(names)), 9))
    grid = figure.add_gridspec(2, max(2, len(names)), height_ratios=[1, 1.5])
    balance_axis = figure.add_subplot(grid[0, : max(2, len(names)) // 2])
    entropy_axis = figure.add_subplot(grid[0, max(2, len(names)) // 2:])
    width = 0.8 / len(names)
    bit_index = np.arange(code_length)
    for offset, name in enumerate(names):
        shift = (offset - (len(names) - 1) / 2) * width
        balance_axis.bar(bit_index + shift, bit_balance(codes_by_name[name]), width=width, label=name)
        entropy_axis.bar(bit_index + shift, bit_entropy(codes_by_name[name]), width=width, label=name)
    balance_axis.set_ylim(-1, 1.15)
    balance_axis.axhline(0, color="0.3", linewidth=0.8)
    balance_axis.set_ylabel("balance (mean of the bit)")
    entropy_axis.set_ylim(0, 1.15)
    entropy_axis.set_ylabel("entropy (bits)")
    for axis in (balance_axis, entropy_axis):
        axis.set_xlabel("bit")
        axis.set_xlim(-0.6, code_length - 0.4)
        _mark_groups(axis, groups, heatmap=False)

    for column, name in enumerate(names):
        axis = figure.add_subplot(grid[1, column])
        correlation = bit_correlation(codes_by_name[name])
        sns.heatmap(correlation, ax=axis, vmin=-1, vmax=1, center=0, cmap="RdBu_r", square=True,
                    cbar_kws={"label": "Pearson correlation", "shrink": 0.8})
        _mark_groups(axis, groups, heatmap=True)
        axis.set_title(f"bit correlation: {name} (blank: constant bit)", fontsize=10)
    figure.suptitle(title)
    handles, labels = balance_axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper right", ncol=len(names), fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    _save(figure, path)
    return figure


def bit_statistics_figure(evaluation: RunEvaluation, code_length: int, path: Union[None, str, Path] = None):
    """Plot :func:`plot_bit_statistics` for the query codes and each protocol's database codes of one code length."""
    first_protocol = next(iter(evaluation.query_codes[code_length]))
    codes = {"query codes": evaluation.query_codes[code_length][first_protocol]}
    for protocol, database_codes in evaluation.database_codes[code_length].items():
        codes[f"{protocol} database codes"] = database_codes
    groups = evaluation.bit_groups[code_length]
    group_text = ", ".join(f"{name} {start}" if stop - start == 1 else f"{name} {start}-{stop - 1}"
                           for name, start, stop in groups)
    return plot_bit_statistics(codes, groups, title=f"{code_length} bits; bit groups: {group_text}", path=path)
