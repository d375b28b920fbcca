"""Scale: full-batch Unifews GCN training and push-propagation SGC with mini-batch MLP training on a
synthetic graph with ≥ 10⁷ entries of Â, each within the 24 GiB memory budget.

Each mode runs in its own process (spawned), so its peak resident memory (``ru_maxrss``) is its own;
one row per mode goes to ``results/sparsify/scale.csv`` (:func:`xflow.tables.save_result`): graph
size, peak memory, sparsities, MAC reduction, accuracy. No timing is recorded here (speed is
measured in ``benchmarks/sparsify_speed.py``). The ``sparsify.scale`` table of ``docs/sparsify.md``
is generated from it.

Usage::

    .venv/bin/python benchmarks/sparsify_scale.py           # 10⁶-node SBM, 1.1·10⁷ entries; ~5 GiB, minutes
    .venv/bin/python benchmarks/sparsify_scale.py --quick   # 10⁵ nodes, written to results/sparsify_quick
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET_GIB = 24.0


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def _graph(n: int, seed: int):
    from xflow.sparsify.layers import prepare_graph
    from xflow.sparsify.synthetic import sbm_graph

    data = sbm_graph(n, 10, num_features=16, seed=seed)
    return data, prepare_graph(data.edge_index, n, True)


def _mode(args: tuple) -> dict:
    """One mode in a fresh process: build the graph, train, return the row."""
    mode, n, epochs, seed = args
    import torch

    torch.set_num_threads(1)
    data, g = _graph(n, seed)
    row = {"mode": mode, "num_nodes": n, "num_edges": g.num_edges, "epochs": epochs, "seed": seed, "threads": 1}
    if mode.startswith("full_batch"):
        from xflow.sparsify.models import build_model
        from xflow.sparsify.train import train_model

        da, dw = (1.0, 0.5) if mode == "full_batch_unifews" else (0.0, 0.0)
        torch.manual_seed(seed)
        model = build_model("gcn", 16, int(data.y.max()) + 1, delta_a=da, delta_w=dw, hidden=16, batch_norm=True,
                            input_dropout=False)
        m = train_model(model, data, g, epochs=epochs, lr=0.01, weight_decay=0.0, schedule="reference")
        row.update(model="gcn", delta_a=da, delta_w=dw, batch_size=None)
    else:
        from xflow.sparsify.decoupled import delta_for_push_sparsity, push_graph, run_decoupled

        # push thresholds are absolute (their scale depends on the graph): δ_a for 50 % of the pushes
        da, _ = delta_for_push_sparsity(data.x, push_graph(g), 0.5, 2, "sgc")
        m, _ = run_decoupled(data, g, model="sgc", delta_a=da, delta_w=0.1, hops=2, hidden=64, epochs=epochs,
                             batch_size=4096, seed=seed)
        row.update(model="sgc (push, 2 hops)", delta_a=da, delta_w=0.1, batch_size=4096)
    row.update({k: float(m[k]) for k in ("test_acc", "edge_sparsity_offdiag", "weight_sparsity", "mac_reduction",
                                          "push_sparsity") if k in m})
    row["classes"] = int(data.y.max()) + 1
    row["peak_gib"] = _peak_gib()
    row["budget_gib"] = BUDGET_GIB
    row["within_budget"] = row["peak_gib"] < BUDGET_GIB
    return row


def main(argv=None) -> None:
    """Run the three modes, print and save one row each."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10^5 nodes, results/sparsify_quick")
    p.add_argument("--nodes", type=int, default=None)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    from xflow.tables import save_result

    n = args.nodes or (100_000 if args.quick else 1_000_000)
    ctx = mp.get_context("spawn")
    rows = []
    for mode in ("full_batch_dense", "full_batch_unifews", "minibatch_push_sgc"):
        with ctx.Pool(1) as pool:
            r = pool.apply(_mode, ((mode, n, args.epochs, 0),))
        print(f"{mode:20} {r['num_edges']:,} entries  peak {r['peak_gib']:.2f} GiB  acc {100 * r['test_acc']:.1f}%  "
              f"edges removed {100 * r.get('edge_sparsity_offdiag', 0):.1f}%  MAC reduction {r['mac_reduction']:.2f}×",
              flush=True)
        rows.append(r)
    area = "sparsify_quick" if args.quick else "sparsify"
    print(f"wrote {save_result(rows, f'{area}/scale.csv', threads=1)}")


if __name__ == "__main__":
    main()
