"""Exceptions raised when a dataset on disk does not match its expected layout.

Every message names the dataset, the root folder, the file at fault and what
the layout should look like. ``except DatasetError`` catches all of them.
"""

from __future__ import annotations


class DatasetError(ValueError):
    """Invalid dataset contents: a malformed metadata line, an unknown or out-of-range label, an empty class."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A missing dataset root, metadata file or listed image."""


class BadImageError(DatasetError):
    """An image file that exists but cannot be opened or decoded by PIL."""
