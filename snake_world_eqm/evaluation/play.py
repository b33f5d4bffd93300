"""`snake-eqm play`: watch an agent play one game in the terminal, or write it as a GIF.

With `--show-prediction` each frame shows the world model's predicted next board (for the action the
agent took) beside the real next board, so prediction errors are visible as they happen.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from snake_world_eqm.evaluation.agents import (
    Agent,
    BaselineAgent,
    EqMAgent,
    ExpertAgent,
    PlannerAgent,
    RandomAgent,
    sample_model,
)
from snake_world_eqm.game.encoding import EMPTY, FOOD, HEAD_ALONE, HEAD_LEFT, TAIL

MODEL_AGENTS = ("eqm", "planner", "baseline")
# Fallback colours by cell code for predicted boards the renderer rejects (illegal predictions).
_CODE_COLOURS = {EMPTY: (24, 24, 24), FOOD: (220, 40, 40), TAIL: (40, 120, 40)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm play", description=__doc__)
    parser.add_argument("--model", default=None, help="world model folder or repo id (needed for eqm, "
                        "planner and --show-prediction; for baseline, the baseline's folder)")
    parser.add_argument("--agent", default="eqm", choices=("eqm", "planner", "baseline", "expert", "random"))
    parser.add_argument("--gif", default=None, help="write the game to this GIF instead of the terminal")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--height", type=int, default=None,
                        help="board height (default: the model's, else 10); any 4..32 for a model with fixed_board_size=False")
    parser.add_argument("--width", type=int, default=None, help="board width (default: the model's, else 10)")
    parser.add_argument("--planner-depth", type=int, default=2)
    parser.add_argument("--planner-mode", default="guard", choices=("guard", "trap", "search"))
    parser.add_argument("--show-prediction", action="store_true")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds between terminal frames")
    parser.add_argument("--frame-ms", type=int, default=120, help="GIF frame duration")
    return parser


def board_to_rgb(board: np.ndarray, cell: int = 16) -> np.ndarray:
    """Paint any board by cell code (no legality needed): heads bright, body green, food red."""
    image = np.zeros(board.shape + (3,), dtype=np.uint8)
    for code in np.unique(board):
        if HEAD_ALONE <= code <= HEAD_LEFT:
            colour = (120, 230, 120)
        else:
            colour = _CODE_COLOURS.get(int(code), (60, 170, 60))
        image[board == code] = colour
    return np.kron(image, np.ones((cell, cell, 1), dtype=np.uint8))


def render_frame(board: np.ndarray, predicted: np.ndarray | None) -> np.ndarray:
    """One RGB frame: the real board, and the predicted board beside it when given."""
    from snake_world_eqm.game import render_rgb

    real = _rgb_or_fallback(render_rgb, board)
    if predicted is None:
        return real
    guess = _rgb_or_fallback(render_rgb, predicted)
    if guess.shape[0] != real.shape[0]:  # the fallback painter may use a different cell size
        guess = np.asarray(Image.fromarray(guess).resize((real.shape[1], real.shape[0]), Image.NEAREST))
    gap = np.full((real.shape[0], 8, 3), 255, dtype=np.uint8)
    return np.concatenate([real, gap, guess], axis=1)


def _rgb_or_fallback(render_rgb, board: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(render_rgb(board.astype(np.int8)), dtype=np.uint8)
    except ValueError:  # an illegal predicted board: paint it by code so the error is visible
        return board_to_rgb(board)


def _ansi_or_codes(board: np.ndarray) -> str:
    from snake_world_eqm.game import render_ansi

    try:
        return render_ansi(board.astype(np.int8))
    except ValueError:
        return "\n".join(" ".join(f"{int(c):2d}" for c in row) for row in board) + "\n(illegal board)"


def make_agent(name: str, model, planner_depth: int, seed: int, planner_mode: str = "guard") -> Agent:
    if name in MODEL_AGENTS and model is None:
        raise SystemExit(f"--agent {name} needs --model")
    if name == "eqm":
        return EqMAgent(model, seed=seed)
    if name == "planner":
        from snake_world_eqm.evaluation.evaluate import planner_guard

        return PlannerAgent(model, depth=planner_depth, guard=planner_guard(planner_mode), seed=seed)
    if name == "baseline":
        return BaselineAgent(model)
    return ExpertAgent() if name == "expert" else RandomAgent(seed)


def load_model(path: str | None, agent: str):
    if path is None:
        return None
    from snake_world_eqm.modeling_snake_world_eqm import SnakePolicyBaseline, SnakeWorldEqM

    cls = SnakePolicyBaseline if agent == "baseline" else SnakeWorldEqM
    return cls.from_pretrained(path).eval()


def play_one_game(agent: Agent, height: int, width: int, seed: int, max_steps: int, predictor=None):
    """Yield (board, predicted next board or None, action, event name, apples) for each step, then the end."""
    from snake_world_eqm.game import EVENT_NAMES, encode_observation, new_game, step

    state, rng, apples = new_game(height, width, rng=seed), np.random.default_rng(seed), 0
    board = encode_observation(state)
    for _ in range(max_steps):
        action = int(agent.act_batch(board[None])[0])
        predicted = None
        if predictor is not None:
            predicted = np.asarray(sample_model(predictor, board[None], action=[action]).next_board.cpu())[0]
        result = step(state, action, rng)
        event = EVENT_NAMES[int(result.event)]
        apples += event in ("eat", "win")
        yield board, predicted, action, event, apples
        board = np.asarray(result.observation)
        if result.terminated or result.state is None:
            yield board, None, None, event, apples
            return
        state = result.state
    yield board, None, None, "cap", apples


def board_size_to_play(model, height: int | None, width: int | None) -> tuple[int, int]:
    """--height/--width, else the model's size, else 10x10; a size the model cannot take is a one-line error."""
    from snake_world_eqm.evaluation.by_size import check_model_takes
    from snake_world_eqm.game.rules import MAX_BOARD_SIZE, MIN_BOARD_SIZE

    config = getattr(model, "config", None)
    height = height or (config.board_height if config is not None else 10)
    width = width or (config.board_width if config is not None else 10)
    if not (MIN_BOARD_SIZE <= height <= MAX_BOARD_SIZE and MIN_BOARD_SIZE <= width <= MAX_BOARD_SIZE):
        raise SystemExit(f"snake-eqm play: board {height}x{width} is outside {MIN_BOARD_SIZE}..{MAX_BOARD_SIZE}")
    if config is not None and hasattr(config, "fixed_board_size"):
        try:
            check_model_takes(model, height, width)
        except ValueError as error:
            raise SystemExit(f"snake-eqm play: {error}") from None
    return height, width


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    # Trained weights produce subnormal floats that make CPU convolutions several times slower.
    torch.set_flush_denormal(True)
    model = load_model(args.model, args.agent)
    if args.show_prediction and (model is None or args.agent == "baseline"):
        raise SystemExit("--show-prediction needs --model with a world model (agent eqm, planner, expert or random)")
    height, width = board_size_to_play(model, args.height, args.width)
    agent = make_agent(args.agent, model, args.planner_depth, args.seed, args.planner_mode)
    predictor = model if args.show_prediction else None
    frames, apples = [], 0
    for board, predicted, action, event, apples in play_one_game(agent, height, width, args.seed, args.max_steps,
                                                                  predictor):
        if predictor is not None and predicted is None:
            predicted = np.zeros_like(board)  # the last frame has no prediction: keep the frame size
        if args.gif:
            frames.append(Image.fromarray(render_frame(board, predicted)))
            continue
        print("\x1b[2J\x1b[H" + _ansi_or_codes(board))
        if predicted is not None:
            print("predicted next board:\n" + _ansi_or_codes(predicted))
        print(f"agent={args.agent} action={action} event={event} apples={apples}")
        time.sleep(args.delay)
    if args.gif:
        Path(args.gif).parent.mkdir(parents=True, exist_ok=True)
        frames[0].save(args.gif, save_all=True, append_images=frames[1:], duration=args.frame_ms, loop=0)
        print(f"wrote {args.gif}: {len(frames)} frames, {apples} apples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
