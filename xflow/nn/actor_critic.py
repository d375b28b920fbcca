"""Actor-critic over graph observations: GAT encoder + candidate policy head + value head."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from xflow.errors import ModelFileNotFound, ModelLoadError
from xflow.nn.batching import batch_observations
from xflow.nn.diff_encoder import encode_candidates, encode_with_layers
from xflow.nn.gat_encoder import GATEncoder
from xflow.nn.policy_head import CandidatePolicyHead
from xflow.nn.value_head import ValueHead
from xflow.safeio import atomic_output, verify_checksum, write_checksum

__all__ = ["GraphActorCritic", "MASKED_LOGIT"]

#: Logit given to illegal actions (``exp`` underflows to exactly 0 in float32).
MASKED_LOGIT = -1e9


class GraphActorCritic(nn.Module):
    r"""X-RLflow's agent: embed the current graph and every candidate with one shared
    :class:`~xflow.nn.gat_encoder.GATEncoder`; the policy is a softmax over
    :class:`~xflow.nn.policy_head.CandidatePolicyHead` logits of the candidates plus "stop"
    (slot ``num_actions - 1``), the critic a :class:`~xflow.nn.value_head.ValueHead` on the
    current graph. Illegal actions (beyond the candidates, or masked by the env) get
    :data:`MASKED_LOGIT`.

    Args:
        num_actions (int): size of the env's action space (``max_candidates + 1``).
        node_dim (int): node feature size. edge_dim (int): edge feature size.
        hidden_channels (int, optional): width everywhere (default: :obj:`64`).
        num_layers (int, optional): message-passing steps (default: :obj:`3`).
        heads (int, optional): attention heads (default: :obj:`2`).
        diff_encoder (bool, optional): embed the current graph once and each candidate from its
            local difference (:mod:`xflow.nn.diff_encoder`; exact, needs the env's
            ``CandidateGraphs`` observations) instead of re-encoding every candidate graph
            (default: :obj:`False`; PPO's ``Args.diff_encoder`` turns it on: one minibatch update
            measured 1.5x faster on squeezenet1_1; scoring one observation's candidates is timed
            in the ``envs.encoder`` table of ``docs/rl.md``). Saved with the config.

    Shapes:
        - **input:** a list of ``B`` observations (``{"graph", "candidates"}``), optional mask
          :math:`(B, A)`
        - **output:** logits :math:`(B, A)`, values :math:`(B)`
    """

    def __init__(self, num_actions: int, node_dim: int, edge_dim: int, hidden_channels: int = 64,
                 num_layers: int = 3, heads: int = 2, diff_encoder: bool = False) -> None:
        super().__init__()
        self.diff_encoder = bool(diff_encoder)
        self.config = dict(num_actions=num_actions, node_dim=node_dim, edge_dim=edge_dim,
                           hidden_channels=hidden_channels, num_layers=num_layers, heads=heads,
                           diff_encoder=self.diff_encoder)
        self.num_actions = num_actions
        self.encoder = GATEncoder(node_dim, edge_dim, hidden_channels, hidden_channels,
                                  num_layers=num_layers, heads=heads)
        self.policy = CandidatePolicyHead(hidden_channels, hidden_channels)
        self.value = ValueHead(hidden_channels, hidden_channels)

    def _embed(self, batch) -> Tensor:
        return self.encoder(batch.x, batch.edge_index, batch.edge_attr, batch.batch)

    def forward(self, observations: Sequence[dict],
                mask: np.ndarray | Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(masked logits (B, A), values (B))`` for a list of observations."""
        if self.diff_encoder and all(hasattr(o["candidates"], "parts") for o in observations):
            z, zc, counts = self._embed_diffs(observations)
        else:
            current, cands, counts = batch_observations(observations)
            z = self._embed(current)
            zc = self._embed(cands) if cands is not None else None
        b = z.size(0)
        logits = z.new_full((b, self.num_actions), MASKED_LOGIT)
        logits[:, -1] = self.policy.stop(z)
        if zc is not None and zc.size(0):
            owner = torch.repeat_interleave(torch.arange(b), counts)
            starts = torch.cumsum(counts, 0) - counts
            pos = torch.arange(zc.size(0)) - starts[owner]
            keep = pos < self.num_actions - 1
            logits[owner[keep], pos[keep]] = self.policy(zc[keep], z[owner[keep]])
        if mask is not None:
            m = torch.as_tensor(np.asarray(mask), dtype=torch.bool).reshape(b, -1)
            logits = logits.masked_fill(~m, MASKED_LOGIT)
        return logits, self.value(z)

    def _embed_diffs(self, observations: Sequence[dict]) -> tuple[Tensor, Tensor, Tensor]:
        zs, zcs, counts = [], [], []
        for o in observations:
            z, layers = encode_with_layers(self.encoder, o["graph"])
            cg = o["candidates"]
            zs.append(z)
            zcs.append(encode_candidates(self.encoder, layers, [cg.parts(i) for i in range(len(cg))]))
            counts.append(len(cg))
        return torch.cat(zs), torch.cat(zcs), torch.tensor(counts, dtype=torch.long)

    def get_value(self, observations: Sequence[dict]) -> Tensor:
        """Critic values ``(B)``."""
        current, _, _ = batch_observations(observations)
        return self.value(self._embed(current))

    def get_action_and_value(self, observations: Sequence[dict], mask=None,
                             action: Tensor | None = None, deterministic: bool = False
                             ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """cleanrl's interface: ``(action, log_prob, entropy, value)``; samples unless given."""
        logits, value = self.forward(observations, mask)
        dist = Categorical(logits=logits)
        if action is None:
            action = logits.argmax(-1) if deterministic else dist.sample()
        return action, dist.log_prob(action), dist.entropy(), value

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write weights + constructor config (+ ``extra`` metadata) with ``torch.save``.

        The file is written atomically with a ``<path>.sha256`` sidecar that :meth:`load` checks.
        """
        path = Path(path)
        with atomic_output(path) as tmp:
            torch.save({"config": self.config, "state_dict": self.state_dict(), "extra": extra}, tmp)
        write_checksum(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "GraphActorCritic":
        """Inverse of :meth:`save` (weights only, so ``weights_only=True`` loading)."""
        return cls.load_with_extra(path)[0]

    @classmethod
    def load_with_extra(cls, path: str | Path) -> tuple["GraphActorCritic", dict[str, Any]]:
        """The agent and the ``extra`` metadata given to :meth:`save` (e.g. training args)."""

        path = Path(path)
        if not path.exists():
            raise ModelFileNotFound(f"checkpoint {path} does not exist; train one with "
                                    "`xflow rl train` or xflow.agents.ppo.train")

        if Path(f"{path}.sha256").exists() and not verify_checksum(path, discard=False):
            raise ModelLoadError(f"checkpoint {path} is corrupt (it does not match {path}.sha256: "
                                 "truncated or modified); re-train with `xflow rl train`")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            agent = cls(**blob["config"])
            agent.load_state_dict(blob["state_dict"])
        except Exception as exc:  # noqa: BLE001 - any corrupt file becomes one typed error
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise ModelLoadError(f"{path} is not a GraphActorCritic checkpoint ({first[:160]}); "
                                 "re-train with `xflow rl train`") from exc
        return agent, dict(blob.get("extra", {}))

    def __repr__(self) -> str:
        c = self.config
        return (f"{self.__class__.__name__}(actions={c['num_actions']}, node_dim={c['node_dim']}, "
                f"edge_dim={c['edge_dim']}, hidden={c['hidden_channels']}, "
                f"layers={c['num_layers']})")
