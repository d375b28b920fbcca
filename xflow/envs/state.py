"""Replayable episode state: a model id plus the list of actions taken.

Candidates are generated deterministically (rules in registry order, locations in graph order,
deduplicated by graph hash), so ``(model_id, actions)`` under the same environment settings
replays to the same graph. ``hashes`` (the graph hash after each step) lets
:meth:`xflow.envs.rewrite.RewriteEnv.validate` check that a replay really took the same path.

States round-trip through JSON (:meth:`EpisodeState.to_json` / :meth:`from_json`) and CSV
(:func:`write_states_csv` / :func:`read_states_csv`; actions and hashes are space-separated).
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xflow.safeio import atomic_output

__all__ = ["EpisodeState", "StateValidation", "write_states_csv", "read_states_csv"]

_CSV_FIELDS = ("model_id", "actions", "hashes", "reward", "walltime", "config")


@dataclass(frozen=True)
class EpisodeState:
    """Where an episode is: its starting graph and the actions taken from it.

    Args:
        model_id: the starting graph (see :mod:`xflow.graphs.model_ids`), e.g. ``builder:sibling_convs``.
        actions: action indices in order (candidate index, or the stop action).
        hashes: graph hash after each action (optional; used by ``validate``).
        reward: the episode's cumulative reward so far (optional).
        walltime: seconds spent in the episode (optional).
        config: environment settings that affect the candidates (``max_candidates``, ``rules``…).
    """

    model_id: str
    actions: tuple[int, ...] = ()
    hashes: tuple[str, ...] = ()
    reward: float | None = None
    walltime: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", tuple(int(a) for a in self.actions))
        object.__setattr__(self, "hashes", tuple(str(h) for h in self.hashes))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists instead of tuples)."""
        d = asdict(self)
        d["actions"], d["hashes"] = list(self.actions), list(self.hashes)
        return d

    def to_json(self) -> str:
        """One JSON object."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EpisodeState":
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(text))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpisodeState):
            return NotImplemented
        return (self.model_id, self.actions, self.hashes, self.config) == (
            other.model_id, other.actions, other.hashes, other.config)

    def __hash__(self) -> int:
        return hash((self.model_id, self.actions, self.hashes))


@dataclass(frozen=True)
class StateValidation:
    """Outcome of replaying a state: ``ok`` and, if not, the reasons in ``errors``."""

    ok: bool
    errors: tuple[str, ...] = ()
    reward: float | None = None
    final_hash: str | None = None


def _opt_float(s: str) -> float | None:
    return float(s) if s not in ("", "None") else None


def write_states_csv(states: Iterable[EpisodeState], path: str | Path) -> Path:
    """Write states as CSV rows (header: model_id, actions, hashes, reward, walltime, config)."""
    path = Path(path)
    with atomic_output(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(_CSV_FIELDS)
        for s in states:
            w.writerow([s.model_id, " ".join(map(str, s.actions)), " ".join(s.hashes),
                        "" if s.reward is None else repr(s.reward),
                        "" if s.walltime is None else repr(s.walltime),
                        json.dumps(s.config, sort_keys=True)])
    return path


def read_states_csv(path: str | Path) -> list[EpisodeState]:
    """Read the states written by :func:`write_states_csv`."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [EpisodeState(model_id=r["model_id"],
                         actions=tuple(int(a) for a in r["actions"].split()),
                         hashes=tuple(r["hashes"].split()),
                         reward=_opt_float(r["reward"]), walltime=_opt_float(r["walltime"]),
                         config=json.loads(r["config"] or "{}")) for r in rows]
