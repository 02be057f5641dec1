"""The Python module of the wheel (python/gatelake), run against the demo API by the binary the
same wheel installed. scripts/dist.sh --check runs this file with the python of a fresh venv the
wheel was installed into, with that venv's bin/ NOT on PATH (as in a notebook whose process does
not have it): binary_path() must find the binary anyway."""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from importlib import metadata
from pathlib import Path
from typing import Iterator

import pytest

import gatelake

README = Path(__file__).resolve().parents[2] / "README.md"
RECORDS = 250


@pytest.fixture(scope="module")
def demo_api() -> Iterator[str]:
    """`gatelake demo --serve-only`: the demo API on a free loopback port, until the tests end."""
    server = subprocess.Popen(
        [gatelake.binary_path(), "demo", "--serve-only", "--records", str(RECORDS), "--page-size", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_binary_path_is_the_binary_this_wheel_installed() -> None:
    path = Path(gatelake.binary_path())
    assert path.name == "gatelake"
    assert path.parent == Path(sysconfig.get_path("scripts"))
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("gatelake ")


def test_version_names_the_build() -> None:
    v = gatelake.version()
    assert v["name"] == "gatelake"
    assert v["version"] == metadata.version("gatelake")
    assert re.fullmatch(r"[0-9a-f]{40}", v["commit"] or ""), v
    assert v["target"].endswith("-linux-gnu"), v
    assert v["profile"], v


def test_pull_returns_the_summary(demo_api: str, tmp_path: Path) -> None:
    summary = gatelake.pull(
        url=demo_api,
        paginate="cursor",
        cursor_path="next_cursor",
        records="items",
        dest=tmp_path / "lake",
        chunk_rows=100,
    )
    assert summary["status"] == "succeeded", summary
    assert summary["rows"] == RECORDS
    run = tmp_path / "lake" / summary["run_id"]
    assert (run / "_SUCCESS").is_file()
    manifest = json.loads((run / "_manifest.json").read_text())
    assert manifest["totals"]["rows"] == RECORDS
    assert len(summary["files"]) == 3, summary["files"]


def test_a_failed_run_raises_with_the_exit_codes_meaning(tmp_path: Path) -> None:
    with pytest.raises(gatelake.GatelakeError) as caught:
        gatelake.pull(url="http://127.0.0.1:9/orders", paginate="sideways", dest=tmp_path)
    e = caught.value
    assert e.exit_code == 2
    assert e.kind == "usage"
    assert e.meaning == gatelake.EXIT_CODES[2]
    assert e.summary["status"] == "failed"
    assert "sideways" in str(e) and e.meaning in str(e)


def test_a_missing_credential_is_an_auth_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATELAKE_API_KEY", raising=False)
    with pytest.raises(gatelake.GatelakeError) as caught:
        gatelake.pull(url="http://127.0.0.1:9/orders", api_auth="api-key", dest=tmp_path)
    assert caught.value.exit_code == 3, caught.value
    assert caught.value.kind == "auth"


def test_flags_become_arguments() -> None:
    args = gatelake._flag_arguments(
        {"cursor_path": "next", "create_container": True, "restart": False, "max_pages": None,
         "azure_token_file": ["a", Path("b")], "chunk_rows": 5}
    )
    assert args == ["--cursor-path", "next", "--create-container", "--azure-token-file", "a",
                    "--azure-token-file", "b", "--chunk-rows", "5"]


def test_exit_codes_are_the_readmes() -> None:
    text = README.read_text()
    section = text.split("## Exit codes", 1)[1]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.M))
    assert {int(k): v for k, v in rows.items()} == gatelake.EXIT_CODES
