"""Progress bars that work in a terminal, under papermill and in JupyterLab."""

from __future__ import annotations

import os
import sys

PROGRESS_ENV = "SEMICON_PROGRESS"
MODES = ("auto", "text", "widget", "none")


def resolve_mode(mode: str = "auto") -> str:
    """Return the concrete bar style for ``mode``.

    ``"auto"`` takes ``$SEMICON_PROGRESS`` when set, else widget bars inside a
    Jupyter kernel that has ipywidgets and text bars elsewhere. Text bars are
    the right choice for headless papermill runs: their last state is kept in
    the executed notebook as plain text.
    """
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    env = os.environ.get(PROGRESS_ENV)
    if env:
        return resolve_mode(env) if env != "auto" else "text"
    if "ipykernel" in sys.modules:
        try:
            import ipywidgets  # noqa: F401

            return "widget"
        except ImportError:
            return "text"
    return "text"


def progress_bar(iterable=None, mode: str = "auto", **kwargs):
    """Wrap ``iterable`` in a tqdm bar of the resolved style (``mode="none"`` disables it)."""
    resolved = resolve_mode(mode)
    if resolved == "widget":
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm

        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("mininterval", 2.0)
        kwargs.setdefault("dynamic_ncols", False)
        kwargs.setdefault("ncols", 100)
    return tqdm(iterable, disable=resolved == "none", **kwargs)
