"""Docs tables of :mod:`xflow.rewrites` (``make report``, ``docs/rewrites.md``).

* ``rewrites.rules`` — every registered rule with its family and substitution (from the rule
  registry and the rules' docstrings, like ``xflow rewrite list``);
* ``rewrites.rewrite_latency`` — the optimizers vs ``ORT_ENABLE_ALL`` per zoo model: measured
  speed-up with its interval and verdict, the cost model's prediction and the optimization time
  (``results/rewrites/rewrite_latency.csv``, ``benchmarks/rewrite_latency.py``);
* ``rewrites.generated_rules`` / ``rewrites.generator_pruning`` — the generated rule set (from
  ``xflow/rewrites/generated/rules.json``);
* ``rewrites.searches`` / ``rewrites.searches_zoo`` — the search comparison (``results/rewrites/``).
"""
from __future__ import annotations

from collections import Counter

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


@report_table("rewrites.generated_rules")
def generated_rules_table() -> str:
    """Generated rules per class and domain, with an example and the z3 outcome."""
    from xflow.rewrites.generator.rule import load_rule_set

    doc = load_rule_set()
    rows = []
    by = Counter((r["class"], r["domain"]) for r in doc["rules"])
    for (cls, dom), n in sorted(by.items()):
        ex = next(r for r in doc["rules"] if r["class"] == cls and r["domain"] == dom)
        z3 = Counter(r["verification"]["z3"].get("result") for r in doc["rules"]
                     if r["class"] == cls and r["domain"] == dom)
        rows.append([cls, dom, n, ", ".join(f"{k} {v}" for k, v in sorted(z3.items())),
                     f"`{ex['src']['term']}` → `{ex['dst']['term']}`"])
    rows.append(["**total**", "", len(doc["rules"]), f"{len(doc['rejected'])} candidates rejected", ""])
    return markdown_table(["class", "domain", "rules", "z3", "example"], rows, ["l", "l", "r", "l", "l"])


@report_table("rewrites.generator_pruning")
def generator_pruning_table() -> str:
    """What the enumeration produced and what each TASO pruning step removed, per domain."""
    from xflow.rewrites.generator.rule import load_rule_set

    gen = load_rule_set()["generator"]
    rows = []
    for dom, d in gen["domains"].items():
        p = d["prune"]
        rows.append([dom, gen["max_ops"], d["graphs"], d["fingerprints"], p["pairs"], p["common_subgraph"],
                     p["common_supergraph"], p["renaming_duplicate"], p["kept"], d["verified"],
                     fmt(d["enumerate_s"], 3), fmt(d["verify_s"], 3)])
    return markdown_table(["domain", "max ops", "graphs", "fingerprints", "candidate pairs", "common subgraph",
                           "common supergraph", "renaming duplicates", "kept", "verified", "enumerate s",
                           "verify s"], rows, ["l"] + ["r"] * 11)


@report_table("rewrites.searches")
def searches_table() -> str:
    """greedy / beam / taso / tensat (/ rl): predicted and measured speed-up, search time."""
    df = load_result("rewrites/searches.csv")
    rows = []
    for r in df.itertuples():
        if isinstance(getattr(r, "error", None), str) and r.error:
            rows.append([f"`{r.model}`", r.method, "—", "—", "—", "—", "—", r.error])
            continue
        meas = fmt_ci(r.measured_speedup, r.speedup_lo, r.speedup_hi, r.verdict) \
            if getattr(r, "measured_speedup", None) == getattr(r, "measured_speedup", None) else "not verified"
        found = r.rules_applied if isinstance(r.rules_applied, str) and r.rules_applied else \
            (f"e-graph {int(r.tensat_enodes)} nodes, {int(r.tensat_iterations)} it., {r.tensat_stop}"
             if r.method == "tensat" else "nothing")
        rows.append([f"`{r.model}`", r.method, fmt(r.predicted_speedup, 3), meas,
                     f"±{100 * float(r.noise_floor):.1f}%" if r.noise_floor == r.noise_floor else "—",
                     fmt(r.search_time_s, 3), f"{int(r.nodes_before)} → {int(r.nodes_after)}", found])
    return markdown_table(["model", "search", "predicted speed-up", "measured speed-up [95% CI]", "A/A floor",
                           "search s", "nodes", "what it found"], rows,
                          ["l", "l", "r", "l", "r", "r", "r", "l"])


@report_table("rewrites.searches_zoo")
def searches_zoo_table() -> str:
    """``xflow rewrite search --search taso|tensat`` on every zoo model: the search's time vs its
    budget, the CLI's wall time, whether the written graph verifies, the predicted speed-up."""
    df = load_result("rewrites/searches_zoo.csv")
    rows = []
    for r in df.itertuples():
        rules = getattr(r, "rules", None)
        rows.append([f"`{r.model}`", r.method, rules if isinstance(rules, str) else "—",
                     fmt(r.search_time_s, 1), fmt(r.time_budget_s, 0),
                     fmt(getattr(r, "wall_s", float("nan")), 1), "yes" if r.verified else "NO",
                     fmt(r.predicted_speedup, 4), f"{int(r.nodes_before)} → {int(r.nodes_after)}",
                     r.detail if isinstance(r.detail, str) else ""])
    return markdown_table(["model", "search", "rules", "time s", "budget s", "CLI wall s", "verified",
                           "predicted speed-up", "nodes", "detail"], rows,
                          ["l", "l", "l", "r", "r", "r", "l", "r", "r", "l"])
