"""Stand-in for ``mssparkutils.fs`` / ``notebookutils.fs``, over the local file system: the
recipes' lake placeholders are substituted with a local folder (the real utility reads
``abfss://`` URLs through the workspace's storage access). ``ls`` returns FileInfo objects like
the real one (``name``, ``path``, ``isDir``, ``isFile``, ``size``); ``head`` returns up to
``maxBytes`` of a file as text."""

import os


class FileInfo:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path.rstrip("/"))
        self.isDir = os.path.isdir(path)
        self.isFile = not self.isDir
        self.size = 0 if self.isDir else os.path.getsize(path)

    def __repr__(self):
        return f"FileInfo(path={self.path}, name={self.name}, size={self.size})"


def _local(path):
    if "://" in path and not path.startswith("file://"):
        raise ValueError(f"this stand-in reads local paths only, not {path}")
    return path[len("file://"):] if path.startswith("file://") else path


def ls(path):
    p = _local(path)
    return [FileInfo(os.path.join(p, n)) for n in sorted(os.listdir(p))]


def exists(path):
    return os.path.exists(_local(path))


def head(path, maxBytes=65536):  # noqa: N803 (the real API's name)
    with open(_local(path), "rb") as f:
        return f.read(maxBytes).decode("utf-8")
