"""The evaluate notebook executed by papermill on the tiny training run, and the helpers it calls."""

import json
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from semicon_core import evaluation_report as er
from semicon_core.evaluation import mean_average_precision, mean_average_precision_tie_aware
from semicon_core.published import (
    COLUMNS,
    PROTOCOL_DESCRIPTIONS,
    describe_protocol,
    describe_published_coverage,
    load_published_results,
    published_results,
)
from semicon_core.runs import load_checkpoint

REPOSITORY = Path(__file__).resolve().parent.parent
CODE_LENGTHS = ("6", "12")
PROTOCOLS = ("learned", "encoded")
EXPECTED_FIGURES = (
    "ties.png", "precision_at_k.png", "precision_recall.png", "per_class_ap.png",
    "bits_6bits.png", "bits_12bits.png", "retrieval_6bits.png", "retrieval_12bits.png",
)


def _reject_constant(name):
    raise ValueError(f"evaluation.json contains {name}, which strict JSON does not allow")


@pytest.fixture(scope="module")
def evaluated_run(tiny_run):
    """The tiny run after the evaluate notebook has run on it."""
    import papermill

    papermill.execute_notebook(
        str(REPOSITORY / "notebooks" / "evaluate.ipynb"),
        str(tiny_run / "evaluate.ipynb"),
        parameters={"run_dir": str(tiny_run), "progress": "text"},
        kernel_name="python3",
        cwd=str(tiny_run),
        progress_bar=False,
    )
    return tiny_run


@pytest.fixture(scope="module")
def report(evaluated_run):
    text = (evaluated_run / "evaluation" / "evaluation.json").read_text()
    return json.loads(text, parse_constant=_reject_constant)


# The executed notebook ----------------------------------------------------------------------


def test_report_settings_and_labels(report, evaluated_run):
    assert report["run_dir"] == str(evaluated_run.resolve())
    assert report["dataset"] == "typefaces"
    assert report["settings"]["tie_policy"] == "index"
    assert report["settings"]["topk"] == [100, 1000]
    assert report["settings"]["radius"] == 2
    assert report["settings"]["database_protocols"] == list(PROTOCOLS)
    assert set(report["protocols"]) == set(PROTOCOLS)
    assert "learned codes B" in report["protocols"]["learned"]
    assert "encoded by the saved network" in report["protocols"]["encoded"]
    assert report["data"]["images_available"] is True
    assert report["notes"] == []


def test_report_entries_per_code_length(report, evaluated_run):
    assert sorted(report["code_lengths"], key=int) == list(CODE_LENGTHS)
    for bits in CODE_LENGTHS:
        entry = report["code_lengths"][bits]
        checkpoint = load_checkpoint(evaluated_run / f"checkpoint_{bits}bits.pt")
        assert entry["checkpoint"]["status"] == "complete"
        assert entry["skipped_protocols"] == {}
        assert [group["name"] for group in entry["bit_groups"]] == ["global", "local1", "local2", "local3"]
        assert entry["bit_groups"][-1]["stop"] == int(bits)
        assert len(entry["query_bits"]["entropy"]) == int(bits)
        assert set(entry["protocols"]) == set(PROTOCOLS)
        for protocol in PROTOCOLS:
            result = entry["protocols"][protocol]
            assert result["protocol"] == protocol
            assert result["tie_policy"] == "index"
            assert result["code_length"] == int(bits)
            assert result["num_queries"] == 42
            assert result["num_database"] == 84
            assert set(result["map_at_k"]) == {"100", "1000"}
            assert set(result["precision_at_k"]) == {"100", "1000"}
            assert set(result["map_tie_aware"]) == {"expected", "min", "max"}
            assert result["radius"]["radius"] == 2
            assert len(result["per_class_ap"]) == 21
            assert len(result["precision_recall_by_radius"]["radius"]) == int(bits) + 1
            assert len(result["database_bits"]["balance"]) == int(bits)
            names = [item["class_name"] for item in result["worst_classes"]]
            assert len(names) == 10
            assert set(names) <= set(checkpoint["class_names"])


def test_learned_map_equals_final_map(report, evaluated_run):
    """Training's last evaluation used the stored query codes and B, so the learned protocol reproduces it."""
    metrics = json.loads((evaluated_run / "metrics.json").read_text())
    for bits in CODE_LENGTHS:
        checkpoint = load_checkpoint(evaluated_run / f"checkpoint_{bits}bits.pt")
        learned = report["code_lengths"][bits]["protocols"]["learned"]
        recomputed = mean_average_precision(checkpoint["query_codes"], checkpoint["database_codes"],
                                            checkpoint["query_labels"], checkpoint["database_labels"])
        assert learned["map"] == pytest.approx(checkpoint["final_map"], abs=1e-12)
        assert recomputed == pytest.approx(checkpoint["final_map"], abs=1e-12)
        assert metrics["code_lengths"][bits]["iterations"][-1]["map"] == pytest.approx(learned["map"], abs=1e-12)
        check = report["code_lengths"][bits]["final_map_check"]
        assert check["matches"] is True
        assert check["topk"] is None


def test_tie_aware_range_contains_expected(report):
    for bits in CODE_LENGTHS:
        for protocol in PROTOCOLS:
            result = report["code_lengths"][bits]["protocols"][protocol]
            ties = result["map_tie_aware"]
            assert ties["min"] <= ties["expected"] <= ties["max"]
            assert ties["min"] - 1e-12 <= result["map"] <= ties["max"] + 1e-12


def test_report_values_in_unit_interval(report):
    for bits in CODE_LENGTHS:
        for protocol in PROTOCOLS:
            result = report["code_lengths"][bits]["protocols"][protocol]
            scalars = [result["map"], *result["map_at_k"].values(), *result["precision_at_k"].values(),
                       *result["map_tie_aware"].values(), result["radius"]["precision"],
                       result["radius"]["recall"], result["radius"]["map"]]
            curves = [*result["per_class_ap"], *result["precision_recall_at_k"]["precision"],
                      *result["precision_recall_at_k"]["recall"], *result["precision_recall_by_radius"]["precision"],
                      *result["precision_recall_by_radius"]["recall"], *result["database_bits"]["entropy"]]
            for value in scalars + [value for value in curves if value is not None]:
                assert 0.0 <= value <= 1.0, (bits, protocol, value)


def test_figures_written(report, evaluated_run):
    folder = evaluated_run / "evaluation"
    assert sorted(report["figures"].values()) == sorted(EXPECTED_FIGURES)
    for name in EXPECTED_FIGURES:
        path = folder / name
        assert path.is_file(), path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_executed_notebook_prints_map(evaluated_run):
    notebook = nbformat.read(evaluated_run / "evaluate.ipynb", as_version=4)
    text = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "mAP 12 bits, learned database" in text
    assert "mAP 12 bits, encoded database" in text
    assert "No published figures for typefaces" in text
    assert "DOES NOT MATCH" not in text


# evaluate_run on the tiny run, without the notebook -------------------------------------------


def test_random_tie_policy_keeps_tie_aware_values(tiny_run):
    run = er.load_run(tiny_run, [12])
    by_index = er.evaluate_run(run, topk=[10], tie_policy="index", protocols="learned", progress="none")
    by_random = er.evaluate_run(run, topk=[10], tie_policy="random", protocols="learned", progress="none")
    index_result = by_index.report["code_lengths"]["12"]["protocols"]["learned"]
    random_result = by_random.report["code_lengths"]["12"]["protocols"]["learned"]
    assert random_result["tie_policy"] == "random"
    assert by_random.report["settings"]["tie_seed"] == 0
    assert random_result["map_tie_aware"] == pytest.approx(index_result["map_tie_aware"], abs=1e-12)
    # Precision and recall within a radius keep every item at equal distance, so tie order cannot change them.
    for key in ("precision", "recall", "num_queries_retrieving"):
        assert random_result["radius"][key] == pytest.approx(index_result["radius"][key], abs=1e-12)
    ties = random_result["map_tie_aware"]
    assert ties["min"] - 1e-12 <= random_result["map"] <= ties["max"] + 1e-12


def test_encoded_protocol_skipped_without_images(tiny_run, tmp_path):
    run = er.load_run(tiny_run, [6])
    for checkpoint in run.checkpoints.values():
        checkpoint["params"] = {**checkpoint["params"], "dataset": "cub-2011", "root": str(tmp_path / "missing"),
                                "data_options": {}}
    evaluation = er.evaluate_run(run, topk="5", protocols="learned,encoded", progress="none")
    entry = evaluation.report["code_lengths"]["6"]
    assert set(entry["protocols"]) == {"learned"}
    assert "not available" in entry["skipped_protocols"]["encoded"]
    assert evaluation.report["data"]["images_available"] is False
    assert any("encoded protocol" in note for note in evaluation.report["notes"])
    assert evaluation.splits is None
    assert er.retrieval_examples(evaluation, 6, "learned") is None


# Published figures ------------------------------------------------------------------------


def test_published_table_columns():
    table = load_published_results()
    assert list(table.columns) == list(COLUMNS)
    assert table["bits"].dtype.kind == "i"
    assert ((table["map_percent"] > 0) & (table["map_percent"] <= 100)).all()
    for protocol in table["protocol"].unique():
        assert protocol in PROTOCOL_DESCRIPTIONS


def test_published_lookup_food101():
    rows = published_results("food101")
    assert len(rows) == 14
    assert set(rows["dataset"]) == {"food101"}
    assert sorted(rows["bits"].unique()) == [12, 24, 32, 48]
    at_12 = published_results("food101", [12])
    found = {(row.source, row.method): row.map_percent for row in at_12.itertuples()}
    assert found == {
        ("authors_release_logs_2022", "SEMICON"): 50.00,
        ("authors_release_logs_2023", "SEMICON++"): 70.35,
        ("dsh_analysis_readme", "SEMICON"): 46.5,
        ("dsh_analysis_readme", "ADSH"): 45.0,
    }
    assert set(at_12["protocol_description"]) == {describe_protocol(protocol) for protocol in at_12["protocol"]}


def test_published_lookup_unknown_dataset():
    for dataset in ("typefaces", "no-such-dataset"):
        rows = published_results(dataset, [12, 48])
        assert rows.empty
        assert set(COLUMNS) <= set(rows.columns)
    assert describe_published_coverage("typefaces", [12]).startswith("No published figures for typefaces at 12 bits")
    assert "food101" in describe_published_coverage("typefaces")


def test_describe_protocol_unknown_label():
    assert describe_protocol("some_other_protocol") == "some_other_protocol"


def _fake_report(run_name="demo", best_map=0.5, topk=None):
    result = {"map": 0.4, "tie_policy": "index", "map_tie_aware": {"expected": 0.41, "min": 0.3, "max": 0.5}}
    return {
        "run_name": run_name,
        "code_lengths": {
            "12": {"checkpoint": {"arch": "semicon", "backbone": "resnet50", "best_map": best_map, "topk": topk},
                   "protocols": {"learned": result}},
        },
    }


def test_comparison_table_puts_run_first():
    table = er.comparison_table(_fake_report(), published_results("food101", [12, 24]))
    at_12 = table[table["bits"] == 12]
    assert list(at_12["source"][:2]) == ["this run (demo)"] * 2
    assert list(at_12["protocol"][:2]) == ["best_over_iterations_test_selected",
                                           "final_iteration_learned_database_ties_index"]
    assert list(at_12["map_percent"][:2]) == pytest.approx([50.0, 40.0])
    assert len(at_12) == 6
    assert (table["bits"] == 24).sum() == 4
    assert table["protocol_description"].str.len().min() > 0


def test_comparison_table_without_published_rows():
    table = er.comparison_table(_fake_report(topk=100), published_results("typefaces"))
    assert list(table["protocol"]) == ["best_over_iterations_test_selected@100",
                                       "final_iteration_learned_database_ties_index"]


# Parameter parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("100,1000", [100, 1000]), (" 12, 48 ,", [12, 48]), ([12, 48, 12], [12, 48]), (32, [32]), (None, None), ("", None)],
)
def test_parse_int_list_valid(value, expected):
    assert er.parse_int_list(value, "topk") == expected


@pytest.mark.parametrize("value", ["0", "ten", [1.5], True, [-3]])
def test_parse_int_list_invalid(value):
    with pytest.raises(ValueError, match="topk"):
        er.parse_int_list(value, "topk")


def test_parse_protocols():
    assert er.parse_protocols("learned,encoded") == ["learned", "encoded"]
    assert er.parse_protocols(["encoded", "encoded"]) == ["encoded"]
    for bad in ("", "learned,bogus", []):
        with pytest.raises(ValueError, match="database_protocols"):
            er.parse_protocols(bad)


def test_check_tie_policy_rejects_unknown():
    with pytest.raises(ValueError, match="tie_policy"):
        er.check_tie_policy("expected")


# Run folders ------------------------------------------------------------------------------


def _touch_checkpoint(folder: Path, bits: int, mtime: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checkpoint_{bits}bits.pt"
    path.write_bytes(b"")
    os.utime(path, (mtime, mtime))


def test_find_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        er.find_checkpoints(tmp_path)
    _touch_checkpoint(tmp_path, 48, time.time())
    _touch_checkpoint(tmp_path, 12, time.time())
    assert list(er.find_checkpoints(tmp_path)) == [12, 48]
    assert list(er.find_checkpoints(tmp_path, [48])) == [48]
    with pytest.raises(FileNotFoundError, match=r"code length\(s\) \[24\]"):
        er.find_checkpoints(tmp_path, [24, 48])


def test_resolve_run_dir(tmp_path):
    with pytest.raises(ValueError, match="run_dir"):
        er.resolve_run_dir()
    with pytest.raises(FileNotFoundError):
        er.resolve_run_dir(dataset="typefaces", outputs_dir=tmp_path)
    now = time.time()
    _touch_checkpoint(tmp_path / "typefaces" / "old", 12, now - 100)
    _touch_checkpoint(tmp_path / "typefaces" / "new", 12, now)
    (tmp_path / "typefaces" / "empty").mkdir()
    assert er.resolve_run_dir(dataset="typefaces", outputs_dir=tmp_path).name == "new"
    assert er.resolve_run_dir(dataset="typefaces", run_name="old", outputs_dir=tmp_path).name == "old"
    assert er.resolve_run_dir(run_dir=tmp_path / "typefaces" / "old", dataset="ignored") == tmp_path / "typefaces" / "old"
    with pytest.raises(FileNotFoundError, match="not found"):
        er.resolve_run_dir(dataset="typefaces", run_name="missing", outputs_dir=tmp_path)


# Metrics on synthetic codes ---------------------------------------------------------------


def _synthetic(num_query=30, num_database=200, code_length=8, num_classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    query_codes = torch.randint(0, 2, (num_query, code_length), generator=generator) * 2 - 1
    database_codes = torch.randint(0, 2, (num_database, code_length), generator=generator) * 2 - 1
    query_labels = torch.randint(0, num_classes, (num_query,), generator=generator)
    database_labels = torch.randint(0, num_classes, (num_database,), generator=generator)
    return query_codes.to(torch.int8), database_codes.to(torch.int8), query_labels, database_labels


def test_evaluate_protocol_index_policy():
    query, database, query_labels, database_labels = _synthetic()
    names = [f"class {index}" for index in range(5)]
    result = er.evaluate_protocol(query, database, query_labels, database_labels, names, topk=[10, 50])
    assert result["map"] == pytest.approx(mean_average_precision(query, database, query_labels, database_labels))
    assert result["map_at_k"]["10"] == pytest.approx(
        mean_average_precision(query, database, query_labels, database_labels, topk=10)
    )
    assert result["map_tie_aware"] == pytest.approx(
        mean_average_precision_tie_aware(query, database, query_labels, database_labels)
    )
    assert result["tie_policy"] == "index"
    assert "tie_seed" not in result
    assert [item["class_name"] for item in result["worst_classes"]][:1] == [
        names[int(np.nanargmin(np.array(result["per_class_ap"], dtype=float)))]
    ]
    assert 1 in result["precision_recall_at_k"]["k"]
    assert 200 in result["precision_recall_at_k"]["k"]
    json.dumps(result, allow_nan=False)


def test_evaluate_protocol_random_policy_permutes_database():
    query, database, query_labels, database_labels = _synthetic()
    names = [f"class {index}" for index in range(5)]
    result = er.evaluate_protocol(query, database, query_labels, database_labels, names, topk=[10],
                                  tie_policy="random", tie_seed=3)
    permutation = torch.as_tensor(np.random.default_rng(3).permutation(200))
    expected = mean_average_precision(query, database[permutation], query_labels, database_labels[permutation])
    assert result["map"] == pytest.approx(expected)
    assert result["tie_seed"] == 3


def test_evaluate_protocol_requires_topk():
    query, database, query_labels, database_labels = _synthetic()
    with pytest.raises(ValueError, match="topk"):
        er.evaluate_protocol(query, database, query_labels, database_labels, ["a"] * 5, topk=[])


def test_tie_order():
    assert er.tie_order(10, "index") is None
    permutation = er.tie_order(10, "random", seed=1)
    assert sorted(permutation.tolist()) == list(range(10))
    assert np.array_equal(permutation, er.tie_order(10, "random", seed=1))


def test_curve_cutoffs():
    cutoffs = er.curve_cutoffs(84, topk=[10, 100])
    assert cutoffs[0] == 1
    assert cutoffs[-1] == 84
    assert 10 in cutoffs
    assert 100 not in cutoffs
    assert cutoffs == sorted(set(cutoffs))


@pytest.mark.parametrize("tie_policy", ["index", "random"])
def test_top_results_against_brute_force(tie_policy):
    query, database, _, _ = _synthetic(num_database=60, code_length=4)
    queries = [0, 5, 7]
    indices, distances = er.top_results(query, database, queries, topk=25, tie_policy=tie_policy, tie_seed=2)
    assert indices.shape == distances.shape == (3, 25)
    permutation = er.tie_order(60, tie_policy, seed=2)
    position = np.arange(60) if permutation is None else np.argsort(permutation)
    for row, q in enumerate(queries):
        brute = [(int((query[q] != database[d]).sum()), int(position[d]), d) for d in range(60)]
        expected = [d for _, _, d in sorted(brute)][:25]
        assert indices[row].tolist() == expected
        assert distances[row].tolist() == [int((query[q] != database[d]).sum()) for d in expected]


def test_select_queries_spreads_over_classes():
    labels = np.repeat(np.arange(5), 4)
    picked = er.select_queries(labels, 3, seed=1)
    assert len(set(picked)) == 3
    assert len(set(labels[picked].tolist())) == 3
    more = er.select_queries(labels, 8, seed=1)
    assert len(set(more)) == 8
    assert set(labels[more].tolist()) == set(range(5))
    assert sorted(er.select_queries(labels, 50)) == list(range(20))


def test_write_evaluation_stores_nan_as_null(tmp_path):
    path = er.write_evaluation({"value": float("nan"), "values": np.array([0.5, np.nan]), "count": np.int64(3)},
                               tmp_path / "evaluation")
    loaded = json.loads(path.read_text(), parse_constant=_reject_constant)
    assert loaded == {"value": None, "values": [0.5, None], "count": 3}


def test_summary_table_rows(report):
    table = er.summary_table(report)
    assert list(table.index) == [(6, "learned"), (6, "encoded"), (12, "learned"), (12, "encoded")]
    for column in ("mAP", "tie-aware expected", "mAP@100", "P@1000", "P (r<=2)", "R (r<=2)", "mAP (r<=2)"):
        assert column in table.columns
    assert isinstance(er.worst_classes_table(report), pd.DataFrame)
