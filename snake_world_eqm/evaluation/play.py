"""`snake-eqm play`: watch an agent play one game in the terminal, or write it as a GIF.

With no flags the planner (the best agent: it searches the world model's predictions) plays the
checkpoint shipped in the package (`--model` picks another, `--agent eqm` the model's own move without
search). Moves are printed by name (up, right, down, left) under a legend line; colours are used only on a
terminal and never when NO_COLOR is set. With `--show-prediction` each frame also shows the world model's
prediction of the next board for the move the agent just chose (that move held fixed); the following frame
shows the real one, so prediction errors are visible as they happen. `--show-what-if` shows the model's
four predicted successors, one per move, beside each board.

`--dream` plays inside the model beside the real game: both start from the same board, every move (the agent's,
or yours with `--agent you`: arrow keys or w a s d, r resyncs the dream to the real game, q quits) steps the real
game with the rules and the dream with the model alone, and each frame shows both boards and a divergence line
(cells that differ, food included and masked, the step they first differed, the dream's end reason).
`--dream-food real` copies the real game's new food into the dream (food-corrected); `--agent-reads dream` makes
the agent read the dream's board instead of the real one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from snake_world_eqm.agents.flags import add_planner_arguments, add_thread_argument, set_threads
from snake_world_eqm.argtypes import (
    check_output_file,
    int_in_range,
    non_negative_float,
    path_with_suffix,
    positive_int,
    seed,
)
from snake_world_eqm.game import (
    ACTION_NAMES,
    EVENT_NAMES,
    MAX_BOARD_SIZE,
    MIN_BOARD_SIZE,
    encode_observation,
    new_game,
    step,
)
from snake_world_eqm.game.render import FOOD_COLOUR, HEAD_COLOUR, TAIL_COLOUR, render_ansi_any, render_rgb_any
from snake_world_eqm.shipped import PRETRAINED_10X10

# torch, the model loader and the agents load inside the functions that play, so `--help` answers at once.
MODEL_AGENTS = ("eqm", "planner", "baseline")
WORLD_MODEL_AGENTS = ("eqm", "planner")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm play", description=__doc__)
    parser.add_argument("--model", default=None, help="world model folder or repo id (default: the 10x10 "
                        "checkpoint shipped in the package); for --agent baseline, a baseline's folder (none is "
                        "shipped)")
    parser.add_argument("--agent", default="planner",
                        choices=("planner", "eqm", "baseline", "expert", "random", "you"),
                        help="planner (default): searches the world model's predicted futures; eqm: the model's "
                        "own move, no search; baseline: a behaviour-cloning policy; expert: the teacher; random; "
                        "you: the keyboard (with --dream)")
    parser.add_argument("--gif", type=path_with_suffix(".gif"), default=None,
                        help="write the game to this GIF instead of the terminal")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--max-steps", type=positive_int, default=500)
    parser.add_argument("--height", type=board_size, default=None,
                        help="board height (default: the model's, else 10); any 4..32 for a model with fixed_board_size=False")
    parser.add_argument("--width", type=board_size, default=None, help="board width (default: the model's, else 10)")
    parser.add_argument("--show-prediction", action="store_true",
                        help="also show the world model's predicted next board for each chosen move (the next "
                        "frame shows the real one)")
    parser.add_argument("--show-what-if", action="store_true",
                        help="also show the world model's four predicted next boards, one per move (up, right, "
                        "down, left), for every frame; an empty board means the model predicts death")
    parser.add_argument("--delay", type=non_negative_float, default=0.1,
                        help="seconds between frames on a terminal (no pause when the output is piped)")
    parser.add_argument("--frame-ms", type=positive_int, default=120, help="GIF frame duration")
    dream = parser.add_argument_group("play inside the model (--dream)")
    dream.add_argument("--dream", action="store_true",
                       help="play inside the model beside the real game: each move steps the real game with the "
                       "rules and the dream with the model; both boards and their divergence are shown")
    dream.add_argument("--dream-food", choices=tuple(DREAM_FOOD_CHOICES), default=None,
                       help="the dream's new food: " + "; ".join(f"{k}: {v}" for k, v in DREAM_FOOD_CHOICES.items())
                       + " (default decoder)")
    dream.add_argument("--agent-reads", choices=("real", "dream"), default=None,
                       help="the board the agent reads its move from (default real; the other world gets the same "
                       "move; when that world has ended, the agent reads the other)")
    add_planner_arguments(parser)
    add_thread_argument(parser)
    return parser


# The dream's food choices (simulator.DREAM_FOODS, repeated here so that --help does not load torch).
DREAM_FOOD_CHOICES = {"decoder": "drawn by the model", "real": "copied from the real game (food-corrected)"}


def check_dream_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flags that only make sense together: an argparse error (exit 2, one line after the usage) otherwise."""
    if not args.dream:
        for flag, value in (("--dream-food", args.dream_food), ("--agent-reads", args.agent_reads)):
            if value is not None:
                parser.error(f"{flag} needs --dream")
        if args.agent == "you":
            parser.error("--agent you (the keyboard) plays only with --dream")
        return
    if args.agent == "baseline":
        parser.error("--dream needs the world model, and --agent baseline loads a baseline instead: choose "
                     "--agent planner, eqm, expert, random or you")
    if args.show_prediction or args.show_what_if:
        parser.error("--dream shows the model's own board beside the real one: leave out --show-prediction and "
                     "--show-what-if")
    if args.agent == "you" and args.gif:
        parser.error("--agent you plays at the keyboard in the terminal: leave out --gif")
    if args.agent == "you" and args.agent_reads is not None:
        parser.error("--agent-reads chooses the board an agent reads: with --agent you, you read both")


board_size = int_in_range(MIN_BOARD_SIZE, MAX_BOARD_SIZE, "a board side")


def render_frame(board: np.ndarray, predicted: np.ndarray | None, caption: str | None = None,
                 show_prediction: bool | None = None) -> np.ndarray:
    """One RGB frame: the board labelled "game", the predicted next board beside it labelled "model's
    prediction" (a grey panel when there is none, e.g. the last frame), and an optional caption below.

    `show_prediction` defaults to whether `predicted` is given; set it to keep the two-panel layout on
    frames without a prediction.
    """
    panels = [("game", render_rgb_any(board))]
    if show_prediction if show_prediction is not None else predicted is not None:
        real = panels[0][1]
        if predicted is None:
            guess = np.full_like(real, 90)
        else:
            guess = render_rgb_any(predicted)
            if guess.shape[:2] != real.shape[:2]:  # the fallback painter may use a different cell size
                guess = _resize(guess, real.shape[:2])
        panels.append(("model's prediction" if predicted is not None else "no prediction", guess))
    return _compose(panels, caption)


_LABEL_HEIGHT, _GAP = 14, 8


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.NEAREST))


def _compose(panels: list[tuple[str, np.ndarray]], caption: str | None) -> np.ndarray:
    """Panels side by side on white, each with its label above, and the caption (one strip a line) below."""
    height, width = panels[0][1].shape[:2]
    total_width = len(panels) * width + (len(panels) - 1) * _GAP
    total_height = _LABEL_HEIGHT + height + (_LABEL_HEIGHT * len(caption.splitlines()) if caption else 0)
    canvas = Image.new("RGB", (total_width, total_height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for index, (label, image) in enumerate(panels):
        left = index * (width + _GAP)
        canvas.paste(Image.fromarray(image), (left, _LABEL_HEIGHT))
        draw.text((left + 1, 1), label, fill=(0, 0, 0))
    if caption:
        for index, line in enumerate(caption.splitlines()):
            draw.text((1, _LABEL_HEIGHT * (1 + index) + height + 1), line, fill=(0, 0, 0))
    return np.asarray(canvas)


# What the text board's characters mean (game.render.render_ansi draws them).
LEGEND = "legend: ^ > v < head (points where it moved)  o body  . tail  * apple  \u00b7 empty"


def side_by_side(texts: list[str], labels: list[str], gap: int = 2) -> str:
    """Text boards next to each other, each under its label (boards of one size line up)."""
    columns = [[label, *text.splitlines()] for label, text in zip(labels, texts)]
    widths = [max(len(_visible(line)) for line in column) for column in columns]
    rows = max(len(column) for column in columns)
    lines = []
    for row in range(rows):
        cells = []
        for column, width in zip(columns, widths):
            line = column[row] if row < len(column) else ""
            cells.append(line + " " * (width - len(_visible(line))))
        lines.append((" " * gap).join(cells).rstrip())
    return "\n".join(lines)


def _visible(line: str) -> str:
    """The characters a terminal shows (ANSI colour codes removed)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", line)


def what_if_boards(model, board: np.ndarray) -> np.ndarray:
    """The model's predicted next board for each of the four moves held fixed, shape (4, H, W)."""
    from snake_world_eqm.agents.base import sample_model

    boards = np.repeat(board[None], len(ACTION_NAMES), axis=0)
    return np.asarray(sample_model(model, boards, action=list(range(len(ACTION_NAMES)))).next_board.cpu())


def render_what_if(predictions: np.ndarray, colour: bool) -> str:
    """The four predicted successors side by side, labelled by move ("death" where the board is empty)."""
    from snake_world_eqm.game.encoding import is_terminal_observation

    labels = [f"if {name}:" + (" death" if is_terminal_observation(board) else "")
              for name, board in zip(ACTION_NAMES, predictions)]
    texts = [render_ansi_any(board, colour).replace("\n(terminal: the snake died)", "") for board in predictions]
    return "model's prediction for each move:\n" + side_by_side(texts, labels)


def status_line(step_index: int, action: int | None, event: str, apples: int) -> str:
    """What one frame shows in words: the move by name, what it did, and the score after it."""
    if action is None:
        ending = "step cap reached" if event == "cap" else f"game over ({event})"
        return f"{ending}  apples: {apples}"
    what = "" if event == "none" else f" ({event})"
    return f"step {step_index}  move: {ACTION_NAMES[action]}{what}  apples: {apples}"


def use_colour(stream=None) -> bool:
    """ANSI colours only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def make_agent(name: str, model, seed: int, planner_options: dict | None = None):
    """The agent of `--agent` (`agents.make_agent`); a missing model exits naming the flag."""
    from snake_world_eqm.agents.factory import make_agent as make

    if name in MODEL_AGENTS and model is None:
        raise SystemExit(f"--agent {name} needs --model")
    return make(name, None if name == "baseline" else model, baseline=model if name == "baseline" else None,
                seed=seed, planner_options=planner_options)


def model_path_for(args: argparse.Namespace) -> str | None:
    """--model, else the shipped checkpoint when a world model is needed (none for expert/random alone)."""
    if args.model is not None:
        return args.model
    if args.agent == "baseline":
        raise SystemExit("--agent baseline needs --model (a trained baseline folder; none is shipped)")
    if args.agent in WORLD_MODEL_AGENTS or args.show_prediction or args.show_what_if or args.dream:
        return str(PRETRAINED_10X10)
    return None


def play_one_game(agent, height: int, width: int, seed: int, max_steps: int, predictor=None):
    """Yield (board, predicted next board or None, action, event name, apples) for each step, then the end."""
    from snake_world_eqm.agents.base import sample_model

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


# ----------------------------------------------------------------------------------------------------------
# --dream: play inside the model beside the real game
# ----------------------------------------------------------------------------------------------------------

DREAM_LABELS = ("real game (the rules):", "dream (the model's own boards):")
KEY_HELP = "keys: arrows or w a s d move, r resyncs the dream to the real game, q quits"
KEY_COMMANDS = {"w": "up", "d": "right", "s": "down", "a": "left", "r": "resync", "q": "quit"}
ARROW_CODES = {"A": "up", "C": "right", "B": "down", "D": "left"}  # ESC [ A..D


def key_commands(read_char) -> Iterator[str]:
    """Commands (a move's name, "resync" or "quit") from single characters: `read_char()` returns one, or ""
    at the end of the input (which quits). Arrow keys arrive as ESC [ A..D; other characters are ignored."""
    while True:
        char = read_char()
        if char == "":
            yield "quit"
            return
        if char == "\x1b":
            if read_char() == "[" and (code := read_char()) in ARROW_CODES:
                yield ARROW_CODES[code]
            continue
        if char.lower() in KEY_COMMANDS:
            yield KEY_COMMANDS[char.lower()]
            if KEY_COMMANDS[char.lower()] == "quit":
                return


@contextlib.contextmanager
def keyboard(stream=None):
    """`read_char` for `key_commands`: on a terminal, keys as they are pressed (no Enter; the terminal's mode is
    restored afterwards); otherwise the stream's characters (a pipe, a file, a test's StringIO)."""
    stream = sys.stdin if stream is None else stream
    fileno = getattr(stream, "fileno", None)
    try:
        fd = fileno() if fileno is not None and stream.isatty() else None
    except (OSError, ValueError):
        fd = None
    if fd is None:
        yield lambda: stream.read(1)
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield lambda: os.read(fd, 1).decode(errors="ignore")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def dream_moves(twin, agent=None, reads: str = "real", commands: Iterator[str] | None = None,
                max_steps: int = 500) -> Iterator[str]:
    """Play `twin` (a `simulator.DreamBesideReal`): the agent's moves (read from the `reads` board, or the other
    one once that world has ended), or the keyboard's `commands` when `agent` is None. Yields a status line
    for the start and after every move or resync; ends when both games are over, at `max_steps` moves, or on
    "quit"."""
    yield "start: both boards are the same"
    while not twin.done and twin.steps < max_steps:
        read = None
        if agent is None:
            command = next(commands)
            if command == "quit":
                return
            if command == "resync":
                if twin.real_done:
                    yield "resync refused: the real game is over"
                else:
                    twin.resync()
                    yield f"resynced: the dream goes on from the real board of step {twin.steps}"
                continue
            action = ACTION_NAMES.index(command)
        else:
            read = twin.acting_world(reads)
            action = int(agent.act_batch(twin.board(read)[None])[0])
        twin.step(action)
        who = "" if read is None else f" (the agent read the {read} board)"
        yield (f"step {twin.steps}  move: {ACTION_NAMES[action]}{who}  "
               f"apples: real {twin.real_apples}, dream {twin.dream_apples}")


def dream_ending(twin, max_steps: int) -> str:
    if twin.done:
        return "both games are over"
    return "step cap reached" if twin.steps >= max_steps else "quit"


def render_dream_text(twin, colour: bool) -> str:
    """Both boards side by side, labelled."""
    texts = [render_ansi_any(board, colour) for board in (twin.real, twin.dream)]
    return side_by_side(texts, list(DREAM_LABELS))


def render_dream_frame(twin, caption: str) -> np.ndarray:
    """One GIF frame: the real board and the dream board side by side, the caption (two lines) below."""
    real, dream = render_rgb_any(twin.real), render_rgb_any(twin.dream)
    if dream.shape[:2] != real.shape[:2]:  # an illegal dream board is painted at another cell size
        dream = _resize(dream, real.shape[:2])
    return _compose([("real game", real), ("dream (model)", dream)], caption)


def gif_divergence(twin) -> str:
    """The divergence in a few words, for a GIF's narrow caption."""
    d = twin.divergence()
    text = "dream = real" if d.equal else f"{d.cells} cells differ ({d.snake_cells} snake)"
    if d.first_step is not None:
        text += f", since step {d.first_step}"
    return text + (f"; dream: {twin.dream_end}" if twin.dream_end else "")


def play_dream(args: argparse.Namespace, model, height: int, width: int, planner_options: dict) -> int:
    from snake_world_eqm.simulator import DreamBesideReal

    twin = DreamBesideReal(model, height, width, seed=args.seed, food=args.dream_food or "decoder")
    reads = args.agent_reads or "real"
    person = args.agent == "you"
    agent = None if person else make_agent(args.agent, model, args.seed, planner_options)
    terminal, colour = sys.stdout.isatty(), use_colour()
    header = LEGEND + "\n" + (KEY_HELP if person else f"agent: {args.agent}, reading the {reads} board")
    header += f"\ndream food: {DREAM_FOOD_CHOICES[twin.food]}; divergence counts the whole board, food included"
    frames = []
    if not args.gif and not terminal:
        print(header)
    with keyboard() if person else contextlib.nullcontext() as read_char:
        commands = key_commands(read_char) if person else None
        for status in dream_moves(twin, agent, reads, commands, args.max_steps):
            if args.gif:
                frames.append(render_dream_frame(twin, f"{status.split('  apples')[0]}\n{gif_divergence(twin)}"))
                continue
            print(("\x1b[2J\x1b[H" + header + "\n" if terminal else "") + render_dream_text(twin, colour))
            print(status)
            print("divergence: " + twin.divergence_line(), flush=True)
            if terminal and not person:
                time.sleep(args.delay)
    ending = dream_ending(twin, args.max_steps)
    summary = (f"{ending} after {twin.steps} moves: apples real {twin.real_apples}, dream {twin.dream_apples}; "
               f"divergence: {twin.divergence_line()}")
    if args.gif:
        frames.append(render_dream_frame(twin, f"{ending}\n{gif_divergence(twin)}"))
        _write_gif(frames, args.gif, args.frame_ms)
        print(f"wrote {args.gif}: {len(frames)} frames; {summary}")
    else:
        print(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    check_dream_flags(parser, args)
    import torch

    from snake_world_eqm.agents.planner import planner_options_from_args
    from snake_world_eqm.pretrained import load_model

    # Trained weights produce subnormal floats that make CPU convolutions several times slower.
    torch.set_flush_denormal(True)
    set_threads(args.threads)
    path = model_path_for(args)
    try:
        check_output_file(args.gif, "--gif")
        model = None if path is None else load_model(path, kind="baseline" if args.agent == "baseline" else "eqm")
    except (ValueError, OSError, RuntimeError) as error:
        print(f"snake-eqm play: error: {error}", file=sys.stderr)
        return 2
    if (args.show_prediction or args.show_what_if) and args.agent == "baseline":
        raise SystemExit("--show-prediction and --show-what-if need a world model; the baseline predicts no boards")
    if model is not None and args.model is None:
        print(f"model: the shipped checkpoint {path} (--model to choose another)", flush=True)
    height, width = board_size_to_play(model, args.height, args.width)
    if args.dream:
        return play_dream(args, model, height, width, planner_options_from_args(args))
    agent = make_agent(args.agent, model, args.seed, planner_options_from_args(args))
    predictor = model if args.show_prediction else None
    terminal, colour = sys.stdout.isatty(), use_colour()
    frames, apples = [], 0
    if not args.gif and not terminal:
        print(LEGEND)
    game = play_one_game(agent, height, width, args.seed, args.max_steps, predictor)
    for index, (board, predicted, action, event, apples) in enumerate(game):
        caption = status_line(index + 1, action, event, apples)
        if args.gif:
            frames.append(render_frame(board, predicted, caption, show_prediction=predictor is not None))
            continue
        # Clearing the screen and pausing only make sense on a terminal; a pipe gets one frame after another.
        print(("\x1b[2J\x1b[H" + LEGEND + "\n" if terminal else "") + render_ansi_any(board, colour))
        if args.show_what_if and action is not None:
            print(render_what_if(what_if_boards(model, board), colour))
        if predicted is not None:
            print("model's prediction of the next board after this move:\n" + render_ansi_any(predicted, colour))
        print(f"agent: {args.agent}  {caption}", flush=True)
        if terminal:
            time.sleep(args.delay)
    if args.gif:
        _write_gif(frames, args.gif, args.frame_ms)
        print(f"wrote {args.gif}: {len(frames)} frames, {apples} apples")
    return 0


LAST_FRAME_MS = 2500  # the GIF holds its last frame (how the game ended) this long before it loops


def with_colour_key(frame: np.ndarray) -> np.ndarray:
    """The frame with a strip below that says what the colours mean: head, tail (the body fades between
    them) and apple."""
    keys = (("head", HEAD_COLOUR), ("tail", TAIL_COLOUR), ("apple", FOOD_COLOUR))
    width = max(frame.shape[1], 150)
    canvas = Image.new("RGB", (width, frame.shape[0] + _LABEL_HEIGHT), (255, 255, 255))
    canvas.paste(Image.fromarray(frame), (0, 0))
    draw = ImageDraw.Draw(canvas)
    left, top = 1, frame.shape[0] + 2
    for name, colour in keys:
        draw.rectangle((left, top, left + 9, top + 9), fill=tuple(colour))
        draw.text((left + 12, top), name, fill=(0, 0, 0))
        left += 14 + 7 * len(name) + 10
    return np.asarray(canvas)


def _write_gif(frames: list[np.ndarray], path: str, frame_ms: int) -> None:
    images = [Image.fromarray(with_colour_key(frame)) for frame in frames]
    durations = [frame_ms] * (len(images) - 1) + [max(frame_ms, LAST_FRAME_MS)]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)


if __name__ == "__main__":
    sys.exit(main())
