"""One training run: the run folder, its records and the loop over code lengths.

The train notebook and the ``semicon-run`` command line drive this class. It
rewrites ``metrics.json`` after every outer iteration and writes one
checkpoint per finished (or interrupted) code length.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from .data import DatasetSplits, available_datasets, build_splits
from .params import TrainParams, save_params
from .runs import (
    checkpoint_path,
    create_run_directory,
    default_run_name,
    environment_info,
    save_checkpoint,
    write_json,
)
from .training import CodeLengthResult, random_baseline_map, select_device, train_code_length

logger = logging.getLogger(__name__)

PROTOCOL = {
    "query": "query split (official test split) encoded by the network as sign(u) in eval mode, 0 mapped to +1",
    "database": "learned codes B of the database split (official train split), as in the authors' release",
    "relevance": "query and database image share a label",
    "ranking": "Hamming distance",
    "tie_policy": "stable: equal distances keep database index order",
    "no_relevant_item": "AP counts as 0 in the mean, as in the authors' release",
    "best_map_selection": "best_map is the maximum over evaluated iterations, i.e. selected on the query "
                          "(test) set as the authors' release reports it; final_map is the last iteration",
}


class TrainingRun:
    """A run folder ``<outputs>/<dataset>/<run_name>`` and the training of each code length in it."""

    def __init__(
        self,
        params: TrainParams,
        run_name: Optional[str] = None,
        outputs_dir: Optional[Union[str, Path]] = None,
        progress: str = "auto",
    ):
        if params.dataset not in available_datasets():
            raise ValueError(
                f"unknown dataset {params.dataset!r}; valid names are {', '.join(available_datasets())}"
            )
        self.params = params
        self.run_name = run_name or default_run_name()
        self.directory = create_run_directory(params.dataset, self.run_name, outputs_dir)
        self.progress = progress
        self.device = select_device(params.device)
        self.splits: Optional[DatasetSplits] = None
        self.results: Dict[int, CodeLengthResult] = {}
        self._started = time.perf_counter()
        save_params(params, self.directory / "params.yaml")
        self.metrics: Dict[str, Any] = {
            "run_name": self.run_name,
            "dataset": params.dataset,
            "arch": params.arch,
            "status": "running",
            "device": str(self.device),
            "protocol": {**PROTOCOL, "topk": params.topk},
            "data": {},
            "code_lengths": {},
            "summary": [],
            "timings": {},
            "environment": environment_info(),
        }
        self._write_metrics()
        logger.info("run folder %s (device %s)", self.directory, self.device)

    # Data ------------------------------------------------------------------

    def load_data(self) -> DatasetSplits:
        """Build the dataset splits and write ``data_summary.json`` (and any skipped-image list)."""
        start = time.perf_counter()
        try:
            self.splits = build_splits(self.params.dataset, self.params.root, **self.params.data_options)
        except Exception as error:
            self.metrics["error"] = f"{type(error).__name__}: {error}"
            self._finish("failed")
            raise
        summary = self.splits.summary()
        write_json(self.directory / "data_summary.json", summary)
        skipped = self.splits.extra.get("skipped_images")
        if skipped:
            # One record per dropped file: split, path and the read error.
            write_json(self.directory / "skipped_images.json", list(skipped))
        self.metrics["data"] = {key: summary[key] for key in
                                ("root", "num_classes", "num_query", "num_database", "manifest_sha256")}
        self.metrics["timings"]["data_seconds"] = time.perf_counter() - start
        self._write_metrics()
        return self.splits

    # Training ----------------------------------------------------------------

    def train(self, code_length: int, model: Optional[torch.nn.Module] = None) -> CodeLengthResult:
        """Train ``code_length`` bits from a fresh network, recording metrics and a checkpoint."""
        if self.splits is None:
            self.load_data()
        splits = self.splits
        assert splits is not None
        query_labels = torch.as_tensor(splits.query.labels)
        database_labels = torch.as_tensor(splits.database.labels)
        chance = random_baseline_map(query_labels, database_labels, code_length, self.params.topk,
                                     seed=self.params.seed)
        entry: Dict[str, Any] = {"status": "running", "random_baseline_map": chance, "iterations": []}
        self.metrics["code_lengths"][str(code_length)] = entry

        def record(result: CodeLengthResult, network: torch.nn.Module) -> None:
            self._update_entry(entry, result)
            if result.status == "interrupted":
                self._save(result, network)
            self._write_metrics()

        try:
            network, result = train_code_length(
                self.params, splits, code_length, self.device, model=model,
                progress=self.progress, on_iteration=record,
            )
        except KeyboardInterrupt:
            self._finish("interrupted")
            raise
        except Exception as error:
            entry["status"] = "failed"
            entry["error"] = f"{type(error).__name__}: {error}"
            self._finish("failed")
            raise
        self._update_entry(entry, result)
        self._save(result, network)
        self.results[code_length] = result
        self._write_metrics()
        return result

    def train_all(self) -> Dict[int, CodeLengthResult]:
        """Train every code length of ``params.code_lengths`` in turn, then mark the run complete."""
        for code_length in self.params.code_lengths:
            self.train(code_length)
        self.finish()
        return self.results

    def finish(self) -> None:
        """Mark the run complete and write the final records."""
        self._finish("complete")

    # Records -----------------------------------------------------------------

    def _update_entry(self, entry: Dict[str, Any], result: CodeLengthResult) -> None:
        entry["status"] = result.status
        entry["iterations"] = result.iterations
        entry["train_seconds"] = result.train_seconds
        entry["final_map"] = result.final_map
        best = result.best
        entry["best_map"] = best["map"] if best else None
        entry["best_iteration"] = best["iteration"] if best else None
        entry["best_map_selected_on"] = "query set (test split)"
        self.metrics["summary"] = [
            {
                "code_length": int(k),
                "final_map": v.get("final_map"),
                "best_map": v.get("best_map"),
                "best_iteration": v.get("best_iteration"),
                "random_baseline_map": v.get("random_baseline_map"),
                "status": v.get("status"),
            }
            for k, v in self.metrics["code_lengths"].items()
        ]

    def _save(self, result: CodeLengthResult, model: torch.nn.Module) -> Path:
        splits = self.splits
        assert splits is not None
        path = checkpoint_path(self.directory, result.code_length)
        payload = {
            "code_length": result.code_length,
            "status": result.status,
            "iterations_done": len(result.iterations),
            "model_config": dict(getattr(model, "config", {})),
            "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "database_codes": None if result.database_codes is None else result.database_codes.to(torch.int8),
            "query_codes": None if result.query_codes is None else result.query_codes.to(torch.int8),
            "database_labels": torch.as_tensor(splits.database.labels),
            "query_labels": torch.as_tensor(splits.query.labels),
            "class_names": list(splits.class_names),
            "final_map": result.final_map,
            "best_map": result.best["map"] if result.best else None,
            "params": self.params.to_dict(),
            "data_manifest_sha256": self.metrics["data"].get("manifest_sha256"),
            "versions": environment_info(),
        }
        save_checkpoint(path, payload)
        logger.info("saved %s", path)
        return path

    def _finish(self, status: str) -> None:
        self.metrics["status"] = status
        self.metrics["timings"]["total_seconds"] = time.perf_counter() - self._started
        self.metrics["timings"]["train_seconds"] = {
            k: v.get("train_seconds") for k, v in self.metrics["code_lengths"].items()
        }
        self._write_metrics()

    def _write_metrics(self) -> None:
        write_json(self.directory / "metrics.json", self.metrics)
