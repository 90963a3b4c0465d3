"""SEM attention extraction, overlays, the explorer widget and the attention notebook."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from semicon_core.attention import (
    STAGES,
    AttentionBatch,
    AttentionRun,
    NoAttentionError,
    attention_statistics,
    available_code_lengths,
    default_image_indices,
    extract_attention,
    format_attention_statistics,
    normalize_per_map,
    overlay,
    plot_attention_grid,
    stage_panel,
    upsample_maps,
)
from semicon_core.models import build_model, suppression_mask
from semicon_core.runs import load_checkpoint, save_checkpoint

REPOSITORY = Path(__file__).resolve().parent.parent
NUM_IMAGES = 6


@pytest.fixture(scope="module")
def run(tiny_run):
    return AttentionRun(tiny_run)


@pytest.fixture(scope="module")
def query_indices(run):
    return default_image_indices(run.split("query"), NUM_IMAGES)


@pytest.fixture(scope="module")
def batch(run, query_indices):
    return run.extract(12, "query", query_indices)


@pytest.fixture
def baseline_run(tmp_path, tiny_run):
    """A run folder whose only checkpoint contains the ADSH baseline (no attention branch)."""
    source = load_checkpoint(tiny_run / "checkpoint_12bits.pt")
    model = build_model("baseline", 12, pretrained="none", backbone="resnet18")
    payload = {key: value for key, value in source.items() if key not in ("format_version", "versions")}
    payload.update(model_config=dict(model.config), model_state=model.state_dict(),
                   params={**source["params"], "arch": "baseline"})
    run_dir = tmp_path / "baseline-run"
    run_dir.mkdir()
    save_checkpoint(run_dir / "checkpoint_12bits.pt", payload)
    return run_dir


def synthetic_batch(attention_raw, suppression_raw=None, size=8):
    """An AttentionBatch from given maps, with grey images of ``size`` pixels."""
    attention_raw = np.asarray(attention_raw, dtype=np.float32)
    count, _, height, width = attention_raw.shape
    if suppression_raw is None:
        suppression_raw = np.ones((count, 2, height, width), dtype=np.float32)
    return AttentionBatch(
        images=np.full((count, size, size, 3), 0.5, dtype=np.float32),
        attention_raw=attention_raw,
        suppression_raw=np.asarray(suppression_raw, dtype=np.float32),
        outputs=np.zeros((count, 6), dtype=np.float32),
        statistics="batch",
        alpha=0.15,
    )


# -- extraction -----------------------------------------------------------------


def test_maps_have_layer3_shape(run, batch, query_indices):
    model = run.model(12)
    images = run.load_images("query", query_indices)
    with torch.no_grad():
        layer3_size = tuple(model.backbone(images).shape[-2:])
    assert batch.attention_raw.shape == (NUM_IMAGES, 3, *layer3_size)
    assert batch.suppression_raw.shape == (NUM_IMAGES, 2, *layer3_size)
    assert batch.outputs.shape == (NUM_IMAGES, 12)
    assert batch.images.shape == (NUM_IMAGES, *images.shape[-2:], 3)
    assert batch.codes.shape == (NUM_IMAGES, 12)


def test_map_value_ranges(batch):
    assert batch.attention_raw.min() >= 0
    assert batch.suppression_raw.min() >= 0
    assert batch.suppression_raw.max() <= 2
    assert batch.attention.min() >= 0
    assert batch.attention.max() <= 1
    assert batch.suppression.min() >= 0
    assert batch.suppression.max() <= 1
    assert batch.images.min() >= 0
    assert batch.images.max() <= 1
    assert np.abs(batch.outputs).max() < 1
    assert set(np.unique(batch.codes)) <= {-1, 1}


def test_normalized_maps_span_unit_range(batch):
    for image in range(NUM_IMAGES):
        for stage in range(3):
            raw = batch.attention_raw[image, stage]
            scaled = batch.attention[image, stage]
            if raw.max() > raw.min():
                assert scaled.min() == pytest.approx(0.0)
                assert scaled.max() == pytest.approx(1.0)


def test_masks_equal_model_suppression(batch):
    for mask_index in range(2):
        previous_map = torch.from_numpy(batch.attention_raw[:, mask_index : mask_index + 1])
        expected = suppression_mask(previous_map, batch.alpha, batch.statistics)[:, 0].numpy()
        np.testing.assert_allclose(batch.suppression_raw[:, mask_index], expected, atol=1e-6)


def test_batch_statistics_masks_depend_on_batch(run, batch, query_indices):
    assert batch.statistics == "batch"
    alone = run.extract(12, "query", query_indices[:1])
    assert not np.allclose(alone.suppression_raw[0], batch.suppression_raw[0])


def test_extraction_restores_train_mode(run, query_indices):
    model = run.model(12)
    model.train()
    try:
        extract_attention(model, run.load_images("query", query_indices[:2]))
        assert model.training
    finally:
        model.eval()


def test_extract_rejects_bad_shape(run):
    with pytest.raises(ValueError, match="shape"):
        extract_attention(run.model(12), torch.zeros(3, 32, 32))


def test_normalize_constant_map_is_zero():
    maps = np.zeros((2, 3, 4, 4), dtype=np.float32)
    maps[0, 1] = 5.0
    maps[1, 2, 0, 0] = 2.0
    scaled = normalize_per_map(maps)
    assert np.all(scaled[0, 1] == 0)
    assert np.isfinite(scaled).all()
    assert scaled[1, 2, 0, 0] == 1.0
    assert scaled[1, 2].sum() == 1.0


# -- upsampling and overlays ----------------------------------------------------------


def test_upsample_maps_shapes():
    assert upsample_maps(np.ones((2, 2)), (32, 32)).shape == (32, 32)
    assert upsample_maps(np.ones((4, 2, 2)), (16, 8)).shape == (4, 16, 8)
    assert upsample_maps(np.ones((4, 3, 2, 2)), (16, 16)).shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match="dimensions"):
        upsample_maps(np.ones(4), (8, 8))


def test_upsample_maps_is_bilinear():
    constant = upsample_maps(np.full((3, 3), 0.25), (12, 12))
    np.testing.assert_allclose(constant, 0.25, atol=1e-6)
    ramp = upsample_maps(np.array([[0.0, 1.0], [0.0, 1.0]]), (2, 8))
    assert ramp.min() >= 0
    assert ramp.max() <= 1
    assert np.all(np.diff(ramp[0]) >= 0)
    assert 0 < ramp[0, 3] < 1


def test_overlay_shape_dtype_range():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(32, 24, 3), dtype=np.uint8)
    heat = rng.random((2, 3))
    blended = overlay(image, heat, alpha=0.6)
    assert blended.shape == (32, 24, 3)
    assert blended.dtype == np.uint8
    float_blended = overlay(image.astype(np.float32) / 255.0, heat, alpha=0.6)
    assert float_blended.dtype == np.uint8
    assert np.abs(float_blended.astype(int) - blended.astype(int)).max() <= 1


def test_overlay_alpha_zero_returns_image():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(overlay(image, rng.random((4, 4)), alpha=0.0), image)


def test_overlay_alpha_one_is_colormap():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    result = overlay(image, np.ones((8, 8)), alpha=1.0, cmap="jet")
    import matplotlib

    expected = np.rint(np.asarray(matplotlib.colormaps["jet"](1.0)[:3]) * 255).astype(np.uint8)
    assert np.all(result == expected)


def test_overlay_rejects_invalid_alpha():
    with pytest.raises(ValueError, match="alpha"):
        overlay(np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((4, 4)), alpha=1.5)


def test_stage_panels(batch):
    image_panel = stage_panel(batch, 0, "image")
    assert image_panel.dtype == np.uint8
    np.testing.assert_array_equal(stage_panel(batch, 0, "A2", alpha=0.0), image_panel)
    for stage in STAGES:
        panel = stage_panel(batch, 0, stage, alpha=0.5)
        assert panel.shape == image_panel.shape
    with pytest.raises(ValueError, match="stage"):
        stage_panel(batch, 0, "A4")


# -- statistics and figures ---------------------------------------------------------------


def test_statistics_of_identical_maps():
    maps = np.zeros((2, 3, 4, 4), dtype=np.float32)
    maps[:, :, 1, 2] = 1.0
    maps[:, :, 0, 0] = 0.5
    statistics = attention_statistics(synthetic_batch(maps))
    for entry in statistics["pairwise_correlation"].values():
        assert entry["mean"] == pytest.approx(1.0)
        assert entry["pairs_used"] == 2
    assert statistics["distinct_peak_fraction"] == 0.0
    assert statistics["mean_peak_distance"] == 0.0
    assert statistics["peaks"][0] == {"A1": [1, 2], "A2": [1, 2], "A3": [1, 2]}


def test_statistics_of_shifted_maps():
    maps = np.zeros((1, 3, 4, 4), dtype=np.float32)
    maps[0, 0, 0, 0] = maps[0, 1, 0, 3] = maps[0, 2, 3, 3] = 1.0
    statistics = attention_statistics(synthetic_batch(maps))
    assert statistics["distinct_peak_fraction"] == 1.0
    assert statistics["mean_peak_distance"] == pytest.approx(3.0)
    assert statistics["pairwise_correlation"]["A1-A2"]["mean"] < 0


def test_statistics_skip_constant_maps():
    maps = np.zeros((1, 3, 2, 2), dtype=np.float32)
    statistics = attention_statistics(synthetic_batch(maps))
    assert statistics["pairwise_correlation"]["A1-A2"] == {"mean": None, "pairs_used": 0}
    assert statistics["per_stage"]["A1"]["zero_map_fraction"] == 1.0
    json.dumps(statistics)  # JSON-ready, no NaN


def test_statistics_report_of_trained_run(batch):
    statistics = attention_statistics(batch)
    assert statistics["num_images"] == NUM_IMAGES
    assert set(statistics["pairwise_correlation"]) == {"A1-A2", "A1-A3", "A2-A3"}
    assert set(statistics["mask_next_map_correlation"]) == {"mask1-A2", "mask2-A3"}
    text = format_attention_statistics(statistics)
    assert "A1-A2" in text
    assert "suppressed positions" in text


def test_grid_figure_saves_png(tmp_path, batch):
    import matplotlib.pyplot as plt

    path = tmp_path / "grid" / "attention.png"
    figure = plot_attention_grid(batch, alpha=0.4, row_titles=[str(i) for i in range(NUM_IMAGES)], path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image_axes = [axis for axis in figure.axes if axis.images]
    assert len(image_axes) == NUM_IMAGES * len(STAGES)
    plt.close(figure)
    with pytest.raises(ValueError, match="row titles"):
        plot_attention_grid(batch, row_titles=["one"])


# -- run folders ----------------------------------------------------------------------------


def test_code_lengths_of_run(run, tiny_run):
    assert available_code_lengths(tiny_run) == [6, 12]
    assert run.resolve_code_length(None) == 12
    assert run.resolve_code_length(6) == 6
    with pytest.raises(FileNotFoundError, match="available code lengths"):
        run.resolve_code_length(24)


def test_missing_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        AttentionRun(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        AttentionRun(tmp_path)


def test_default_indices_spread_over_classes(run):
    query = run.split("query")
    indices = default_image_indices(query, NUM_IMAGES)
    assert len(indices) == NUM_IMAGES
    classes = [int(query.labels[index]) for index in indices]
    assert len(set(classes)) == NUM_IMAGES
    assert classes[0] == 0
    assert classes[-1] == query.num_classes - 1
    everything = default_image_indices(query, 10_000)
    assert sorted(everything) == list(range(len(query)))


def test_nearest_database_ranking(run, batch):
    ranked = run.nearest_database(12, batch.codes[0], topk=5)
    assert len(ranked) == 5
    distances = [distance for _, distance in ranked]
    assert distances == sorted(distances)
    database_codes = run.checkpoint(12)["database_codes"].numpy()
    for index, distance in ranked:
        assert distance == int(np.sum(database_codes[index] != batch.codes[0]))
    excluded = run.nearest_database(12, database_codes[3], topk=3, exclude=3)
    assert 3 not in [index for index, _ in excluded]


def test_baseline_run_has_no_attention(baseline_run):
    run = AttentionRun(baseline_run)
    assert run.arch == "baseline"
    with pytest.raises(NoAttentionError, match="arch='baseline'"):
        run.model(12)
    model = build_model("baseline", 12, pretrained="none", backbone="resnet18")
    with pytest.raises(NoAttentionError, match="no SEM attention branch"):
        extract_attention(model, torch.zeros(1, 3, 32, 32))


# -- explorer widget ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def explorer(run):
    from semicon_core.widgets import build_attention_explorer

    return build_attention_explorer(run, split="query", overlay_alpha=0.5)


def assert_no_error(explorer):
    assert "failed" not in explorer.status.value


def test_explorer_builds_without_frontend(explorer):
    import ipywidgets

    assert isinstance(explorer, ipywidgets.VBox)
    assert explorer.view.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert explorer.code_length_control.value == 12
    assert "global (6)" in explorer.code_view.value
    assert "local3 (2)" in explorer.code_view.value
    assert len(explorer.neighbours.children) == 5
    assert "as one batch" in explorer.status.value
    assert "AttentionExplorer(run=" in repr(explorer)


def test_explorer_slider_updates_view(explorer):
    before = explorer.view.value
    explorer.image_control.value = 1
    assert_no_error(explorer)
    assert explorer.view.value != before
    assert "query #1" in explorer.image_label.value


def test_explorer_overlay_and_stage_update_view(explorer):
    before = explorer.view.value
    explorer.alpha_control.value = 0.9
    assert_no_error(explorer)
    assert explorer.view.value != before
    explorer.stage_control.value = "mask1"
    assert_no_error(explorer)
    explorer.stage_control.value = "all stages"


def test_explorer_switches_split_class_and_code_length(explorer, run):
    explorer.split_control.value = "database"
    assert explorer.image_control.max == 3  # 4 database images per class
    explorer.class_control.value = 5
    assert explorer.selected_index() == int(np.flatnonzero(run.split("database").labels == 5)[0])
    explorer.code_length_control.value = 6
    assert_no_error(explorer)
    assert "global (3)" in explorer.code_view.value
    assert "learned database code" in explorer.code_view.value
    assert len(explorer.neighbours.children) == 5


def test_explorer_rejects_baseline(baseline_run):
    from semicon_core.widgets import build_attention_explorer

    with pytest.raises(NoAttentionError):
        build_attention_explorer(baseline_run)


# -- notebook -------------------------------------------------------------------------------------


@pytest.fixture
def linked_run(tmp_path, tiny_run):
    """A run folder in tmp_path whose checkpoints link to the tiny run's, so the notebook writes only here."""
    run_dir = tmp_path / "typefaces" / "linked"
    run_dir.mkdir(parents=True)
    for path in tiny_run.glob("checkpoint_*bits.pt"):
        (run_dir / path.name).symlink_to(path)
    return run_dir


def execute_attention_notebook(run_dir, output, **parameters):
    import papermill

    return papermill.execute_notebook(
        str(REPOSITORY / "notebooks" / "attention.ipynb"),
        str(output),
        parameters={"run_dir": str(run_dir), "progress": "text", **parameters},
        kernel_name="python3",
        cwd=str(output.parent),
        progress_bar=False,
    )


def test_notebook_writes_grid_and_statistics(linked_run):
    execute_attention_notebook(linked_run, linked_run / "attention.ipynb", num_images=4, overlay_alpha=0.6)
    grid = linked_run / "attention" / "attention_grid_12bits.png"
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    statistics = json.loads((linked_run / "attention" / "attention_stats_12bits.json").read_text())
    assert statistics["code_length"] == 12
    assert statistics["split"] == "query"
    assert len(statistics["image_indices"]) == 4
    assert statistics["sem_statistics"] == "batch"
    assert set(statistics["pairwise_correlation"]) == {"A1-A2", "A1-A3", "A2-A3"}

    import nbformat

    notebook = nbformat.read(linked_run / "attention.ipynb", as_version=4)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "".join(output.get("text", "") for output in outputs)
    displayed = "".join(output.get("data", {}).get("text/plain", "") for output in outputs)
    assert "mean correlation between maps of the same image" in text
    assert "AttentionExplorer(run=" in displayed


def test_notebook_reports_baseline_clearly(baseline_run):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError, match="only arch='semicon' has the SEM attention"):
        execute_attention_notebook(baseline_run, baseline_run / "attention.ipynb")
