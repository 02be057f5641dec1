"""Stand-in for the top-level ``mssparkutils`` module (``import mssparkutils``)."""

from notebookutils import credentials  # noqa: F401
from notebookutils import fs  # noqa: F401
