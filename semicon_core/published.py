"""Published mAP figures of SEMICON and ADSH, shipped as ``semicon_core/data/published_results.csv``.

Each row of the table is one figure: ``source`` (where it was read), ``protocol`` (how it
was measured), ``method``, ``dataset``, ``bits`` (code length), ``map_percent`` (mAP in
percent) and ``note``. Figures measured under different protocols are not directly
comparable, so every lookup keeps the protocol next to the number.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Iterable, Optional, Union

import pandas as pd

logger = logging.getLogger(__name__)

PUBLISHED_RESULTS_FILE = "published_results.csv"
COLUMNS = ("source", "protocol", "method", "dataset", "bits", "map_percent", "note")

# Readable descriptions of the protocol labels used in the CSV. A label missing here is
# shown as it is written in the file.
PROTOCOL_DESCRIPTIONS = {
    "best_over_iterations_test_selected": (
        "best mAP over the outer iterations, selected on the query (test) split as the authors' "
        "release reports it; learned database codes B, whole ranking"
    ),
    "seen_at_seen_95pct_classes_map_all": (
        "labelled by its source as seen@seen on 95% of the classes with mAP over all retrieved items; "
        "a class subset, so not directly comparable with a full-split evaluation"
    ),
}


def describe_protocol(protocol: str) -> str:
    """Return the readable description of a protocol label, or the label itself when it has none."""
    return PROTOCOL_DESCRIPTIONS.get(protocol, protocol)


def load_published_results() -> pd.DataFrame:
    """Read the whole published-results table from the package data.

    Returns:
        DataFrame with the columns of ``COLUMNS``: ``bits`` as int, ``map_percent`` as
        float and ``note`` as str ("" where the file leaves it empty).
    """
    table_file = resources.files("semicon_core.data").joinpath(PUBLISHED_RESULTS_FILE)
    with table_file.open("r", encoding="utf-8") as stream:
        table = pd.read_csv(stream, dtype={"bits": int, "map_percent": float}, keep_default_na=False)
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{PUBLISHED_RESULTS_FILE} is missing the columns {missing}; expected {list(COLUMNS)}")
    return table[list(COLUMNS)]


def _as_code_lengths(code_lengths: Union[None, int, Iterable[int]]) -> Optional[list]:
    if code_lengths is None:
        return None
    if isinstance(code_lengths, int):
        return [code_lengths]
    return [int(value) for value in code_lengths]


def published_results(dataset: str, code_lengths: Union[None, int, Iterable[int]] = None) -> pd.DataFrame:
    """Select the published figures of one dataset, optionally only some code lengths.

    Args:
        dataset: dataset name as the workbench spells it (``cub-2011``, ``food101``, ...).
        code_lengths: bits to keep; None keeps every code length.

    Returns:
        DataFrame with the columns of ``COLUMNS`` plus ``protocol_description``, sorted by
        bits, method, source and protocol, with a fresh index. It is empty (with the same
        columns) when the table has no figure for the dataset, as for ``typefaces``.
    """
    table = load_published_results()
    selected = table[table["dataset"] == dataset]
    lengths = _as_code_lengths(code_lengths)
    if lengths is not None:
        selected = selected[selected["bits"].isin(lengths)]
    selected = selected.assign(protocol_description=selected["protocol"].map(describe_protocol))
    return selected.sort_values(["bits", "method", "source", "protocol"], kind="stable").reset_index(drop=True)


def published_datasets() -> list:
    """Return the sorted names of the datasets that have at least one published figure."""
    return sorted(load_published_results()["dataset"].unique().tolist())


def describe_published_coverage(dataset: str, code_lengths: Union[None, int, Iterable[int]] = None) -> str:
    """Return one sentence saying how many published figures exist for a dataset and code lengths."""
    selected = published_results(dataset, code_lengths)
    lengths = _as_code_lengths(code_lengths)
    scope = "" if lengths is None else f" at {', '.join(str(bits) for bits in lengths)} bits"
    if selected.empty:
        return (
            f"No published figures for {dataset}{scope}; published figures exist for "
            f"{', '.join(published_datasets())}."
        )
    bits = ", ".join(str(value) for value in sorted(selected["bits"].unique()))
    num_sources = selected["source"].nunique()
    return (
        f"{len(selected)} published figures for {dataset} at {bits} bits, "
        f"from {num_sources} source{'s' if num_sources > 1 else ''}."
    )
