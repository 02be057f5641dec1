"""gatelake from Python: run the ``gatelake`` binary that this wheel installed.

``pip install gatelake`` (or ``%pip install gatelake`` in a Synapse or Fabric notebook) puts the
``gatelake`` command on ``PATH`` and this module beside it. The module adds nothing to the
engine: it runs the same binary with ``--output json`` and hands back its summary, so that a
notebook cell reads a dict instead of parsing text, and a failure is an exception that says what
failed (the exit code's meaning) instead of a number.

    import gatelake

    summary = gatelake.pull(job="orders")            # ./gatelake.toml's [jobs.orders]
    summary = gatelake.pull(
        url="https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders",
        paginate="cursor", cursor_path="next_cursor", records="items",
        dest="abfss://raw@myaccount.dfs.core.windows.net/orders",
    )
    print(summary["rows"], summary["destination"])

Keyword arguments are the command's flags with ``_`` for ``-`` (``cursor_path`` is
``--cursor-path``): ``True`` gives a bare flag, ``False`` or ``None`` leaves it out, and a list
repeats it. ``gatelake pull --help`` lists them all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

__all__ = ["GatelakeError", "EXIT_CODES", "binary_path", "pull", "version"]

#: What each exit code means (the README's "Exit codes" table, kept equal to it by the tests).
EXIT_CODES: Dict[int, str] = {
    0: "success: the run did what was asked",
    1: "unexpected error (a bug: please report it)",
    2: "usage or configuration: a bad flag, env var, job file or destination",
    3: "authentication: a credential missing, unusable or refused on any hop (API key or bearer token not given, no Azure identity, STS AccessDenied, storage 401/403)",
    4: "the source API: unreachable, an error status, an untrusted certificate, a page that cannot be read, records that drift from the schema, a Retry-After past --max-retry-after, or an incomplete listing (a partial run: cut by --max-pages, or a record count that differs from the API's total or --expect-rows)",
    5: "storage: unreachable, a missing container, or a failed write",
    6: "busy: another run holds the job's lock, or changed its checkpoint during this run",
    130: "interrupted (Ctrl-C or SIGTERM)",
}

FlagValue = Union[str, int, float, bool, os.PathLike, Sequence[Union[str, int, float, os.PathLike]], None]


class GatelakeError(RuntimeError):
    """A run that did not succeed.

    Attributes:
        exit_code: the binary's exit code (see ``EXIT_CODES``).
        kind: the short name of the failure (``"usage"``, ``"auth"``, ``"source"``, ``"sink"``,
            ``"busy"``, ``"interrupted"``, ``"internal"``), from the JSON object.
        meaning: what the exit code means.
        summary: the JSON object the binary printed (for a partial run, the run's summary with
            ``"status": "partial"``); empty when it printed none.
        stderr: what the binary wrote on stderr (progress and error lines; never a secret).
    """

    def __init__(self, exit_code: int, summary: Dict[str, Any], stderr: str) -> None:
        self.exit_code = exit_code
        self.summary = summary
        self.stderr = stderr
        self.kind: str = str(summary.get("error_kind", "unknown"))
        self.meaning = EXIT_CODES.get(exit_code, f"exit code {exit_code}")
        error = summary.get("error") or _last_line(stderr) or "no message"
        super().__init__(f"gatelake exited {exit_code} ({self.meaning}): {error}")


def binary_path() -> str:
    """The path of the ``gatelake`` binary this package installed.

    Looked for where pip puts scripts for this interpreter (the environment's, then the user
    scheme's, then the ``bin`` folder beside a ``--target``/``--prefix`` install), and last on
    ``PATH``: a notebook's process may not have the environment's scripts folder on its
    ``PATH`` at all, which is why this exists.

    Raises:
        FileNotFoundError: no ``gatelake`` binary was found.
    """
    name = "gatelake.exe" if sys.platform == "win32" else "gatelake"
    for folder in _script_folders():
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        "the gatelake binary is not installed beside this module nor on PATH; "
        "reinstall it with: pip install --force-reinstall gatelake"
    )


def _script_folders() -> List[Path]:
    folders = [Path(sysconfig.get_path("scripts"))]
    user_scheme = f"{os.name}_user" if sys.version_info < (3, 10) else sysconfig.get_preferred_scheme("user")
    try:
        folders.append(Path(sysconfig.get_path("scripts", scheme=user_scheme)))
    except KeyError:
        pass
    # --target DIR: DIR/gatelake/__init__.py and DIR/bin/gatelake; --prefix/--root:
    # PREFIX/lib/pythonX.Y/site-packages/gatelake and PREFIX/bin.
    package = Path(__file__).resolve().parent
    folders.append(package.parent / "bin")
    if len(package.parents) > 3:
        folders.append(package.parents[3] / "bin")
    return folders


def pull(
    job: Optional[str] = None,
    *,
    stdin: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[Union[str, os.PathLike]] = None,
    timeout: Optional[float] = None,
    **flags: FlagValue,
) -> Dict[str, Any]:
    """Run ``gatelake pull --output json`` and return its summary.

    Args:
        job: the job's name (``--job``): selects ``[jobs.NAME]`` in the job file.
        stdin: text for the binary's standard input, e.g. an Entra token with
            ``azure_token_stdin=True`` (a token passed as an argument would be visible to every
            process on the machine).
        env: extra environment variables for the run (``GATELAKE_*`` settings, credentials),
            on top of this process's environment.
        cwd: the folder to run in (where ``./gatelake.toml`` and ``./lake`` are found).
        timeout: seconds before the run is stopped (``subprocess.TimeoutExpired``).
        **flags: any flag of ``gatelake pull``, ``_`` for ``-``. ``progress`` defaults to
            ``"none"``: a cell's output shows the summary, not progress lines.

    Returns:
        The run's summary: ``status``, ``run_id``, ``rows``, ``pages``, ``files``, ``bytes``,
        ``destination``, ``manifest_url``, ``warnings``, …

    Raises:
        GatelakeError: the run failed or was partial (non-zero exit code).
    """
    if job is not None:
        flags["job"] = job
    flags.setdefault("progress", "none")
    flags["output"] = "json"
    return _run_json(["pull", *_flag_arguments(flags)], stdin=stdin, env=env, cwd=cwd, timeout=timeout)


def version() -> Dict[str, Any]:
    """The binary's build: ``version``, ``commit``, ``target`` and ``profile``."""
    return _run_json(["--version", "--output", "json"])


def _flag_arguments(flags: Mapping[str, FlagValue]) -> List[str]:
    out: List[str] = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                out.extend([flag, os.fspath(item) if isinstance(item, os.PathLike) else str(item)])
        else:
            out.extend([flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)])
    return out


def _run_json(
    arguments: List[str],
    *,
    stdin: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[Union[str, os.PathLike]] = None,
    timeout: Optional[float] = None,
) -> Dict[str, Any]:
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    done = subprocess.run(
        [binary_path(), *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    summary = _json_object(done.stdout)
    if done.returncode != 0:
        raise GatelakeError(done.returncode, summary, done.stderr)
    if not summary:
        raise GatelakeError(
            1, {"error": f"no JSON object on stdout: {done.stdout[-500:]!r}", "error_kind": "internal"}, done.stderr
        )
    return summary


def _json_object(stdout: str) -> Dict[str, Any]:
    """The last line of stdout that is a JSON object (the binary prints exactly one)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
