"""ipywidgets explorer of the SEM attention of a trained SEMICON run.

:func:`build_attention_explorer` returns an :class:`AttentionExplorer`, an
``ipywidgets.VBox`` with controls for the code length, split, class, image,
stage and overlay strength. It shows the overlays, the image's hash code with
its global and local bit groups, and the nearest database images by Hamming
distance to the learned database codes B. Pictures are PNG bytes in
``ipywidgets.Image`` widgets, so the explorer builds and updates without a
frontend (in tests, or in a papermill run).
"""

from __future__ import annotations

import html
import io
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import ipywidgets as widgets
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .attention import SPLITS, STAGE_TITLES, STAGES, AttentionBatch, AttentionRun, stage_panel
from .data import load_rgb

logger = logging.getLogger(__name__)

ALL_STAGES = "all stages"
# Background colour of each bit group in the code display.
GROUP_COLOURS = {"global": "#dbe9f6", "local1": "#fde2c8", "local2": "#d9f0d3", "local3": "#eadcf2"}
LABEL_PIXELS = 20
# Errors that a control change can raise while loading images or running the network.
# The explorer shows them in its status line, because a widget callback's exception is not shown in the cell.
DISPLAYED_ERRORS = (OSError, ValueError, RuntimeError, IndexError)


def encode_png(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _label_font(size: int = 13) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no size argument
        return ImageFont.load_default()


def compose_panels(panels: Sequence[np.ndarray], labels: Sequence[str], panel_pixels: int) -> np.ndarray:
    """Place pictures side by side, each resized to ``panel_pixels`` square under a text label.

    Returns an (LABEL_PIXELS + panel_pixels, n * panel_pixels + gaps, 3) uint8 array on white.
    """
    gap = 6
    width = len(panels) * panel_pixels + (len(panels) - 1) * gap
    canvas = Image.new("RGB", (width, LABEL_PIXELS + panel_pixels), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _label_font()
    for position, (panel, label) in enumerate(zip(panels, labels)):
        left = position * (panel_pixels + gap)
        picture = Image.fromarray(panel).resize((panel_pixels, panel_pixels), Image.Resampling.BILINEAR)
        canvas.paste(picture, (left, LABEL_PIXELS))
        draw.text((left + 2, 3), label, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def render_stages(
    batch: AttentionBatch, position: int, stage: str = ALL_STAGES, alpha: float = 0.5, panel_pixels: int = 160
) -> np.ndarray:
    """Render one image of ``batch`` at one stage (doubled in size) or at all stages in order."""
    if stage == ALL_STAGES:
        panels = [stage_panel(batch, position, name, alpha) for name in STAGES]
        return compose_panels(panels, [STAGE_TITLES[name] for name in STAGES], panel_pixels)
    if stage not in STAGES:
        raise ValueError(f"Invalid stage {stage!r}; expected {ALL_STAGES!r} or one of {list(STAGES)}")
    return compose_panels([stage_panel(batch, position, stage, alpha)], [STAGE_TITLES[stage]], 2 * panel_pixels)


def code_html(
    code: Sequence[int],
    bit_groups: Sequence[Tuple[str, int, int]],
    stored: Optional[Sequence[int]] = None,
    stored_name: str = "the code stored in the checkpoint",
) -> str:
    """Format a {-1, +1} code as HTML bits (1 for +1, 0 for -1), one coloured box per bit group.

    When ``stored`` is given, a line below reports in how many bits the code
    differs from it, naming it ``stored_name``.
    """
    code = np.asarray(code).ravel()
    boxes = []
    for name, start, stop in bit_groups:
        bits = "".join("1" if value > 0 else "0" for value in code[start:stop])
        colour = GROUP_COLOURS.get(name, "#eeeeee")
        boxes.append(
            f'<span style="background:{colour};padding:2px 6px;margin-right:4px;border-radius:3px">'
            f'<small>{html.escape(name)} ({stop - start})</small> <code>{bits}</code></span>'
        )
    text = f"<div><b>code ({len(code)} bits):</b> {''.join(boxes)}</div>"
    if stored is not None:
        differing = int(np.sum(np.asarray(stored).ravel() != code))
        relation = "equal to" if differing == 0 else f"differs in {differing} bit(s) from"
        text += f"<div><small>{relation} {html.escape(stored_name)}</small></div>"
    return text


def _thumbnail_png(path: str, pixels: int) -> bytes:
    picture = load_rgb(path)
    picture.thumbnail((pixels, pixels), Image.Resampling.BILINEAR)
    return encode_png(np.asarray(picture))


class AttentionExplorer(widgets.VBox):
    """Interactive view of the SEM stages, the hash code and the nearest database images of one run.

    Args:
        run: an :class:`AttentionRun` or a run folder.
        code_length: initial code length; ``None`` takes the largest.
        split: initial split, ``"query"`` or ``"database"``.
        overlay_alpha: initial overlay strength in [0, 1].
        stage: ``"all stages"`` or one of ``STAGES``.
        class_batch_size: maximum images per extraction batch. The maps of the
            selected image are computed together with the other images of its
            class in the split, in blocks of this size, because with
            ``sem_statistics="batch"`` the masks depend on the batch.
        topk: number of nearest database images shown.
        panel_pixels: side of one stage picture in pixels.

    Raises:
        NoAttentionError: the run's architecture has no attention branch.
    """

    def __init__(
        self,
        run: Union[AttentionRun, str, Path],
        code_length: Optional[int] = None,
        split: str = "query",
        overlay_alpha: float = 0.5,
        stage: str = ALL_STAGES,
        class_batch_size: int = 16,
        topk: int = 5,
        panel_pixels: int = 160,
    ) -> None:
        super().__init__()
        self.run = run if isinstance(run, AttentionRun) else AttentionRun(run)
        if class_batch_size < 1:
            raise ValueError(f"class_batch_size must be at least 1; got {class_batch_size!r}")
        if split not in SPLITS:
            raise ValueError(f"Invalid split {split!r}; expected one of {list(SPLITS)}")
        self.class_batch_size = int(class_batch_size)
        self.topk = int(topk)
        self.panel_pixels = int(panel_pixels)
        self._cache: Dict[Tuple[int, str, int, int], Tuple[List[int], AttentionBatch]] = {}
        self._configuring = False
        initial_length = self.run.resolve_code_length(code_length)
        self.run.model(initial_length)  # raises NoAttentionError before any widget is shown

        self.code_length_control = widgets.Dropdown(
            options=[(f"{k} bits", k) for k in self.run.code_lengths], value=initial_length, description="code length"
        )
        self.split_control = widgets.ToggleButtons(
            options=list(SPLITS), value=split, description="split", style={"button_width": "90px"}
        )
        self.class_control = widgets.Dropdown(description="class", layout=widgets.Layout(width="420px"))
        self.image_control = widgets.IntSlider(min=0, max=0, value=0, description="image", continuous_update=False)
        self.stage_control = widgets.Dropdown(options=[ALL_STAGES, *STAGES], value=stage, description="stage")
        self.alpha_control = widgets.FloatSlider(
            min=0.0, max=1.0, step=0.05, value=float(overlay_alpha), description="overlay", readout_format=".2f"
        )
        self.image_label = widgets.HTML()
        self.status = widgets.HTML()
        self.view = widgets.Image(format="png")
        self.code_view = widgets.HTML()
        self.neighbours = widgets.HBox()

        self.children = [
            widgets.HTML(f"<b>SEM attention explorer</b>: run <code>{html.escape(str(self.run.directory))}</code>"),
            widgets.HBox([self.code_length_control, self.split_control]),
            widgets.HBox([self.class_control, self.image_control, self.image_label]),
            widgets.HBox([self.stage_control, self.alpha_control]),
            self.status,
            self.view,
            self.code_view,
            widgets.HTML(f"<b>nearest database images</b> (Hamming distance to the learned codes B, top {self.topk})"),
            self.neighbours,
        ]

        self._set_class_options()
        self.code_length_control.observe(self._on_data_change, names="value")
        self.split_control.observe(self._on_data_change, names="value")
        self.class_control.observe(self._on_class_change, names="value")
        self.image_control.observe(self._on_image_change, names="value")
        self.stage_control.observe(self._on_view_change, names="value")
        self.alpha_control.observe(self._on_view_change, names="value")
        self.refresh()

    def __repr__(self) -> str:
        # The default widget repr would print every child, PNG bytes included.
        return f"AttentionExplorer(run={str(self.run.directory)!r}, code_length={self.code_length}, split={self.split!r})"

    # -- state ----------------------------------------------------------------

    @property
    def code_length(self) -> int:
        return int(self.code_length_control.value)

    @property
    def split(self) -> str:
        return str(self.split_control.value)

    def class_indices(self) -> List[int]:
        """Return the split indices of the selected class, in split order."""
        labels = self.run.split(self.split).labels
        return [int(index) for index in np.flatnonzero(labels == self.class_control.value)]

    def selected_index(self) -> int:
        """Return the split index of the selected image."""
        return self.class_indices()[self.image_control.value]

    def selected_batch(self) -> Tuple[List[int], AttentionBatch, int]:
        """Return the split indices of the selected image's extraction block, its batch and its position there."""
        members = self.class_indices()
        position = self.image_control.value
        block = position // self.class_batch_size
        key = (self.code_length, self.split, int(self.class_control.value), block)
        if key not in self._cache:
            indices = members[block * self.class_batch_size : (block + 1) * self.class_batch_size]
            self._cache[key] = (indices, self.run.extract(self.code_length, self.split, indices))
        indices, batch = self._cache[key]
        return indices, batch, position - block * self.class_batch_size

    # -- updates --------------------------------------------------------------

    def _set_class_options(self) -> None:
        items = self.run.split(self.split)
        counts = items.class_counts()
        options = [(f"{class_id}: {name} ({counts[class_id]})", class_id)
                   for class_id, name in enumerate(items.class_names) if counts[class_id] > 0]
        previous = self.class_control.value
        self._configuring = True
        try:
            self.class_control.options = options
            valid = [value for _, value in options]
            self.class_control.value = previous if previous in valid else valid[0]
            self._set_image_range()
        finally:
            self._configuring = False

    def _set_image_range(self) -> None:
        count = len(self.class_indices())
        self.image_control.value = min(self.image_control.value, count - 1)
        self.image_control.max = count - 1

    def _on_data_change(self, change) -> None:
        self._set_class_options()
        self.refresh()

    def _on_class_change(self, change) -> None:
        if self._configuring:
            return
        self._configuring = True
        try:
            self.image_control.value = 0
            self._set_image_range()
        finally:
            self._configuring = False
        self.refresh()

    def _on_image_change(self, change) -> None:
        if not self._configuring:
            self.refresh()

    def _on_view_change(self, change) -> None:
        self._show_error_or(self._render_view)

    def _show_error_or(self, action) -> bool:
        try:
            action()
        except DISPLAYED_ERRORS as error:
            logger.exception("attention explorer update failed")
            self.status.value = f'<span style="color:#b00020">update failed: {html.escape(str(error))}</span>'
            return False
        return True

    def refresh(self) -> None:
        """Recompute every view for the current control values."""
        if self._show_error_or(self._render_all):
            indices, batch, _ = self.selected_batch()
            scope = "as one batch" if batch.statistics == "batch" else "(per-image mask statistics)"
            self.status.value = (
                f"<small>maps of {len(indices)} {self.split} image(s) of this class, "
                f"#{indices[0]}-#{indices[-1]}, computed {scope}; sem_statistics="
                f"{batch.statistics!r}, alpha={batch.alpha}</small>"
            )

    def _render_all(self) -> None:
        self._render_view()
        self._render_code_and_neighbours()

    def _render_view(self) -> None:
        _, batch, position = self.selected_batch()
        picture = render_stages(batch, position, self.stage_control.value, self.alpha_control.value, self.panel_pixels)
        self.view.value = encode_png(picture)
        index = self.selected_index()
        path = Path(self.run.split(self.split).paths[index])
        self.image_label.value = f"<small>{self.split} #{index}: {html.escape(path.name)}</small>"

    def _render_code_and_neighbours(self) -> None:
        _, batch, position = self.selected_batch()
        index = self.selected_index()
        code = batch.codes[position]
        model = self.run.model(self.code_length)
        stored = self.run.stored_code(self.code_length, self.split, index)
        if self.split == "database":
            stored_name = "the image's learned database code in B (B is optimised jointly with the network, not its output)"
        else:
            stored_name = ("the query code stored in the checkpoint (computed in another batch, "
                           "so with sem_statistics='batch' some bits may differ)")
        self.code_view.value = code_html(code, model.bit_groups, stored, stored_name)

        database = self.run.split("database")
        label = int(self.run.split(self.split).labels[index])
        exclude = index if self.split == "database" else None
        tiles = []
        for neighbour, distance in self.run.nearest_database(self.code_length, code, self.topk, exclude=exclude):
            neighbour_label = int(database.labels[neighbour])
            colour = "#1b7f3b" if neighbour_label == label else "#b00020"
            caption = widgets.HTML(
                f'<div style="width:110px;font-size:11px;line-height:1.2">#{neighbour} '
                f'<span style="color:{colour}">{html.escape(database.class_names[neighbour_label])}</span>'
                f"<br>distance {distance}</div>"
            )
            tiles.append(widgets.VBox([widgets.Image(value=_thumbnail_png(database.paths[neighbour], 96),
                                                     format="png"), caption]))
        self.neighbours.children = tiles


def build_attention_explorer(
    run: Union[AttentionRun, str, Path],
    code_length: Optional[int] = None,
    split: str = "query",
    overlay_alpha: float = 0.5,
    **options,
) -> AttentionExplorer:
    """Build the attention explorer of a run folder; ``options`` go to :class:`AttentionExplorer`."""
    return AttentionExplorer(run, code_length=code_length, split=split, overlay_alpha=overlay_alpha, **options)
