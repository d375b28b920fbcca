"""``save_result(..., replace_on=...)``: a partial re-run replaces its own rows and keeps the rest."""
from __future__ import annotations

import pandas as pd
import pytest

from xflow import tables


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(tables, "provenance", lambda device, threads: {"git_sha": "new"})
    return tmp_path / "results"


def test_replace_on_keeps_other_keys_with_their_provenance(results):
    pd.DataFrame([{"model": "a", "backend": "ort", "v": 1, "git_sha": "old"},
                  {"model": "b", "backend": "ort", "v": 2, "git_sha": "old"},
                  {"model": "a", "backend": "torch", "v": 3, "git_sha": "old"}]).pipe(
        lambda d: (results / "x").mkdir(parents=True) or d.to_csv(results / "x" / "r.csv", index=False))
    tables.save_result([{"model": "a", "backend": "ort", "v": 10}, {"model": "a", "backend": "ort", "v": 11}],
                       "x/r.csv", replace_on=("model", "backend"))
    df = pd.read_csv(results / "x" / "r.csv")
    got = sorted(zip(df.model, df.backend, df.v, df.git_sha))
    # kills: replacing on "model" alone (drops a/torch), keeping the old a/ort row, restamping kept rows
    assert got == [("a", "ort", 10, "new"), ("a", "ort", 11, "new"), ("a", "torch", 3, "old"), ("b", "ort", 2, "old")]


def test_defaults_fill_a_key_column_older_files_lack(results):
    (results / "x").mkdir(parents=True)
    pd.DataFrame([{"model": "a", "v": 1}, {"model": "b", "v": 2}]).to_csv(results / "x" / "r.csv", index=False)
    tables.save_result([{"model": "a", "backend": "torch", "v": 5}], "x/r.csv", replace_on=("model", "backend"),
                       defaults={"backend": "ort"})
    df = pd.read_csv(results / "x" / "r.csv")
    assert sorted(zip(df.model, df.backend, df.v)) == [("a", "ort", 1), ("a", "torch", 5), ("b", "ort", 2)]
    with pytest.raises(ValueError, match="no column 'backend'"):  # no default: say so, lose nothing
        pd.DataFrame([{"model": "a", "v": 1}]).to_csv(results / "x" / "s.csv", index=False)
        tables.save_result([{"model": "a", "backend": "torch", "v": 5}], "x/s.csv", replace_on=("model", "backend"))
    assert len(pd.read_csv(results / "x" / "s.csv")) == 1


def test_without_replace_on_the_file_is_replaced_and_a_missing_key_is_an_error(results):
    tables.save_result([{"model": "a", "v": 1}], "x/r.csv")
    tables.save_result([{"model": "b", "v": 2}], "x/r.csv")
    assert list(pd.read_csv(results / "x" / "r.csv").model) == ["b"]
    tables.save_result([{"model": "c", "v": 3}], "x/r.csv", replace_on=("model",))
    assert sorted(pd.read_csv(results / "x" / "r.csv").model) == ["b", "c"]
    with pytest.raises(ValueError, match="no key column 'seed'"):
        tables.save_result([{"model": "c", "v": 3}], "x/r.csv", replace_on=("seed",))


def test_integral_float_keys_match_integer_keys(results):
    """A key column read back as float (it once had an empty cell) still matches: a re-run
    replaces its rows instead of adding a second copy of them."""
    (results / "x").mkdir(parents=True)
    pd.DataFrame([{"model": "a", "sessions": 3.0, "v": 1}, {"model": "a", "sessions": float("nan"), "v": 2}]).to_csv(
        results / "x" / "r.csv", index=False)
    tables.save_result([{"model": "a", "sessions": 3, "v": 9}], "x/r.csv", replace_on=("model", "sessions"),
                       defaults={"sessions": 1})
    df = pd.read_csv(results / "x" / "r.csv")
    assert sorted(zip(df.sessions.astype(int), df.v)) == [(1, 2), (3, 9)]
