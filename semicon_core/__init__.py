"""SEMICON workbench: fine-grained learning-to-hash models, ADSH training and retrieval metrics."""

__version__ = "0.1.0"
