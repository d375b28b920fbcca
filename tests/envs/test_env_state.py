"""EpisodeState JSON/CSV round trips."""
from __future__ import annotations

from xflow.envs.state import EpisodeState, read_states_csv, write_states_csv


def _state(**kw) -> EpisodeState:
    base = dict(model_id="builder:inception_like", actions=(2, 0, 8), hashes=("a", "b", "b"),
                reward=1.25, walltime=0.5, config={"max_candidates": 8, "rules": None})
    return EpisodeState(**{**base, **kw})


def test_json_round_trip():
    s = _state()
    back = EpisodeState.from_json(s.to_json())
    assert back == s and back.reward == 1.25 and back.walltime == 0.5


def test_csv_round_trip(tmp_path):
    states = [_state(), _state(actions=(), hashes=(), reward=None, walltime=None)]
    path = write_states_csv(states, tmp_path / "episodes.csv")
    back = read_states_csv(path)
    assert back == states and back[1].reward is None and back[0].config["max_candidates"] == 8


def test_equality_depends_on_actions():
    assert _state() != _state(actions=(2, 0))
    assert hash(_state()) == hash(_state(reward=9.0))
