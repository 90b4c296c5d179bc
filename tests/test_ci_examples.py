"""The example CI pipelines (issue 34) run here: the GitHub Actions workflow's shell steps
(its matrix of two shards in sequence, then the merge job) and the GitLab jobs' scripts
(``parallel: 2``), on tiny scripts that boot nothing, with ``photon-driver`` this checkout.
The steps that install the host or set up KVM are left out; the artifact upload and
download are the same folders on one machine. The merged report must be the unsharded
suite's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conftest import photon_env

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parent.parent
LEFT_OUT = re.compile(r"install-host|udevadm|apt-get")
SCRIPTS = {
    "a.py": 'with subtest("a"):\n    pass\n',
    "b.py": 'with subtest("b"):\n    assert False\n',
    "c.py": 'with subtest("c"):\n    pass\n',
}


def workspace(tmp_path: Path, xdg_cache: Path) -> tuple[Path, dict[str, str]]:
    """A folder with the tiny suite (``suite/``, its topology beside the scripts) and the
    environment the steps run in (``photon-driver`` on PATH runs this checkout)."""
    work = tmp_path / "work"
    (work / "suite").mkdir(parents=True)
    (work / "suite" / "topology.toml").write_text("[nodes.machine]\nvlans = [1]\n")
    for name, source in SCRIPTS.items():
        (work / "suite" / name).write_text(source)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "photon-driver"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m driver "$@"\n')
    wrapper.chmod(0o755)
    env = photon_env(xdg_cache, tmp_path / "vm")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["SUITE"] = "suite"
    return work, env


def shell(script: str, work: Path, env: dict[str, str]) -> int:
    """Run one step's shell text as the runner does (bash -e); its exit code."""
    proc = subprocess.run(
        ["bash", "-e", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    return proc.returncode


def merged_suites(junit: Path) -> dict[str, list[str]]:
    """Suite -> its testcases' names of a merged JUnit file."""
    root = ET.parse(junit).getroot()
    return {
        s.get("name", ""): sorted(c.get("name", "") for c in s.iter("testcase"))
        for s in root.iter("testsuite")
    }


def unsharded(work: Path, env: dict[str, str]) -> dict[str, list[str]]:
    """The merged JUnit of the whole suite run at once."""
    code = shell("photon-driver suite -j 2 -o whole $SUITE", work, env)
    assert code == 1
    return merged_suites(work / "whole" / "junit.xml")


def run_steps(job: dict[str, Any], substitutions: dict[str, str]) -> list[str]:
    """The shell text of a GitHub job's ``run:`` steps, install/KVM steps left out."""
    texts = []
    for step in job["steps"]:
        text = step.get("run")
        if text is None or LEFT_OUT.search(text):
            continue
        for name, value in substitutions.items():
            text = text.replace("${{ " + name + " }}", value)
        assert "${{" not in text, text
        texts.append(text)
    return texts


def test_github_actions_workflow_runs_locally(tmp_path: Path, xdg_cache: Path) -> None:
    workflow = yaml.safe_load((REPO / "ci" / "github-actions-suite.yml").read_text())
    work, env = workspace(tmp_path, xdg_cache)
    env |= {k: str(v) for k, v in workflow["env"].items() if k != "SUITE"}
    jobs = workflow["jobs"]
    shards = jobs["shard"]["strategy"]["matrix"]["shard"]
    assert env["SHARDS"] == str(len(shards))
    assert any("bash .ci/install-host" == s.get("run") for s in jobs["shard"]["steps"])
    codes = []
    for shard in shards:
        for text in run_steps(jobs["shard"], {"matrix.shard": str(shard)}):
            codes.append(shell(text, work, env))
    assert sorted(codes) == [0, 1]  # b fails in one shard only
    for text in run_steps(jobs["merge"], {}):
        assert shell(text, work, env) == 1  # the merged report has b's failure
    assert merged_suites(work / "suite-out" / "junit.xml") == unsharded(work, env)
    index = (work / "suite-out" / "index.html").read_text()
    for name in ("a", "b", "c"):
        assert re.search(rf'href="shard-[12]/suite/{name}/report.html"', index), index


def test_gitlab_parallel_jobs_run_locally(tmp_path: Path, xdg_cache: Path) -> None:
    pipeline = yaml.safe_load((REPO / "ci" / "gitlab-suite.yml").read_text())
    work, env = workspace(tmp_path, xdg_cache)
    total = pipeline["suite"]["parallel"]
    assert "bash .ci/install-host" in pipeline["suite"]["script"]
    codes = []
    for index in range(1, total + 1):
        job_env = env | {"CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(total)}
        for line in pipeline["suite"]["script"]:
            if not LEFT_OUT.search(line):
                codes.append(shell(line, work, job_env))
    assert sorted(codes) == [0, 1]
    for line in pipeline["report"]["script"]:
        if not LEFT_OUT.search(line):
            assert shell(line, work, env) == 1
    assert merged_suites(work / "suite-out" / "junit.xml") == unsharded(work, env)
