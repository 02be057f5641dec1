"""Stand-in for ``notebookutils.credentials`` (Fabric; Synapse's ``mssparkutils.credentials``
is the same object). Only the token functions the recipes use."""

from ._standin import get_token as _get_token
from ._standin import is_valid_token as _is_valid_token


def getToken(audience, name=""):  # noqa: N802 (the real API's name)
    """A Microsoft Entra token for one of the fixed audience keys."""
    return _get_token(audience)


def isValidToken(token):  # noqa: N802
    return _is_valid_token(token)
