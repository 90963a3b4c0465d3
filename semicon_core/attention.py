"""SEM attention maps of trained SEMICON runs: extraction, overlays, statistics and grid figures.

SEMICON's SEM branch computes three maps A1, A2, A3 at the resolution of the
backbone's layer3 output (14x14 for a 224 input). Before the second and the
third head it multiplies the trunk features by a suppression mask that damps
the positions the previous map attended to most, so each stage is pushed to
new regions. The stages in display order are ``image | A1 | mask1 | A2 |
mask2 | A3``.

With ``sem_statistics="batch"`` (the default, as in the authors' release) the
mask of an image is standardised with statistics over the whole batch, so its
masks, and therefore A2 and A3, depend on the other images in the batch.
:func:`extract_attention` keeps the model's setting as trained and treats the
images it is given as one batch.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg", "widget", "ipympl"):
    matplotlib.use("Agg")  # headless default; Jupyter kernels keep their inline backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from .adsh import signed  # noqa: E402
from .data import DatasetSplits, Split, build_splits, build_transform, load_rgb  # noqa: E402
from .data.dataset import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from .evaluation import hamming_distance  # noqa: E402
from .paths import outputs_root, project_root  # noqa: E402
from .progress import progress_bar  # noqa: E402
from .runs import load_checkpoint, write_json  # noqa: E402

logger = logging.getLogger(__name__)

STAGES = ("image", "A1", "mask1", "A2", "mask2", "A3")
MAP_STAGES = ("A1", "A2", "A3")
MASK_STAGES = ("mask1", "mask2")
STAGE_TITLES = {
    "image": "image",
    "A1": "A1",
    "mask1": "mask 1 (before head 2)",
    "A2": "A2",
    "mask2": "mask 2 (before head 3)",
    "A3": "A3",
}
SPLITS = ("query", "database")
# Suppression masks 2 - p' lie in [0, 2]: below 1 damps a position, above 1 boosts it.
# The display scale of a batch's masks is 1 +- (largest deviation from 1), at least this.
MIN_MASK_HALF_RANGE = 1e-6
MAP_COLORMAP = "jet"
MASK_COLORMAP = "coolwarm"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint_(\d+)bits\.pt$")


class NoAttentionError(ValueError):
    """The checkpoint's network has no SEM attention branch (for example the ADSH baseline)."""


# ---------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------


@dataclass
class AttentionBatch:
    """SEM maps, suppression masks and codes of one batch of images.

    Attributes:
        images: (B, H, W, 3) float32 network inputs in [0, 1], ImageNet
            normalisation undone, so maps upsampled to (H, W) line up.
        attention_raw: (B, 3, h, w) float32 maps A1..A3 as the heads output
            them (non-negative, after ReLU).
        suppression_raw: (B, 2, h, w) float32 masks in [0, 2] applied to the
            trunk features before head 2 and head 3.
        outputs: (B, k) float32 tanh outputs of the hash head.
        statistics: the model's ``sem_statistics``, ``"batch"`` or ``"image"``.
        alpha: the model's SEM exponent.
    """

    images: np.ndarray
    attention_raw: np.ndarray
    suppression_raw: np.ndarray
    outputs: np.ndarray
    statistics: str
    alpha: float

    def __len__(self) -> int:
        return len(self.images)

    @property
    def attention(self) -> np.ndarray:
        """(B, 3, h, w) maps scaled to [0, 1] per image and map by min-max; constant maps become 0."""
        return normalize_per_map(self.attention_raw)

    @property
    def mask_half_range(self) -> float:
        """Largest distance of any mask value of the batch from the neutral value 1."""
        return max(float(np.abs(self.suppression_raw - 1.0).max(initial=0.0)), MIN_MASK_HALF_RANGE)

    @property
    def suppression(self) -> np.ndarray:
        """(B, 2, h, w) masks mapped to [0, 1] with 0.5 for the neutral value 1.

        Every mask of the batch shares one scale, ``1 +- mask_half_range``, so
        colours compare across images and both masks. Trained masks often stay
        close to 1, where the fixed [0, 2] range would show no contrast.
        """
        return (0.5 + (self.suppression_raw - 1.0) / (2.0 * self.mask_half_range)).astype(np.float32)

    @property
    def codes(self) -> np.ndarray:
        """(B, k) int8 codes in {-1, +1}, ``sign(outputs)`` with 0 mapped to +1."""
        return signed(torch.from_numpy(self.outputs)).to(torch.int8).numpy()

    def stage_maps(self, stage: str, normalized: bool = True) -> np.ndarray:
        """Return the (B, h, w) maps of ``stage`` (one of ``A1 .. A3``, ``mask1``, ``mask2``)."""
        if stage in MAP_STAGES:
            maps = self.attention if normalized else self.attention_raw
            return maps[:, MAP_STAGES.index(stage)]
        if stage in MASK_STAGES:
            masks = self.suppression if normalized else self.suppression_raw
            return masks[:, MASK_STAGES.index(stage)]
        raise ValueError(f"Invalid stage {stage!r}; expected one of {list(MAP_STAGES + MASK_STAGES)}")


def normalize_per_map(maps: np.ndarray) -> np.ndarray:
    """Scale each (h, w) map of a (..., h, w) array to [0, 1] by its own min and max.

    A constant map (for example an all-zero map after ReLU) becomes all zeros
    instead of NaN.
    """
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - low
    safe_span = np.where(span > 0, span, 1.0)
    return np.where(span > 0, (maps - low) / safe_span, 0.0).astype(np.float32)


def denormalize_images(images: torch.Tensor) -> np.ndarray:
    """Undo the ImageNet normalisation of (B, 3, H, W) inputs; return (B, H, W, 3) float32 in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    restored = (images * std + mean).clamp(0.0, 1.0)
    return restored.permute(0, 2, 3, 1).detach().cpu().numpy().astype(np.float32)


def extract_attention(model: torch.nn.Module, images: torch.Tensor) -> AttentionBatch:
    """Run ``model`` in eval mode on one batch and collect its SEM maps and masks.

    The model keeps its ``sem_statistics`` as trained. With ``"batch"``, the
    masks of each image depend on the other images of ``images``.

    Args:
        model: a SEMICON network (anything with ``forward_with_attention``).
        images: (B, 3, H, W) float ImageNet-normalised images, such as the
            output of ``build_transform("eval", size)``.

    Raises:
        NoAttentionError: the model has no attention branch (ADSH baseline).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W); got {tuple(images.shape)}")
    arch = getattr(model, "config", {}).get("arch")
    if arch != "semicon" or not hasattr(model, "forward_with_attention"):
        raise NoAttentionError(
            f"the model (arch={arch!r}) has no SEM attention branch; attention maps exist only for arch='semicon'"
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            result = model.forward_with_attention(images.to(device))
    finally:
        model.train(was_training)
    attention_module = model.attention
    return AttentionBatch(
        images=denormalize_images(images),
        attention_raw=result["attention"].float().cpu().numpy(),
        suppression_raw=result["suppression"].float().cpu().numpy(),
        outputs=result["outputs"].float().cpu().numpy(),
        statistics=attention_module.statistics,
        alpha=attention_module.alpha,
    )


# ---------------------------------------------------------------------------
# Upsampling and overlays
# ---------------------------------------------------------------------------


def upsample_maps(maps: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize maps of shape (h, w), (B, h, w) or (B, C, h, w) to ``size`` = (H, W) bilinearly.

    Uses ``torch.nn.functional.interpolate`` with ``align_corners=False``, so
    each map cell covers an equal block of the image. Returns float32.
    """
    array = np.asarray(maps, dtype=np.float32)
    if array.ndim not in (2, 3, 4):
        raise ValueError(f"maps must have 2 to 4 dimensions (..., h, w); got shape {array.shape}")
    leading = array.shape[:-2]
    flat = torch.from_numpy(np.ascontiguousarray(array)).reshape(1, -1, *array.shape[-2:])
    resized = F.interpolate(flat, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
    return resized.reshape(*leading, *resized.shape[-2:]).numpy()


def _image_as_float(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be an RGB array of shape (H, W, 3); got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def overlay(
    image: np.ndarray,
    heatmap: np.ndarray,
    alpha: float = 0.5,
    cmap: str = MAP_COLORMAP,
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> np.ndarray:
    """Blend a colour-mapped heat map onto an RGB image.

    Args:
        image: (H, W, 3) uint8, or float in [0, 1].
        heatmap: (h, w) values; upsampled bilinearly to (H, W) when the shapes
            differ, then clipped to [vmin, vmax] and coloured with ``cmap``.
        alpha: weight of the heat map in [0, 1]; 0 returns the image unchanged.
        cmap: matplotlib colormap name.
        vmin, vmax: the values at the two ends of the colormap.

    Returns:
        (H, W, 3) uint8 array ``(1 - alpha) * image + alpha * colour``.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}")
    if not vmax > vmin:
        raise ValueError(f"vmax must be greater than vmin; got vmin={vmin!r}, vmax={vmax!r}")
    base = _image_as_float(image)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must have shape (h, w); got shape {heat.shape}")
    if heat.shape != base.shape[:2]:
        heat = upsample_maps(heat, base.shape[:2])
    scaled = np.clip((heat - vmin) / (vmax - vmin), 0.0, 1.0)
    colour = matplotlib.colormaps[cmap](scaled)[..., :3].astype(np.float32)
    blended = (1.0 - alpha) * base + alpha * colour
    return np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)


def stage_panel(batch: AttentionBatch, index: int, stage: str, alpha: float = 0.5) -> np.ndarray:
    """Return the (H, W, 3) uint8 picture of one image at one stage: the image itself or an overlay.

    Maps use their per-image [0, 1] scaling with the ``jet`` colormap. Masks use
    the batch-wide scale of ``AttentionBatch.suppression`` with ``coolwarm``, so
    blue marks suppressed and red boosted positions, and white is neutral.
    """
    image = batch.images[index]
    if stage == "image":
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    if stage in MAP_STAGES:
        return overlay(image, batch.stage_maps(stage)[index], alpha, MAP_COLORMAP)
    if stage in MASK_STAGES:
        return overlay(image, batch.stage_maps(stage)[index], alpha, MASK_COLORMAP)
    raise ValueError(f"Invalid stage {stage!r}; expected one of {list(STAGES)}")


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def _correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Return the Pearson correlation of two maps, or NaN when either is constant."""
    a = first.ravel() - first.mean()
    b = second.ravel() - second.mean()
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def _mean_or_none(values: Sequence[float]) -> Optional[float]:
    finite = [value for value in values if math.isfinite(value)]
    return float(np.mean(finite)) if finite else None


def _peak(values: np.ndarray) -> Tuple[int, int]:
    row, column = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(row), int(column)


def attention_statistics(batch: AttentionBatch) -> Dict[str, Any]:
    """Summarise how the three SEM stages differ, as plain JSON-ready values.

    Returns a dict with:

    - ``per_stage``: for each of A1..A3, the mean, standard deviation and
      maximum of the raw map over the batch, and the share of all-zero maps.
      For each mask, its mean, minimum, maximum and the share of positions
      below 1 (suppressed).
    - ``pairwise_correlation``: mean over images of the Pearson correlation
      between A1/A2, A1/A3 and A2/A3 (``None`` when every pair has a constant
      map), with ``pairs_used`` counting the images that entered each mean.
    - ``mask_next_map_correlation``: the same between mask1 and A2 and between
      mask2 and A3; positive values mean the next map grew where the mask boosted.
    - ``peaks``: per image, the (row, column) map cell of each map's maximum.
    - ``distinct_peak_fraction``: share of images whose three peaks are at three
      different cells; ``mean_peak_distance``: mean distance in map cells
      between the peaks of consecutive stages.
    """
    raw = batch.attention_raw
    masks = batch.suppression_raw
    per_stage: Dict[str, Dict[str, float]] = {}
    for index, stage in enumerate(MAP_STAGES):
        maps = raw[:, index]
        per_stage[stage] = {
            "mean": float(maps.mean()),
            "std": float(maps.std()),
            "max": float(maps.max()),
            "zero_map_fraction": float(np.mean([not np.any(single) for single in maps])),
        }
    for index, stage in enumerate(MASK_STAGES):
        values = masks[:, index]
        per_stage[stage] = {
            "mean": float(values.mean()),
            "min": float(values.min()),
            "max": float(values.max()),
            "suppressed_fraction": float(np.mean(values < 1.0)),
        }

    pairwise = {}
    for first, second in itertools.combinations(range(len(MAP_STAGES)), 2):
        values = [_correlation(raw[i, first], raw[i, second]) for i in range(len(batch))]
        pairwise[f"{MAP_STAGES[first]}-{MAP_STAGES[second]}"] = {
            "mean": _mean_or_none(values),
            "pairs_used": sum(math.isfinite(value) for value in values),
        }

    mask_next = {}
    for mask_index, stage in enumerate(MASK_STAGES):
        values = [_correlation(masks[i, mask_index], raw[i, mask_index + 1]) for i in range(len(batch))]
        mask_next[f"{stage}-{MAP_STAGES[mask_index + 1]}"] = {
            "mean": _mean_or_none(values),
            "pairs_used": sum(math.isfinite(value) for value in values),
        }

    peaks = [{stage: list(_peak(raw[i, j])) for j, stage in enumerate(MAP_STAGES)} for i in range(len(batch))]
    distinct = [len({tuple(cells) for cells in row.values()}) == len(MAP_STAGES) for row in peaks]
    distances = [
        math.dist(row[MAP_STAGES[j]], row[MAP_STAGES[j + 1]]) for row in peaks for j in range(len(MAP_STAGES) - 1)
    ]
    return {
        "num_images": len(batch),
        "map_size": list(raw.shape[-2:]),
        "sem_statistics": batch.statistics,
        "alpha": batch.alpha,
        "per_stage": per_stage,
        "pairwise_correlation": pairwise,
        "mask_next_map_correlation": mask_next,
        "peaks": peaks,
        "distinct_peak_fraction": float(np.mean(distinct)) if distinct else None,
        "mean_peak_distance": float(np.mean(distances)) if distances else None,
    }


def _format_number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_attention_statistics(statistics: Dict[str, Any]) -> str:
    """Render :func:`attention_statistics` output as a short plain-text report."""
    lines = [
        f"{statistics['num_images']} images, maps of {statistics['map_size'][0]}x{statistics['map_size'][1]} cells, "
        f"sem_statistics={statistics['sem_statistics']!r}, alpha={statistics['alpha']}",
        "per stage:",
    ]
    for stage in MAP_STAGES:
        entry = statistics["per_stage"][stage]
        lines.append(
            f"  {stage:5s} mean {entry['mean']:.4f}  std {entry['std']:.4f}  max {entry['max']:.4f}  "
            f"all-zero maps {entry['zero_map_fraction']:.0%}"
        )
    for stage in MASK_STAGES:
        entry = statistics["per_stage"][stage]
        lines.append(
            f"  {stage:5s} mean {entry['mean']:.4f}  min {entry['min']:.4f}  max {entry['max']:.4f}  "
            f"suppressed positions {entry['suppressed_fraction']:.0%}"
        )
    lines.append("mean correlation between maps of the same image:")
    for name, entry in statistics["pairwise_correlation"].items():
        lines.append(f"  {name}: {_format_number(entry['mean'])} ({entry['pairs_used']} images)")
    lines.append("mean correlation of each mask with the next map:")
    for name, entry in statistics["mask_next_map_correlation"].items():
        lines.append(f"  {name}: {_format_number(entry['mean'])} ({entry['pairs_used']} images)")
    lines.append(
        f"peaks at three different cells: {_format_number(statistics['distinct_peak_fraction'])} of images, "
        f"mean distance between consecutive peaks {_format_number(statistics['mean_peak_distance'])} cells"
    )
    for index, row in enumerate(statistics["peaks"]):
        cells = ", ".join(f"{stage} {tuple(cell)}" for stage, cell in row.items())
        lines.append(f"  image {index}: peaks (row, column) {cells}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Grid figure
# ---------------------------------------------------------------------------


def plot_attention_grid(
    batch: AttentionBatch,
    alpha: float = 0.5,
    row_titles: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    path: Optional[Union[str, Path]] = None,
    panel_inches: float = 1.9,
):
    """Draw images x stages (``image | A1 | mask1 | A2 | mask2 | A3``) and optionally save a PNG.

    Args:
        batch: output of :func:`extract_attention`.
        alpha: overlay strength in [0, 1].
        row_titles: one label per image, shown left of its row.
        title: figure title.
        path: where to save the PNG; ``None`` only returns the figure.
        panel_inches: side of one panel in inches.

    Returns:
        The matplotlib figure, with colour bars for the maps (per-image
        [0, 1] scale) and for the masks (raw values, batch-wide scale).
    """
    rows, columns = len(batch), len(STAGES)
    if rows == 0:
        raise ValueError("the batch has no images to plot")
    if row_titles is not None and len(row_titles) != rows:
        raise ValueError(f"got {len(row_titles)} row titles for {rows} images")

    # Margins in inches: left for row titles, top for the titles, bottom for the colour bars.
    left, right, top, bottom = 1.2, 0.2, 0.9 if title else 0.5, 0.9
    width = panel_inches * columns * 1.08 + left + right
    height = panel_inches * rows * 1.08 + top + bottom
    figure, axes = plt.subplots(rows, columns, figsize=(width, height), squeeze=False)
    figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                           top=1 - top / height, wspace=0.08, hspace=0.08)
    for row in range(rows):
        for column, stage in enumerate(STAGES):
            axis = axes[row, column]
            axis.imshow(stage_panel(batch, row, stage, alpha))
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(STAGE_TITLES[stage], fontsize=9)
        if row_titles is not None:
            axes[row, 0].set_ylabel(row_titles[row], fontsize=8)

    half_range = batch.mask_half_range
    scales = (
        (matplotlib.colors.Normalize(0.0, 1.0), MAP_COLORMAP, "A1-A3, min-max scaled per image"),
        (matplotlib.colors.Normalize(1.0 - half_range, 1.0 + half_range), MASK_COLORMAP,
         "mask value (<1 suppressed, >1 boosted)"),
    )
    bar_height = 0.15 / height
    bar_bottom = 0.45 / height
    inner_left, inner_width = left / width, 1 - (left + right) / width
    for position, (norm, cmap, label) in enumerate(scales):
        axis = figure.add_axes([inner_left + inner_width * (0.04 + 0.5 * position), bar_bottom,
                                inner_width * 0.42, bar_height])
        bar = figure.colorbar(matplotlib.cm.ScalarMappable(norm, cmap), cax=axis, orientation="horizontal")
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if title:
        figure.suptitle(title, fontsize=10, y=1 - 0.2 / height)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
        logger.info("saved %s", path)
    return figure


# ---------------------------------------------------------------------------
# Run folders
# ---------------------------------------------------------------------------


def resolve_run_dir(run_dir: Union[str, Path]) -> Path:
    """Find a run folder given as an absolute path or relative to the working directory, the repository or the outputs root.

    Notebooks run with different working directories (``notebooks/`` in
    JupyterLab, the caller's under papermill), so
    ``outputs/typefaces/demo`` and ``typefaces/demo`` both work.
    """
    path = Path(run_dir).expanduser()
    if path.is_absolute() or path.is_dir():
        return path
    for base in (project_root(), outputs_root()):
        if (base / path).is_dir():
            return base / path
    return path


def available_code_lengths(run_dir: Union[str, Path]) -> List[int]:
    """Return the code lengths that have a ``checkpoint_<k>bits.pt`` in ``run_dir``, ascending."""
    directory = Path(run_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"run folder {directory} not found; pass the folder that the train notebook wrote")
    lengths = []
    for path in directory.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_file():
            lengths.append(int(match.group(1)))
    return sorted(lengths)


def default_image_indices(split: Split, num_images: int) -> List[int]:
    """Pick ``num_images`` items of ``split`` from evenly spaced classes, the first item of each.

    When ``num_images`` exceeds the number of classes, later picks take the
    next item of each class in turn. Returns fewer indices only when the
    split has fewer items.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1; got {num_images!r}")
    per_class = [list(np.flatnonzero(split.labels == class_id)) for class_id in range(split.num_classes)]
    per_class = [items for items in per_class if items]
    if not per_class:
        return []
    order = np.unique(np.linspace(0, len(per_class) - 1, min(num_images, len(per_class))).round().astype(int))
    class_order = list(order) + [c for c in range(len(per_class)) if c not in set(order)]
    chosen: List[int] = []
    for depth in range(max(len(items) for items in per_class)):
        for class_position in class_order:
            items = per_class[class_position]
            if depth < len(items):
                chosen.append(int(items[depth]))
                if len(chosen) == num_images:
                    return chosen
    return chosen


class AttentionRun:
    """Checkpoints and data of one training run folder, loaded on first use.

    Args:
        run_dir: a run folder with ``checkpoint_<k>bits.pt`` files, as written
            by ``notebooks/train.ipynb``; see :func:`resolve_run_dir` for
            relative paths.
        device: torch device for the networks; ``"cpu"`` works for every run.

    Raises:
        FileNotFoundError: the folder or its checkpoints are missing.
    """

    def __init__(self, run_dir: Union[str, Path], device: Union[str, torch.device] = "cpu") -> None:
        self.directory = resolve_run_dir(run_dir)
        self.code_lengths = available_code_lengths(self.directory)
        if not self.code_lengths:
            raise FileNotFoundError(
                f"no checkpoint_<k>bits.pt files in run folder {self.directory}; train the run first "
                f"(notebooks/train.ipynb) or pass another run_dir"
            )
        self.device = torch.device(device)
        self._checkpoints: Dict[int, Dict[str, Any]] = {}
        self._models: Dict[int, torch.nn.Module] = {}
        self._splits: Optional[DatasetSplits] = None

    def resolve_code_length(self, code_length: Optional[int] = None) -> int:
        """Return ``code_length``, or the largest available one for ``None``; raise if it has no checkpoint."""
        if code_length is None:
            return self.code_lengths[-1]
        if int(code_length) not in self.code_lengths:
            raise FileNotFoundError(
                f"run folder {self.directory} has no checkpoint for {code_length} bits; "
                f"available code lengths: {self.code_lengths}"
            )
        return int(code_length)

    def checkpoint(self, code_length: int) -> Dict[str, Any]:
        """Return the loaded checkpoint of ``code_length`` bits."""
        code_length = self.resolve_code_length(code_length)
        if code_length not in self._checkpoints:
            self._checkpoints[code_length] = load_checkpoint(self.directory / f"checkpoint_{code_length}bits.pt")
        return self._checkpoints[code_length]

    @property
    def params(self) -> Dict[str, Any]:
        """Training parameters recorded in the run's checkpoints (dataset, root, data_options, image_size, ...)."""
        return self.checkpoint(self.code_lengths[-1])["params"]

    @property
    def arch(self) -> Optional[str]:
        return self.checkpoint(self.code_lengths[-1]).get("model_config", {}).get("arch")

    def model(self, code_length: int) -> torch.nn.Module:
        """Return the trained network of ``code_length`` bits in eval mode.

        Raises:
            NoAttentionError: the run was trained with an architecture without
                attention, such as ``arch='baseline'``.
        """
        from .models import build_model

        code_length = self.resolve_code_length(code_length)
        if code_length not in self._models:
            checkpoint = self.checkpoint(code_length)
            config = dict(checkpoint.get("model_config") or {})
            arch = config.get("arch")
            if arch != "semicon":
                raise NoAttentionError(
                    f"run {self.directory} was trained with arch={arch!r}; only arch='semicon' has the SEM "
                    f"attention branch, so this run has no attention maps to show. Pick a run trained with "
                    f"arch='semicon'."
                )
            config.pop("pretrained", None)
            model = build_model(**config, pretrained="none")
            model.load_state_dict(checkpoint["model_state"])
            self._models[code_length] = model.to(self.device).eval()
        return self._models[code_length]

    @property
    def splits(self) -> DatasetSplits:
        """The run's query and database splits, rebuilt from the dataset options in its checkpoints."""
        if self._splits is None:
            params = self.params
            splits = build_splits(params["dataset"], params.get("root"), **(params.get("data_options") or {}))
            checkpoint = self.checkpoint(self.code_lengths[-1])
            for name, split in (("query", splits.query), ("database", splits.database)):
                stored = checkpoint.get(f"{name}_labels")
                if stored is not None and not np.array_equal(np.asarray(stored), split.labels):
                    raise ValueError(
                        f"the {name} split of {params['dataset']} under {splits.root} no longer matches run "
                        f"{self.directory}: {len(split)} images now, {len(stored)} labels in the checkpoint. "
                        f"Point root at the data the run was trained on."
                    )
            stored_hash = checkpoint.get("data_manifest_sha256")
            if stored_hash and stored_hash != splits.manifest_hash():
                logger.warning(
                    "the file list of %s under %s differs from the one run %s was trained on "
                    "(manifest sha256 %s now, %s in the checkpoint)",
                    params["dataset"], splits.root, self.directory, splits.manifest_hash()[:16], stored_hash[:16],
                )
            self._splits = splits
        return self._splits

    def split(self, name: str) -> Split:
        """Return the ``"query"`` or ``"database"`` split."""
        if name not in SPLITS:
            raise ValueError(f"Invalid split {name!r}; expected one of {list(SPLITS)}")
        return self.splits.query if name == "query" else self.splits.database

    def load_images(self, split: str, indices: Sequence[int], progress: str = "none") -> torch.Tensor:
        """Load items of a split with the run's eval transform; return (B, 3, S, S) float."""
        items = self.split(split)
        bad = [index for index in indices if not 0 <= int(index) < len(items)]
        if bad:
            raise IndexError(f"image indices {bad} are out of range for the {split} split of {len(items)} images")
        transform = build_transform("eval", int(self.params["image_size"]))
        tensors = [
            transform(load_rgb(items.paths[int(index)]))
            for index in progress_bar(list(indices), mode=progress, desc="loading images", leave=False)
        ]
        return torch.stack(tensors)

    def extract(self, code_length: int, split: str, indices: Sequence[int], progress: str = "none") -> AttentionBatch:
        """Extract maps, masks and codes for the given items, processed as one batch."""
        if len(indices) == 0:
            raise ValueError("give at least one image index")
        model = self.model(code_length)
        return extract_attention(model, self.load_images(split, indices, progress))

    def stored_code(self, code_length: int, split: str, index: int) -> Optional[np.ndarray]:
        """Return the code the checkpoint stores for an item: learned B for the database, network codes for queries."""
        codes = self.checkpoint(code_length).get("database_codes" if split == "database" else "query_codes")
        return None if codes is None else codes[int(index)].numpy()

    def nearest_database(
        self, code_length: int, code: np.ndarray, topk: int = 5, exclude: Optional[int] = None
    ) -> List[Tuple[int, int]]:
        """Rank database items by Hamming distance between ``code`` and the learned database codes B.

        Ties keep database order. ``exclude`` drops one database index (the
        image itself when it belongs to the database).

        Returns:
            up to ``topk`` ``(database index, Hamming distance)`` pairs, nearest first.
        """
        database_codes = self.checkpoint(code_length).get("database_codes")
        if database_codes is None:
            raise ValueError(f"the {code_length}-bit checkpoint of {self.directory} stores no database codes")
        distances = hamming_distance(np.asarray(code).reshape(1, -1), database_codes)[0]
        order = torch.sort(distances, stable=True).indices.tolist()
        ranked = [(int(index), int(distances[index])) for index in order if index != exclude]
        return ranked[:topk]

    def attention_directory(self) -> Path:
        """Return ``<run>/attention``, created if missing."""
        path = self.directory / "attention"
        path.mkdir(parents=True, exist_ok=True)
        return path


def save_attention_outputs(
    run: AttentionRun,
    code_length: int,
    split: str,
    indices: Sequence[int],
    batch: AttentionBatch,
    alpha: float = 0.5,
) -> Dict[str, Any]:
    """Write the grid PNG and the statistics JSON of one extraction into ``<run>/attention/``.

    Files: ``attention_grid_<k>bits.png`` and ``attention_stats_<k>bits.json``.
    The JSON contains :func:`attention_statistics` plus the run, split, image
    indices, paths and class names.

    Returns:
        dict with ``"grid"`` and ``"stats"`` (the written paths), ``"figure"`` and ``"statistics"``.
    """
    items = run.split(split)
    class_names = [items.class_names[int(items.labels[index])] for index in indices]
    row_titles = [f"{split} #{index}\n{name}" for index, name in zip(indices, class_names)]
    directory = run.attention_directory()
    grid_path = directory / f"attention_grid_{code_length}bits.png"
    stats_path = directory / f"attention_stats_{code_length}bits.json"
    figure = plot_attention_grid(
        batch,
        alpha=alpha,
        row_titles=row_titles,
        title=f"{run.directory.name}: SEM stages, {code_length} bits, sem_statistics={batch.statistics!r} "
        f"over these {len(batch)} images as one batch",
        path=grid_path,
    )
    statistics = attention_statistics(batch)
    payload = {
        "run": str(run.directory),
        "code_length": int(code_length),
        "split": split,
        "image_indices": [int(index) for index in indices],
        "paths": [items.paths[int(index)] for index in indices],
        "class_names": class_names,
        "batch_note": "masks computed over the listed images as one batch"
        if batch.statistics == "batch" else "masks computed per image",
        **statistics,
    }
    write_json(stats_path, payload)
    logger.info("saved %s", stats_path)
    return {"grid": grid_path, "stats": stats_path, "figure": figure, "statistics": statistics}
