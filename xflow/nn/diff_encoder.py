r"""Embed the current graph once and every candidate from its local difference (exactly).

A candidate differs from the current graph in a few rows (added / rewired nodes) and edges. With
a :math:`k`-layer message-passing encoder, a node's layer-:math:`l` embedding can differ from the
current graph's only if it lies within :math:`l` hops of a change:

.. math::
    D_0 = \text{appended rows}, \qquad
    D_l = D_{l-1} \cup \mathcal{N}(D_{l-1}) \cup T,

where :math:`T` are the kept rows that gained or lost an edge (their attention neighbourhoods
changed) and :math:`\mathcal{N}` the (bidirectional) neighbours in the candidate graph. Layer
:math:`l` is therefore evaluated only on the edges *into* :math:`D_l`, reading the current graph's
layer-:math:`(l-1)` embeddings for sources outside :math:`D_{l-1}`; all candidates of a batch go
through each layer together (one disjoint union per layer). Pooling reads the current graph's
final embeddings for the rows outside :math:`D_k`. The result equals
:meth:`GATEncoder.forward` on the candidate graph (``tests/nn/test_diff_encoder.py``), at the cost
of the changed neighbourhoods instead of every candidate graph.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.nn import global_max_pool, global_mean_pool

from xflow.nn.gat_encoder import GATEncoder

__all__ = ["encode_with_layers", "encode_candidates"]

#: Grow the changed set by one hop per layer (switched off only by the mutant test).
_EXPAND = True


def _bidir(edge_index: Tensor, edge_attr: Tensor) -> tuple[Tensor, Tensor]:
    n_e = edge_index.size(1)
    ei = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    flag = torch.cat([edge_attr.new_zeros(n_e, 1), edge_attr.new_ones(n_e, 1)])
    return ei, torch.cat([torch.cat([edge_attr, edge_attr]), flag], dim=1)


def _edges(enc: GATEncoder, g) -> tuple[Tensor, Tensor]:
    links = np.asarray(g.edge_links, dtype=np.int64).reshape(-1, 2)
    ei = torch.as_tensor(links.T.copy())
    ea = torch.as_tensor(np.asarray(g.edges, dtype=np.float32))
    return _bidir(ei, ea) if enc.bidirectional else (ei, ea)


def encode_with_layers(enc: GATEncoder, g) -> tuple[Tensor, list[Tensor]]:
    """``(z, [h0, h1, …, hk])`` of one graph instance: its embedding and every layer's node
    embeddings (what :func:`encode_candidates` reuses)."""
    x = torch.as_tensor(np.asarray(g.nodes, dtype=np.float32))
    ei, ea = _edges(enc, g)
    hs = [enc.lin_in(x)]
    for conv, norm in zip(enc.convs, enc.norms):
        h = hs[-1]
        hs.append(norm(h + torch.nn.functional.elu(conv(h, ei, ea))))
    batch = x.new_zeros(x.size(0), dtype=torch.long)
    z = enc.lin_out(torch.cat([global_mean_pool(hs[-1], batch), global_max_pool(hs[-1], batch)], dim=-1))
    return z, hs


def encode_candidates(enc: GATEncoder, base_layers: list[Tensor], parts: Sequence[tuple]) -> Tensor:
    """Embeddings ``(K, out)`` of ``K`` candidates given the current graph's layer embeddings
    (:func:`encode_with_layers`) and each candidate's :func:`xflow.envs.features.diff_parts`."""
    if not parts:
        return base_layers[0].new_zeros(0, enc.out_channels)
    k = len(enc.convs)
    cands = []
    for inst, kept_rows, _n_kept_edges, touched in parts:
        n = inst.nodes.shape[0]
        n_keep = len(kept_rows)
        ei, ea = _edges(enc, inst)
        src, dst = ei[0].numpy(), ei[1].numpy()
        appended = np.arange(n_keep, n)
        # kept endpoints of new edges and kept rows that lost an edge: their neighbourhoods changed
        n_base_dir = _n_kept_edges
        new_mask = np.ones(src.size, dtype=bool)
        new_mask[:n_base_dir] = False
        if enc.bidirectional:
            half = src.size // 2
            new_mask[half:half + n_base_dir] = False
        t = np.union1d(np.union1d(src[new_mask], dst[new_mask]), touched)
        t = t[t < n_keep]
        adj_src, adj_dst = src, dst
        d = [np.zeros(n, dtype=bool)]
        d[0][appended] = True
        for _ in range(k):
            cur = d[-1].copy()
            prev = d[-1]
            if _EXPAND:
                cur[adj_dst[prev[adj_src]]] = True
                cur[adj_src[prev[adj_dst]]] = True
            cur[t] = True
            d.append(cur)
        x_new = torch.as_tensor(np.asarray(inst.nodes[n_keep:], dtype=np.float32))
        cands.append(dict(n=n, n_keep=n_keep, kept=torch.as_tensor(kept_rows), ei=ei, ea=ea, src=src, dst=dst,
                          d=d, h=enc.lin_in(x_new) if n > n_keep else None))
    # layer 0 embeddings of each candidate's D_0 rows (= appended rows): lin_in(x)
    for c in cands:
        c["hd"] = {}  # layer -> (rows, embeddings) of the candidate-specific rows
        rows0 = np.flatnonzero(c["d"][0])
        c["hd"][0] = (rows0, c["h"] if c["h"] is not None else base_layers[0].new_zeros(0, enc.hidden_channels))
    for layer, (conv, norm) in enumerate(zip(enc.convs, enc.norms), start=1):
        xs, eis, eas, targets, offsets = [], [], [], [], 0
        for c in cands:
            target = c["d"][layer]
            emask = target[c["dst"]]
            es, ed = c["src"][emask], c["dst"][emask]
            local = np.union1d(np.union1d(es, ed), np.flatnonzero(target))
            pos = np.full(c["n"], -1, dtype=np.int64)
            pos[local] = np.arange(local.size)
            h_prev = _rows(c, layer - 1, local, base_layers)
            xs.append(h_prev)
            eis.append(torch.as_tensor(np.stack([pos[es], pos[ed]])) + offsets)
            eas.append(c["ea"][torch.as_tensor(np.flatnonzero(emask))])
            trows = np.flatnonzero(target)
            targets.append((c, trows, torch.as_tensor(pos[trows]) + offsets, h_prev[torch.as_tensor(pos[trows])]))
            offsets += local.size
        x = torch.cat(xs)
        out = conv(x, torch.cat(eis, dim=1), torch.cat(eas))
        for c, trows, idx, h_prev in targets:
            c["hd"][layer] = (trows, norm(h_prev + torch.nn.functional.elu(out[idx])))
    zs = []
    hk = base_layers[-1]
    for c in cands:
        h = hk.new_empty(c["n"], hk.size(1))
        h[: c["n_keep"]] = hk[c["kept"]]
        rows, emb = c["hd"][k]
        h[torch.as_tensor(rows)] = emb
        zs.append(torch.cat([h.mean(0), h.max(0).values]))
    return enc.lin_out(torch.stack(zs))


def _rows(c: dict, layer: int, rows: np.ndarray, base_layers: list[Tensor]) -> Tensor:
    """Layer-``layer`` embeddings of candidate rows ``rows``: candidate-specific where computed,
    else the current graph's (kept rows only)."""
    base = base_layers[layer]
    out = base.new_empty(rows.size, base.size(1))
    spec_rows, spec = c["hd"][layer]
    is_spec = np.isin(rows, spec_rows)
    if (~is_spec).any():
        kept = rows[~is_spec]
        out[torch.as_tensor(np.flatnonzero(~is_spec))] = base[c["kept"][torch.as_tensor(kept)]]
    if is_spec.any():
        where = np.searchsorted(spec_rows, rows[is_spec])
        out[torch.as_tensor(np.flatnonzero(is_spec))] = spec[torch.as_tensor(where)]
    return out
