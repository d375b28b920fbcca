"""environment.yml pins exactly what pyproject.toml pins."""
from __future__ import annotations

import tomllib

from xflow.paths import repo_root


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((repo_root() / "pyproject.toml").read_text())
    extras = py["project"]["optional-dependencies"]
    pins = set(py["project"]["dependencies"]) | set(extras["test"]) | set(extras["peers"])
    env = {
        line.strip()[2:].strip()
        for line in (repo_root() / "environment.yml").read_text().splitlines()
        if line.startswith("      - ")
    }
    assert pins == env, f"only in pyproject: {pins - env}; only in environment.yml: {env - pins}"
    assert all("==" in p for p in pins), "every dependency is pinned with =="
