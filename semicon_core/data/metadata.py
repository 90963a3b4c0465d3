"""Readers for dataset metadata files.

Each reader raises an error that names the dataset, the root, the file and
line at fault, and the layout the dataset expects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..paths import DATA_ROOT_ENV
from .errors import DatasetError, DatasetNotFoundError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayoutInfo:
    """The files one on-disk layout expects, used to locate the root and in error messages.

    Attributes:
        name: registered dataset name.
        files: ``(path under the root, contents)`` for each file or folder of
            the layout. The first entry is the marker used to find the root.
        root_subfolders: folders that the official archive unpacks into. A
            root without the marker file that contains one of these folders
            with the marker is replaced by that folder.
        num_classes: class count of the official release, or None. A loaded
            dataset with another count gets a warning, not an error, so
            subsets still load.
    """

    name: str
    files: Tuple[Tuple[str, str], ...]
    root_subfolders: Tuple[str, ...] = ()
    num_classes: Optional[int] = None

    def describe(self) -> str:
        """Return the expected files as indented lines, one per file."""
        return "\n".join(f"  {path}: {contents}" for path, contents in self.files)


def locate_root(info: LayoutInfo, root: Path) -> Path:
    """Return the folder that contains ``info``'s marker file: ``root`` or one of its archive subfolders.

    Raises DatasetNotFoundError when ``root`` is not an existing folder. A root
    that exists but lacks the marker is returned unchanged, so that reading the
    first metadata file raises the error that names that file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"{info.name}: dataset root {root} does not exist or is not a folder. "
            f"The {info.name} layout expects these files under the root:\n{info.describe()}\n"
            f"Pass root=<folder> or set {DATA_ROOT_ENV} to the folder that contains '{info.name}/'."
        )
    marker = info.files[0][0]
    if (root / marker).exists():
        return root
    for subfolder in info.root_subfolders:
        if (root / subfolder / marker).exists():
            logger.info("%s: using %s, the archive folder inside root %s", info.name, root / subfolder, root)
            return root / subfolder
    return root


def require_file(info: LayoutInfo, root: Path, relative_path: str) -> Path:
    """Return ``root / relative_path``, raising DatasetNotFoundError when it is not a file."""
    path = root / relative_path
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{info.name}: metadata file {relative_path} not found under root {root}. "
            f"The {info.name} layout expects these files under the root:\n{info.describe()}"
        )
    return path


def read_fields(
    info: LayoutInfo, root: Path, relative_path: str, num_fields: int, line_format: str
) -> List[Tuple[int, List[str]]]:
    """Read a whitespace-separated text file as ``(line number, fields)`` rows, skipping blank lines.

    The last of ``num_fields`` fields keeps any inner spaces (class names such
    as "Black footed Albatross" or "F/A-18"). A line with fewer fields raises
    DatasetError quoting the line and ``line_format``.
    """
    path = require_file(info, root, relative_path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"{info.name}: metadata file {path} is not valid UTF-8 text ({error}); "
            f"expected lines of the form '{line_format}'"
        ) from error
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(None, num_fields - 1)
        if len(fields) < num_fields:
            raise DatasetError(
                f"{info.name}: line {line_number} of {path} is {line.strip()!r}, "
                f"expected the form '{line_format}'"
            )
        fields[-1] = fields[-1].strip()
        rows.append((line_number, fields))
    if not rows:
        raise DatasetError(f"{info.name}: metadata file {path} is empty; expected lines of the form '{line_format}'")
    return rows


def read_id_table(info: LayoutInfo, root: Path, relative_path: str, line_format: str) -> Dict[str, Tuple[int, str]]:
    """Read ``<id> <value>`` lines into ``{id: (line number, value)}``; a repeated id raises DatasetError."""
    table: Dict[str, Tuple[int, str]] = {}
    for line_number, (key, value) in read_fields(info, root, relative_path, 2, line_format):
        if key in table:
            raise DatasetError(
                f"{info.name}: id {key!r} appears twice in {root / relative_path} "
                f"(lines {table[key][0]} and {line_number}); each id must be listed once"
            )
        table[key] = (line_number, value)
    return table


def parse_int(info: LayoutInfo, path: Path, line_number: int, text: str, what: str) -> int:
    """Return ``text`` as an int, raising DatasetError naming the file and line when it is not one."""
    try:
        return int(text)
    except ValueError:
        raise DatasetError(
            f"{info.name}: line {line_number} of {path} has {what} {text!r}, expected an integer"
        ) from None
