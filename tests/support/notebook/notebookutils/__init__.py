"""Stand-in for the ``notebookutils`` package of Synapse and Fabric notebooks: see
``tests/support/notebook/README.md``."""

from . import credentials  # noqa: F401
from . import fs  # noqa: F401
from . import mssparkutils  # noqa: F401
