"""Figures of training runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Union

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg", "widget", "ipympl"):
    matplotlib.use("Agg")  # headless default; Jupyter kernels keep their inline backend

import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)


def plot_training_curves(metrics: Dict[str, Any], path: Optional[Union[str, Path]] = None):
    """Plot loss and query mAP per outer iteration, one line per code length.

    Args:
        metrics: the content of a run's ``metrics.json``.
        path: where to save the PNG; ``None`` only returns the figure.

    The mAP panel marks the best iteration of each code length (selected on the
    query set, as the release does) and draws the random-code baseline dashed.
    """
    figure, (loss_axis, map_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for key, entry in sorted(metrics.get("code_lengths", {}).items(), key=lambda item: int(item[0])):
        rows = entry.get("iterations", [])
        if not rows:
            continue
        iterations = [row["iteration"] for row in rows]
        line, = loss_axis.plot(iterations, [row["loss"] for row in rows], marker=".", label=f"{key} bits")
        evaluated = [row for row in rows if row.get("map") is not None]
        if evaluated:
            map_axis.plot([row["iteration"] for row in evaluated], [row["map"] for row in evaluated],
                          marker=".", color=line.get_color(), label=f"{key} bits")
            best = max(evaluated, key=lambda row: row["map"])
            map_axis.scatter([best["iteration"]], [best["map"]], s=60, facecolors="none",
                             edgecolors=line.get_color())
        if entry.get("random_baseline_map") is not None:
            map_axis.axhline(entry["random_baseline_map"], color=line.get_color(), linestyle=":", linewidth=1)
    loss_axis.set_xlabel("outer iteration")
    loss_axis.set_ylabel("ADSH loss (mean over batches)")
    loss_axis.set_yscale("log")
    loss_axis.set_title("training loss")
    map_axis.set_xlabel("outer iteration")
    map_axis.set_ylabel("mAP (query vs learned B)")
    map_axis.set_ylim(0, 1)
    map_axis.set_title("query mAP (circle: best, dotted: random codes)")
    for axis in (loss_axis, map_axis):
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.suptitle(f"{metrics.get('dataset', '')} / {metrics.get('run_name', '')} ({metrics.get('arch', '')})")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
        logger.info("saved %s", path)
    return figure
