"""Docs tables of :mod:`xflow.rewrites` (``make report``, ``docs/rewrites.md``).

* ``rewrites.rules`` — every registered rule with its family and substitution (from the rule
  registry and the rules' docstrings, like ``xflow rewrite list``);
* ``rewrites.rewrite_latency`` — the optimizers vs ``ORT_ENABLE_ALL`` per zoo model: measured
  speed-up with its interval and verdict, the cost model's prediction and the optimization time
  (``results/rewrites/rewrite_latency.csv``, ``benchmarks/rewrite_latency.py``).
"""
from __future__ import annotations

from xflow.tables import fmt, fmt_ci, load_result, markdown_table, report_table

__all__: list[str] = []


def rule_rows() -> list[dict[str, str]]:
    """``{name, module, rewrite}`` per registered rule: the substitution is the first line of the
    rule class's docstring (``xflow rewrite list`` prints the same)."""
    from xflow.rewrites import RULES

    rows = []
    for r in RULES:
        doc = (type(r).__doc__ or "").strip().splitlines()[0].replace("``", "")
        rows.append({"name": r.name, "module": type(r).__module__.rsplit(".", 1)[-1],
                     "rewrite": doc.split(" Location:")[0]})
    return rows


@report_table("rewrites.rules")
def rules_table() -> str:
    """Every hand-written rule: family (module), name, substitution."""
    rows, last = [], None
    for r in rule_rows():
        rows.append(["" if r["module"] == last else f"`{r['module']}`", f"`{r['name']}`",
                     r["rewrite"].replace("|", "\\|")])
        last = r["module"]
    return markdown_table(["family (file)", "rule", "substitution"], rows)


@report_table("rewrites.rewrite_latency")
def rewrite_latency_table() -> str:
    """Per model and thread count: original latency, then per optimizer the measured speed-up
    over the original with its 95 % interval and verdict (predicted speed-up, optimization time,
    rules applied)."""
    df = load_result("rewrites/rewrite_latency.csv")
    wide = df.pivot_table(index=["model", "threads", "optimizer"], columns="metric", values="value",
                          aggfunc="first").reset_index()
    meta = df.drop_duplicates(["model", "threads", "optimizer"]).set_index(["model", "threads", "optimizer"])
    rows = []
    for r in wide.itertuples():
        m = meta.loc[(r.model, r.threads, r.optimizer)]
        rules = m["rules"] if isinstance(m.get("rules"), str) and m["rules"] else ""
        rule_set = ", ".join(sorted(set(rules.split(",")))) if rules else "—"
        rows.append([f"`{r.model}`", int(r.threads), r.optimizer, fmt(r.original_median_ms, 3),
                     fmt_ci(r.speedup, m["speedup_lo"], m["speedup_hi"], m["verdict"]),
                     fmt(r.predicted_speedup, 3), fmt(r.optimize_time_s, 2), int(r.n_rewrites), rule_set,
                     fmt(m["noise_floor"], 3), m.get("config", "")])
    return markdown_table(["model", "threads", "optimizer", "original ms", "measured speed-up [95% CI] verdict",
                           "predicted", "optimize s", "rewrites", "rules", "A/A floor", "config"], rows,
                          ["l", "r", "l", "r", "l", "r", "r", "r", "l", "r", "l"])
