"""``load_model`` on zoo exports: what the one folding + DCE pass removes, whether the outputs stay
the same, and how long loading takes.

For each model: nodes in the export and after :func:`xflow.graphs.load_model` (validate, infer
shapes once, fold + DCE), the pass's counts (:class:`xflow.graphs.folding.FoldStats`), the largest
absolute output difference between the export and the folded model under ONNX Runtime (random
inputs, two trials, :func:`xflow.runtime.equivalence.compare_outputs`), and the load time through
the measurement core (thread CPU decides; one round = one ``load_model`` from the cached file).

    .venv/bin/python benchmarks/graphs_load.py --quick     # squeezenet1_1, bert_encoder, nasrnn; 3 rounds
    .venv/bin/python benchmarks/graphs_load.py             # + googlenet, resnet18, resnet50, inception_v3; 5 rounds

Writes ``results/graphs/load.csv`` (docs table ``graphs.load``, :mod:`xflow.graphs.report`).
"""
from __future__ import annotations

import argparse
import json
import sys

QUICK = ["squeezenet1_1", "bert_encoder", "nasrnn"]
FULL = QUICK + ["googlenet", "resnet18", "resnet50", "inception_v3"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK)}; 3 rounds")
    p.add_argument("--models", nargs="+", help="zoo model names")
    p.add_argument("--rounds", type=int, help="timed loads per model (default 5, quick 3)")
    args = p.parse_args(argv)

    import onnx

    from xflow.graphs import load_model, zoo
    from xflow.runtime.equivalence import compare_outputs
    from xflow.runtime.measure import Variant, measure
    from xflow.tables import save_result

    models = args.models or (QUICK if args.quick else FULL)
    rounds = args.rounds or (3 if args.quick else 5)
    rows = []
    for name in models:
        path = zoo.export(name)
        raw = onnx.load(str(path))
        g = load_model(str(path))
        diffs = compare_outputs(g.model, raw, n_trials=2)
        m = measure({"load": Variant(lambda: load_model(str(path)), threads=1)}, aa=False,
                    warmup=1, rounds=rounds, inner=1, progress=True, desc=f"load {name}")
        rec = m.records(model=name)[0]
        rec.update(nodes_export=len(raw.graph.node), nodes_loaded=len(g.nodes),
                   initializers_export=len(raw.graph.initializer), initializers_loaded=len(g.initializer_values),
                   outputs_match=all(d.ok for d in diffs), max_abs_diff=max(d.max_abs_err for d in diffs),
                   **{f"fold_{k}": v for k, v in g.fold_stats.as_dict().items()})
        rows.append(rec)
        print(json.dumps({k: rec[k] for k in ("model", "nodes_export", "nodes_loaded", "max_abs_diff",
                                               "thread_cpu_ms", "wall_ms")}), flush=True)
    print("wrote", save_result(rows, "graphs/load.csv", threads=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
