"""Stand-in for the top-level ``mssparkutils`` module (``import mssparkutils``)."""

from notebookutils import credentials  # noqa: F401
