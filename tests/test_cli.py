"""The xflow command: help, JSON output, clean errors."""
from __future__ import annotations

import json
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "xflow", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0 and "notebooks" in r.stdout


def test_notebooks_list_json():
    r = run("notebooks", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert "notebooks" in json.loads(r.stdout)


def test_unknown_notebook_is_a_clean_error():
    r = run("notebooks", "run", "no_such_notebook")
    assert r.returncode == 2
    assert "no notebook" in r.stderr and "Traceback" not in r.stderr
