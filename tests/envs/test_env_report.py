"""The before/after ratio of the env-step table: ratio of medians with an unpaired bootstrap interval."""
import numpy as np

from xflow.envs.report import ratio_interval


def test_ratio_interval_brackets_the_ratio_of_medians():
    rng = np.random.default_rng(0)
    before = 3000 * np.exp(rng.normal(0, 0.05, 9))
    after = 1000 * np.exp(rng.normal(0, 0.05, 9))
    r, lo, hi = ratio_interval(before, after)
    assert r == np.median(before) / np.median(after)
    assert lo < r < hi and 2.7 < lo and hi < 3.3  # 3x apart, 5 % noise: a tight interval around 3
    r2, lo2, hi2 = ratio_interval(after, before)
    assert abs(r2 * r - 1) < 1e-12 and hi2 < 1  # direction matters


def test_ratio_interval_widens_with_noise_and_is_deterministic():
    rng = np.random.default_rng(1)
    a, b = 2 * np.exp(rng.normal(0, 0.5, 5)), np.exp(rng.normal(0, 0.5, 5))
    quiet = ratio_interval(2 * np.ones(5) * np.exp(np.linspace(-0.01, 0.01, 5)), np.exp(np.linspace(-0.01, 0.01, 5)))
    noisy = ratio_interval(a, b)
    assert (noisy[2] - noisy[1]) > 10 * (quiet[2] - quiet[1])
    assert ratio_interval(a, b) == noisy


def test_ablation_summary_counts_runs_that_match_or_beat_greedy(tmp_path, monkeypatch):
    """Pooled over held-out graphs: ``≤ greedy`` counts runs whose predicted ratio is at most
    greedy's on the same graph (a flipped comparison or a pooled greedy would change the count)."""
    import pandas as pd

    from xflow.envs.report import rl_ablation_summary_table

    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path))
    rows = [{"variant": "greedy", "seed": 0, "graph": "a", "held_out": True, "final_cost_ratio": 0.5},
            {"variant": "greedy", "seed": 0, "graph": "b", "held_out": True, "final_cost_ratio": 0.9},
            {"variant": "greedy", "seed": 0, "graph": "t", "held_out": False, "final_cost_ratio": 0.8}]
    for seed, (ra, rb) in enumerate([(0.5, 0.95), (0.6, 0.9), (0.4, 1.0)], start=1):
        for g, r, held in (("a", ra, True), ("b", rb, True), ("t", 0.8, False)):
            rows.append({"variant": "gnn+dense", "seed": seed, "graph": g, "held_out": held, "final_cost_ratio": r,
                         "train_return_first20": -1.0, "train_return_last20": 2.0, "train_cpu_s": 60.0})
    (tmp_path / "envs").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "envs" / "rl_ablation.csv", index=False)
    table = rl_ablation_summary_table()
    line = next(ln for ln in table.splitlines() if ln.startswith("| gnn+dense"))
    assert "| 3 / 6 |" in line  # a: 0.5 and 0.4 ≤ 0.5; b: 0.9 ≤ 0.9; not 0.6, 0.95, 1.0
    assert "| 3 |" in line  # seeds


def _converge_rows(hashes, ratios, t_step=100.0):
    return [{"model": "m", "seed": 1, "iteration": i + 1, "global_step": 128 * (i + 1), "train_s": t_step * (i + 1),
             "eval_final_ratio": r, "eval_length": 3, "eval_hash": h, "greedy_ratio": 0.99,
             "train_episodes": 2, "train_mean_ratio": 1.0, "train_ratios": "1.1;0.9"}
            for i, (h, r) in enumerate(zip(hashes, ratios))]


def test_converge_table_keeps_runs_of_each_reward_cost_model_apart(tmp_path, monkeypatch):
    """A run with ``--cost-model ort`` and one with the default reward (rows older than the column)
    on the same model and seed are two rows, each judged on its own updates. Kills: grouping by
    (model, seed) only (one row whose hashes interleave: never stable)."""
    import pandas as pd

    from xflow.envs.report import rl_converge_table

    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path))
    (tmp_path / "rl").mkdir()
    old = _converge_rows(list("abcdddddd"), [1.0] * 9)
    ort = [{**r, "cost_model": "ort"} for r in _converge_rows(list("xyyyyyyyy"), [0.9] * 9)]
    pd.DataFrame(old + ort).to_csv(tmp_path / "rl" / "converge.csv", index=False)
    lines = rl_converge_table().splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| `m` | `calibrated` | 1 | 9 |") and "update 4 (400 s)" in lines[2]
    assert lines[3].startswith("| `m` | `ort` | 1 | 9 |") and "update 2 (200 s)" in lines[3]


def test_converge_table_finds_the_stable_update_and_judges_the_budget(tmp_path, monkeypatch):
    """Stable from the start of the last unchanged run (a late change means not stable), timed at
    that update's training seconds against the 30-minute target."""
    import pandas as pd

    from xflow.envs.report import rl_converge_table

    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path))
    (tmp_path / "rl").mkdir()
    f = tmp_path / "rl" / "converge.csv"
    pd.DataFrame(_converge_rows(list("abcdddddd"), [1.2, 1.1, 1.0] + [0.999] * 6)).to_csv(f, index=False)
    row = rl_converge_table().splitlines()[2]
    assert "update 4 (400 s)" in row and row.rstrip(" |").endswith("met") and "1 / 5" in row
    assert [c.strip() for c in row.strip("|").split("|")][12] == "1"  # the final run of d's is not "earlier"
    pd.DataFrame(_converge_rows(list("abcdddddd"), [1.0] * 9, t_step=500.0)).to_csv(f, index=False)
    assert "not met (too slow)" in rl_converge_table()
    pd.DataFrame(_converge_rows(list("aaaaaaaab"), [1.0] * 9)).to_csv(f, index=False)
    row = rl_converge_table().splitlines()[2]
    assert "not stable" in row and "2 / 5" in row and row.rstrip(" |").endswith("not met")
    assert "| 8 |" in row  # the earlier unchanged run of eight "a"s that broke
    pd.DataFrame(_converge_rows(list("abddddddd"), [1.0] * 8 + [1.05])).to_csv(f, index=False)
    assert "ends worse than the input" in rl_converge_table()
    pd.DataFrame(_converge_rows(list("abddddddd"), [1.0] * 8 + [0.99])).to_csv(f, index=False)
    assert "(at greedy's graph)" in rl_converge_table()


def test_rl_evaluate_and_targets_tables_split_rows_by_backend(monkeypatch):
    """Rows without a backend are ORT's; the torch tables show only torch rows, with the torch
    label. Kills: ignoring the backend column (both tables would list the case twice)."""
    import pandas as pd

    import xflow.envs.report as rep
    from xflow.tables import with_defaults

    def row(backend, method, ratio, verdict, speedup):
        return {"case": "c", "backend": backend, "method": method, "seeds": 1, "stochastic": False,
                "predicted_ratio": ratio, "predicted_lo": ratio, "predicted_hi": ratio, "measured_speedup": speedup,
                "speedup_lo": speedup - 0.01, "speedup_hi": speedup + 0.01, "verdict": verdict,
                "search_time_s": 1.0, "n_rewrites": 2}
    rows = [row(None, "rl", 0.99, "same", 1.0), row(None, "greedy", 0.99, "same", 1.0),
            row("torch", "rl", 0.99, "faster", 1.05), row("torch", "greedy", 0.99, "faster", 1.05)]
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    ort, torch_ = rep.rl_evaluate_table().splitlines(), rep.rl_evaluate_torch_table().splitlines()
    assert len(ort) == len(torch_) == 4
    assert "ORT, 1 thread" in ort[0] and "torch backend, CPU" in torch_[0]
    assert "same" in ort[2] and "1.050× [1.040, 1.060] faster" in torch_[2]
    t_ort, t_torch = rep.rl_targets_table().splitlines(), rep.rl_targets_torch_table().splitlines()
    assert len(t_ort) == len(t_torch) == 3 and "| same |" in t_ort[2] and "| faster |" in t_torch[2]


def test_rl_evaluate_rows_under_another_cost_model_get_their_own_table(monkeypatch):
    """Rows whose searches used another cost model than the policy's (``--cost-model``) leave the
    main tables (which judge the policy under its own model) for ``envs.rl_evaluate_cost_models``;
    rows older than the ``policy_cost_model`` column are the policy's own. Kills: mixing both in
    one table (the case would be listed twice), judging RL vs greedy across cost models."""
    import pandas as pd

    import xflow.envs.report as rep
    from xflow.tables import with_defaults

    def row(cm, pcm, method, ratio):
        return {"case": "c", "backend": "ort", "cost_model": cm, "policy_cost_model": pcm, "method": method,
                "seeds": 1, "stochastic": False, "predicted_ratio": ratio, "predicted_lo": ratio,
                "predicted_hi": ratio, "measured_speedup": 1.02, "speedup_lo": 1.01, "speedup_hi": 1.03,
                "verdict": "faster", "search_time_s": 1.0, "n_rewrites": 2}
    rows = [row("calibrated", None, "rl", 1.0), row("calibrated", None, "greedy", 1.0),
            row("ort", "calibrated", "rl", 0.99), row("ort", "calibrated", "greedy", 0.98)]
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    main = rep.rl_evaluate_table().splitlines()
    assert len(main) == 4 and "1.000000" in main[2]
    other = rep.rl_evaluate_cost_models_table().splitlines()
    assert len(other) == 4 and "`ort` (trained: `calibrated`)" in other[2]
    assert "0.990000" in other[2] and "+1.0204 %" in other[2] and "+0.0000 %" in other[3]
    assert rep.rl_targets_table().splitlines()[2].count("+0.0000 %") == 1  # own-model rows only


def test_rl_evaluate_rows_of_the_ort_policy_get_their_own_tables(monkeypatch):
    """Rows of the ``ort``-reward policy (``policy`` = ``xrlflow_ort.pt``) leave the default
    policy's tables for ``envs.rl_evaluate_ort_policy`` / ``envs.rl_targets_ort_policy``; rows
    without a policy column are the default policy's. Kills: ignoring the policy column (the
    case would be listed twice, RL judged against the other policy's greedy)."""
    import pandas as pd

    import xflow.envs.report as rep
    from xflow.tables import with_defaults

    def row(policy, cm, method, ratio, verdict="faster"):
        return {"case": "c", "backend": "ort", "cost_model": cm, "policy_cost_model": cm, "policy": policy,
                "method": method, "seeds": 1, "stochastic": False, "predicted_ratio": ratio,
                "predicted_lo": ratio, "predicted_hi": ratio, "measured_speedup": 1.02, "speedup_lo": 1.01,
                "speedup_hi": 1.03, "verdict": verdict, "search_time_s": 1.0, "n_rewrites": 2}
    rows = [row(None, "calibrated", "rl", 1.0, "unchanged"), row(None, "calibrated", "greedy", 1.0, "unchanged"),
            row("xrlflow_ort.pt", "ort", "rl", 0.95), row("xrlflow_ort.pt", "ort", "greedy", 0.97)]
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    main, ort = rep.rl_evaluate_table().splitlines(), rep.rl_evaluate_ort_policy_table().splitlines()
    assert len(main) == len(ort) == 4
    assert "unchanged graph" in main[2] and "0.950000" in ort[2] and "0.950000" not in "".join(main)
    (t,) = rep.rl_targets_ort_policy_table().splitlines()[2:]
    assert "-2.0619 %" in t and t.endswith("| yes | yes | faster | yes |")
    assert "+0.0000 %" in rep.rl_targets_table().splitlines()[2]


def test_rl_pretrain_table_keeps_each_policy_apart(monkeypatch):
    """One row per (policy, stage, training model); curve rows without a policy are the default
    policy's, without a stage the first stage's. Kills: grouping by model only (the two policies'
    episodes of ``m`` would be averaged), ignoring the stage (a resumed run's rows merged)."""
    import pandas as pd

    import xflow.envs.report as rep
    from xflow.tables import with_defaults

    rows = [{"policy": None, "stage": None, "model": "m", "episode": i, "final_cost_ratio": 1.0} for i in range(3)]
    rows += [{"policy": "xrlflow_ort.pt", "stage": 1, "model": "m", "episode": i, "final_cost_ratio": 0.9}
             for i in range(2)]
    rows += [{"policy": "xrlflow_ort.pt", "stage": 2, "model": "m", "episode": i, "final_cost_ratio": 0.8}
             for i in range(2, 9)]
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    lines = rep.rl_pretrain_table().splitlines()
    assert len(lines) == 5
    assert lines[2].startswith("| `xrlflow_pretrained.pt` | 1 | `m` | 3 | 1.0000")
    assert lines[3].startswith("| `xrlflow_ort.pt` | 1 | `m` | 2 | 0.9000")
    assert lines[4].startswith("| `xrlflow_ort.pt` | 2 | `m` | 7 | 0.8000")
