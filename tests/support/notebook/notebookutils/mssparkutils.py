"""Stand-in for ``notebookutils.mssparkutils`` (``from notebookutils import mssparkutils``, as
Synapse notebooks import it; Fabric keeps the name for compatibility)."""

from . import credentials  # noqa: F401
from . import fs  # noqa: F401
