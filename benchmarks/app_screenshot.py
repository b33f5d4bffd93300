"""A headless-Chromium screenshot of the running app (`snake-eqm app`), for the README and the issue.

    apt-get install -y chromium        # Debian's package; nothing is downloaded at run time
    python benchmarks/app_screenshot.py [--output docs/results/app_screenshot.png] [--agent eqm --steps 25]
    python benchmarks/app_screenshot.py --agent you --keys right,right,up --output /tmp/keys.png
    python benchmarks/app_screenshot.py --mode dream --agent eqm --steps 40 --output docs/results/app_dream_screenshot.png

Starts the app on a free 127.0.0.1 port, opens it at `?seed=..&agent=..&steps=..` (the page plays that
many moves on load, so the shot shows a prediction and its what-ifs), optionally presses arrow keys
(each must add one step: this checks the keyboard controls), saves the PNG, stops the server and the
browser, and prints JSON. `--mode dream` opens the dream tab instead (play inside the model; `--food`, `--on`).
Chromium is driven over the DevTools protocol on a pipe (no extra packages).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image


def find_chromium(explicit: str | None) -> str:
    for name in ([explicit] if explicit else ["chromium", "chromium-browser", "google-chrome"]):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("app_screenshot: no Chromium found; install Debian's package: apt-get install -y chromium")


class DevTools:
    """The Chrome DevTools protocol over `--remote-debugging-pipe` (fd 3 in, fd 4 out; NUL-separated JSON),
    so no websocket library is needed."""

    def __init__(self, chromium: str, width: int, height: int) -> None:
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--remote-debugging-pipe",
                f"--window-size={width},{height}", "about:blank"]
        # posix_spawn (safe beside the app server's threads) puts the pipe ends on fds 3 and 4.
        # The pipes were opened after fds 0-2, so `from_browser` is never fd 3 and the first dup2 is safe.
        actions = [(os.POSIX_SPAWN_DUP2, to_browser, 3), (os.POSIX_SPAWN_DUP2, from_browser, 4),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        self.pid = os.posix_spawn(chromium, args, os.environ, file_actions=actions)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._next_id = b"", 0

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:  # skip events until our answer arrives
            while b"\0" not in self._buffer:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the DevTools pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        os.waitpid(self.pid, 0)
        os.close(self._write)
        os.close(self._read)


# The page is ready when the on-load game has been drawn: its status line is there and every picture on show loaded
# (the other tab's pictures are hidden and never load).
SHOWN_IMAGES = "[...document.images].filter(image => image.offsetParent !== null)"
PICTURES_LOADED = (f"{SHOWN_IMAGES}.length >= 6 && "
                   f"{SHOWN_IMAGES}.every(image => image.complete && image.naturalWidth > 0)")
KEY_CODES = {"up": ("ArrowUp", 38), "right": ("ArrowRight", 39), "down": ("ArrowDown", 40), "left": ("ArrowLeft", 37)}


def wait_for(browser: DevTools, session: str, expression: str, deadline: float, what: str) -> None:
    while True:
        answer = browser.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        if answer.get("result", {}).get("value") is True:
            return
        if time.perf_counter() > deadline:
            raise SystemExit(f"app_screenshot: timed out waiting for {what}")
        time.sleep(0.25)


# How each tab says how many moves it has played: the real game's "steps N · last event", the dream's "dream step N ·".
STEP_TEXT = {"real": ("steps ", " · last event"), "dream": ("dream step ", " · ")}
MIN_IMAGES = {"real": 6, "dream": 2}  # the real tab: board, prediction, 4 what-ifs; the dream tab: real and dream


def shows_step(mode: str, count: int) -> str:
    before, after = STEP_TEXT[mode]
    ready = PICTURES_LOADED.replace(">= 6", f">= {MIN_IMAGES[mode]}")
    return f"document.body.innerText.includes('{before}{count}{after}') && {ready}"


STEP_COUNT = "Number((document.body.innerText.match(/steps (\\d+) · last event/) || [0, -1])[1])"


def click(browser: DevTools, session: str, label: str) -> None:
    script = f"[...document.querySelectorAll('button')].find(b => b.innerText.trim() === '{label}').click()"
    browser.call("Runtime.evaluate", session, expression=script)


def autoplay(browser: DevTools, session: str, seconds: float) -> dict:
    count = lambda: browser.call("Runtime.evaluate", session, expression=STEP_COUNT,  # noqa: E731
                                 returnByValue=True)["result"]["value"]
    before = count()
    click(browser, session, "Play")
    time.sleep(seconds)
    click(browser, session, "Pause")
    time.sleep(1.0)  # a tick already under way may still land
    after = count()
    time.sleep(1.5)
    if count() != after:
        raise SystemExit("app_screenshot: the game kept playing after Pause")
    return {"autoplay_seconds": seconds, "autoplay_steps": after - before}


def screenshot(chromium: str, url: str, output: Path, width: int, height: int, timeout_s: float,
               steps: int = 0, keys: tuple[str, ...] = (), autoplay_seconds: float = 0.0, mode: str = "real") -> dict:
    """Open `url`, wait (bounded) until the game is drawn, press `keys` (arrow keys, each awaited: the page
    must show one more step), save a PNG. Returns the seconds each phase took."""
    browser = DevTools(chromium, width, height)
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                     deviceScaleFactor=1, mobile=False)
        started = time.perf_counter()
        deadline = started + timeout_s
        browser.call("Page.navigate", session, url=url)
        wait_for(browser, session, shows_step(mode, steps), deadline, "the game drawn on load")
        timings = {"page_ready_seconds": round(time.perf_counter() - started, 2), "key_seconds": []}
        for count, key in enumerate(keys, start=steps + 1):
            name, code = KEY_CODES[key]
            pressed = time.perf_counter()
            for kind in ("keyDown", "keyUp"):
                browser.call("Input.dispatchKeyEvent", session, type=kind, key=name, code=name,
                             windowsVirtualKeyCode=code)
            wait_for(browser, session, shows_step(mode, count), deadline,
                     f"the page to show step {count} after the {name} key")
            timings["key_seconds"].append(round(time.perf_counter() - pressed, 2))
        if autoplay_seconds > 0:  # the Play button's clock: how many steps it made, then Pause
            timings.update(autoplay(browser, session, autoplay_seconds))
        time.sleep(0.5)  # let the last layout settle
        shot = browser.call("Page.captureScreenshot", session, format="png")["data"]
        output.write_bytes(base64.b64decode(shot))
        return timings
    finally:
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the shipped 10x10 checkpoint")
    parser.add_argument("--output", default="docs/results/app_screenshot.png")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--agent", default="eqm", choices=("you", "eqm", "planner", "expert"))
    parser.add_argument("--steps", type=int, default=12, help="moves the page plays on load")
    parser.add_argument("--size", default="1400x1300", help="browser window WIDTHxHEIGHT")
    parser.add_argument("--timeout", type=float, default=120, help="seconds the page may take to be ready")
    parser.add_argument("--keys", default="", help="arrow keys to press after loading, e.g. up,up,left "
                        "(checks the keyboard controls: each must add one step)")
    parser.add_argument("--autoplay-seconds", type=float, default=0.0,
                        help="press Play for this long (default speed 2 steps/s), then Pause, and count the steps")
    parser.add_argument("--mode", default="real", choices=("real", "dream"),
                        help="the tab to show: the real game, or play inside the model (dream)")
    parser.add_argument("--food", default="decoder", choices=("decoder", "real"),
                        help="dream mode: the dream's new food, drawn by the model or copied from the real game")
    parser.add_argument("--on", default="real", choices=("real", "dream"), help="dream mode: the board the agent reads")
    parser.add_argument("--chromium", default=None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    chromium = find_chromium(args.chromium)
    keys = tuple(key for key in args.keys.split(",") if key)
    if args.autoplay_seconds > 0 and args.mode == "dream":
        raise SystemExit("app_screenshot: --autoplay-seconds counts the real tab's steps; use it without --mode dream")
    if any(key not in KEY_CODES for key in keys):
        raise SystemExit(f"app_screenshot: --keys takes {', '.join(KEY_CODES)}, got {args.keys!r}")
    width, height = (int(part) for part in args.size.split("x"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import torch

    from snake_world_eqm.app import launch, load_model

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = launch(load_model(args.model), host="127.0.0.1", port=port, block=False)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    url = f"{demo.local_url}?seed={args.seed}&agent={args.agent}&steps={args.steps}"
    if args.mode == "dream":
        url += f"&mode=dream&food={args.food}&on={args.on}"
    started = time.perf_counter()
    try:
        timings = screenshot(chromium, url, output, width, height, args.timeout,
                             steps=0 if args.agent == "you" else args.steps, keys=keys,
                             autoplay_seconds=args.autoplay_seconds, mode=args.mode)
    finally:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the JSON only
            demo.close()
    with Image.open(output) as image:
        size = image.size
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({"output": str(output), "url": url, "image_size": size, "chromium": version,
                      "keys": list(keys), **timings,
                      "seconds": round(time.perf_counter() - started, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
