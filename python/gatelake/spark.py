"""Run one partitioned gatelake job on a Spark pool: N Spark tasks, each a gatelake worker.

A job that declares partitions (time windows, keys or ranges: ``gatelake pull --help``) can be
pulled by many workers at once, each claiming partitions by lease in the lake itself, with no
coordinator: the last worker to finish writes the run's manifest, ``load.sql`` and ``_SUCCESS``
once. This module makes Spark start those workers. Each task runs the ``gatelake`` binary that
``pip install gatelake`` put on the executor, with ``--worker`` and the same ``--run-key``
(Spark's application id and a key drawn once per call, on the driver), so:

- a task Spark retries (the executor was lost, the worker failed) is just another worker: it
  takes over what its predecessor left, from that partition's checkpoint, once the lease the
  dead one held has expired;
- a speculative copy of a slow task is another worker too: it finds the partitions taken and
  either helps with what is left or says there is nothing left;
- a task that starts after the run has committed exits at once ("nothing left").

    from gatelake.spark import run_on_spark

    result = run_on_spark(
        spark, job="orders_backfill", workers=16,
        window_start="2025-01-01", window_end="2026-01-01", window="1d",
        window_params="from,to",
    )
    print(result["committed"], result["rows"])

Keyword arguments are ``gatelake pull``'s flags with ``_`` for ``-``, as for
:func:`gatelake.pull`. In Spark's local mode a task is not retried unless the master says so
(``local[4,3]``: 4 threads, 3 attempts per task); on a cluster ``spark.task.maxFailures``
applies (4 by default).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

from . import GatelakeError, FlagValue, _flag_arguments, _json_object, binary_path

__all__ = ["run_on_spark", "worker_command"]


def worker_command(binary: str, run_key: str, flags: Mapping[str, FlagValue]) -> List[str]:
    """The command line of one worker: ``gatelake pull FLAGS --worker --run-key KEY``, with
    ``--output json`` (one summary on stdout) and ``--progress none`` unless given."""
    flags = dict(flags)
    flags.setdefault("progress", "none")
    flags["output"] = "json"
    flags["worker"] = True
    flags["run_key"] = run_key
    return [binary, "pull", *_flag_arguments(flags)]


def _run_worker(
    index: int,
    run_key: str,
    flags: Mapping[str, FlagValue],
    binary: Optional[str],
    env: Optional[Mapping[str, str]],
    stdin: Optional[str],
    cwd: Optional[str],
    timeout: Optional[float],
) -> Dict[str, Any]:
    """One worker, in a Spark task: the binary's JSON summary, or an exception (so that Spark
    retries the task) that says what failed. Runs on the executor: the binary is looked up
    there, not on the driver."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    flags = dict(flags)
    # The name leases and `gatelake status` show: which task, which attempt, on which host.
    flags.setdefault("worker_id", _task_name(index))
    done = subprocess.run(
        worker_command(binary or binary_path(), run_key, flags),
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
    summary["task"] = index
    return summary


def _task_name(index: int) -> str:
    attempt = 0
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
        if context is not None:
            attempt = context.attemptNumber()
    except ImportError:
        pass
    return f"spark-task-{index}-attempt-{attempt}@{socket.gethostname()}"


def run_on_spark(
    spark: Any,
    job: Optional[str] = None,
    *,
    workers: int,
    run_key: Optional[str] = None,
    binary: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    stdin: Optional[str] = None,
    cwd: Optional[Union[str, os.PathLike]] = None,
    timeout: Optional[float] = None,
    **flags: FlagValue,
) -> Dict[str, Any]:
    """Pull one partitioned job with ``workers`` Spark tasks, each a ``gatelake pull --worker``.

    Args:
        spark: the ``SparkSession`` (``spark`` in a notebook).
        job: the job's name (``--job``), as for :func:`gatelake.pull`.
        workers: how many tasks (workers) to start; more than the job's partitions only adds
            workers that find nothing left.
        run_key: what names "this run" for every worker (``--run-key``); by default Spark's
            application id and a key drawn once per call, so Spark's retries and speculative
            copies join the same run while a second call starts the next one.
        binary: the ``gatelake`` binary on the executors (default: the one ``pip install
            gatelake`` put beside this module on each executor, see :func:`gatelake.binary_path`).
        env: extra environment variables for every worker (``GATELAKE_*`` settings).
        stdin: text for every worker's standard input, e.g. an Entra token with
            ``azure_token_stdin=True`` (it travels inside the Spark task, never on a command line).
        cwd: the folder the workers run in, on the executors.
        timeout: seconds before one worker is stopped (its task then fails and is retried).
        **flags: any flag of ``gatelake pull``, ``_`` for ``-``.

    Returns:
        ``{"run_key", "run_id", "committed", "rows", "partitions", "workers"}``: ``workers`` holds
        each finished task's JSON summary (its ``partitions`` list says what it pulled),
        ``committed`` is true when a worker wrote the run's ``_SUCCESS`` (or found it written),
        ``rows`` is the run's records (as the committing worker counted them), ``partitions``
        the partitions these workers completed.

    Raises:
        ValueError: ``workers`` is not a positive number.
        GatelakeError: every task succeeded yet no worker committed the run (the run is
            unfinished: ``gatelake status`` shows why).
        Exception: whatever Spark raises when a task failed more than ``spark.task.maxFailures``
            times (its message quotes the worker's :class:`gatelake.GatelakeError`).
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer (got {workers!r})")
    if job is not None:
        flags["job"] = job
    if run_key is None:
        run_key = f"{spark.sparkContext.applicationId}-{uuid.uuid4().hex[:12]}"
    workdir = os.fspath(cwd) if cwd is not None else None
    env_copy = dict(env) if env else None
    flags_copy = dict(flags)

    def task(index: int, _rows: Iterator[int]) -> Iterator[str]:
        summary = _run_worker(index, run_key, flags_copy, binary, env_copy, stdin, workdir, timeout)
        yield json.dumps(summary)

    summaries = [
        json.loads(s)
        for s in spark.sparkContext.parallelize(range(workers), workers).mapPartitionsWithIndex(task).collect()
    ]
    return _outcome(run_key, summaries)


def _outcome(run_key: str, summaries: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What the workers did together, from their summaries. The run is committed when a worker
    says it committed it, or found it committed (``nothing_left``: e.g. a retried task whose
    first attempt committed and died before Spark heard of it)."""
    committed = any(bool(s.get("committed")) or s.get("status") == "nothing_left" for s in summaries)
    run_ids = sorted({str(s["run_id"]) for s in summaries if s.get("run_id")})
    done = [p for s in summaries for p in s.get("partitions") or [] if p.get("outcome") == "done"]
    run_rows = [s["run_rows"] for s in summaries if s.get("run_rows") is not None]
    result = {
        "run_key": run_key,
        "run_id": run_ids[0] if len(run_ids) == 1 else run_ids or None,
        "committed": committed,
        # The committing worker counts the whole run; else what these workers completed.
        "rows": run_rows[0] if run_rows else sum(int(p.get("rows") or 0) for p in done),
        "partitions": len(done),
        "workers": sorted(summaries, key=lambda s: s.get("task", 0)),
    }
    if not committed:
        raise GatelakeError(
            4,
            {
                "error": f"{len(summaries)} workers finished but none committed run key {run_key}; "
                "`gatelake status --job …` shows which partitions are not done",
                "error_kind": "source",
                **result,
            },
            "",
        )
    return result
