"""Which teacher can a learner imitate? Students (EqM agent, no search) and experts on the same seeds, as JSON.

    python benchmarks/teachers.py --models fill=runs/fill_ft/best route=runs/route_ft/best \
        --experts fill route astar --games 20 [--json docs/results/teachers_10x10.json]

Each student is played from three-cell and one-cell starts (seeds play_seed..play_seed+games-1, cap
20 x cells), and so is each expert. With `--agreement-games N`, each student's games are also replayed
move by move against its teacher (`NAME=PATH@KIND`, KIND the expert of its training data): the share
of moves where the student leaves the teacher's choice, by snake length, shows where imitation fails.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

LENGTH_BINS = ((1, 10), (10, 20), (20, 30), (30, 40), (40, 60), (60, 101))


def parse_model(text: str) -> tuple[str, str, str | None]:
    """NAME=PATH or NAME=PATH@KIND (KIND: the teacher, for the agreement count)."""
    if "=" not in text:
        raise SystemExit(f"--models entries look like NAME=PATH[@KIND], got {text!r}")
    name, path = text.split("=", 1)
    path, _, kind = path.partition("@")
    return name, path, kind or None


def summary(result: dict) -> dict:
    keep = ("games", "mean_apples", "mean_apples_ci95", "median_apples", "wins", "deaths", "stalls", "loops",
            "capped", "mean_steps")
    out = {key: result[key] for key in keep}
    out["by_start"] = {start: {key: part[key] for key in ("mean_apples", "wins", "deaths", "stalls")}
                       for start, part in result["by_start"].items()}
    return out


def agreement_by_length(agent, teacher: str, games: int, seed: int) -> dict:
    """Share of the student's moves that differ from the teacher's, by snake length (three-cell starts)."""
    from snake_world_eqm.agents import Agent
    from snake_world_eqm.evaluation.closed_loop import play_games
    from snake_world_eqm.game import HEAD_ALONE, expert_actions

    records: list[tuple[np.ndarray, np.ndarray]] = []

    class Recorder(Agent):
        def act_batch(self, obs: np.ndarray) -> np.ndarray:
            chosen = agent.act_batch(obs)
            lengths = (obs >= HEAD_ALONE).sum(axis=(1, 2))
            records.append((lengths, chosen != expert_actions(obs.astype(np.int8), teacher)))
            return chosen

    play_games(Recorder(), 10, 10, games, seed, progress=False, start_length=3)
    lengths = np.concatenate([r[0] for r in records])
    differs = np.concatenate([r[1] for r in records])
    table = {}
    for low, high in LENGTH_BINS:
        inside = (lengths >= low) & (lengths < high)
        if inside.any():
            table[f"{low}-{high - 1}"] = {"moves": int(inside.sum()), "leaves_teacher": round(float(differs[inside].mean()), 4)}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[], metavar="NAME=PATH[@KIND]")
    parser.add_argument("--experts", nargs="*", default=[], help="expert kinds to play on the same seeds")
    parser.add_argument("--games", type=int, default=20, help="games per start kind")
    parser.add_argument("--play-seed", type=int, default=1000)
    parser.add_argument("--agreement-games", type=int, default=0, help="three-cell games replayed against the teacher")
    parser.add_argument("--json", default=None, help="also write the JSON here")
    args = parser.parse_args()

    import torch

    from snake_world_eqm.agents import EqMAgent, ExpertAgent
    from snake_world_eqm.evaluation.closed_loop import play_both_starts
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import with_provenance, write_json

    torch.set_num_threads(1)  # batch play is fastest on one thread on a small shared machine
    torch.set_flush_denormal(True)
    result: dict = {"games_per_start": args.games, "play_seed": args.play_seed, "students": {}, "experts": {}}
    for kind in args.experts:
        start = time.process_time()
        played = play_both_starts(ExpertAgent(kind), 10, 10, args.games, args.play_seed, progress=False)
        result["experts"][kind] = {**summary(played), "cpu_seconds": round(time.process_time() - start, 1)}
    for name, path, kind in map(parse_model, args.models):
        start = time.process_time()
        model = load_model(path).eval()
        agent = EqMAgent(model, seed=0)
        played = play_both_starts(agent, 10, 10, args.games, args.play_seed, progress=False)
        entry = {"model": path, **summary(played), "cpu_seconds": round(time.process_time() - start, 1)}
        if args.agreement_games and kind:
            entry["teacher"] = kind
            entry["leaves_teacher_by_length"] = agreement_by_length(agent, kind, args.agreement_games, args.play_seed)
        result["students"][name] = entry
    result = with_provenance(result)
    if args.json:
        write_json(args.json, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
