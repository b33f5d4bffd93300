"""Release: the shipped checkpoint plays, and a pushed repo loads by id from the HF cache, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, constants

from snake_world_eqm import PRETRAINED_10X10, SnakeWorldEqM
from snake_world_eqm.evaluation.agents import EqMAgent, ExpertAgent
from snake_world_eqm.evaluation.closed_loop import play_games
from snake_world_eqm.game import BatchedSnakeGames, expert_actions
from snake_world_eqm.hub import push_folder


@pytest.fixture(scope="module")
def shipped():
    return SnakeWorldEqM.from_pretrained(PRETRAINED_10X10).eval()


def _expert_boards(count: int, seed: int, kind: str = "astar") -> np.ndarray:
    """Boards the expert actually visits (not just fresh starts)."""
    games = BatchedSnakeGames(num_games=32, height=10, width=10, seed=seed)
    boards = []
    while sum(len(b) for b in boards) < count:
        for _ in range(7):  # thin out consecutive, near-identical boards
            games.step(expert_actions(games.obs, kind))
        boards.append(games.obs.copy())
    return np.concatenate(boards)[:count]


def test_shipped_checkpoint_is_small_and_safetensors_only():
    files = {path.name for path in PRETRAINED_10X10.iterdir()}
    assert {"config.json", "model.safetensors", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert (PRETRAINED_10X10 / "model.safetensors").stat().st_size < 10_000_000


def _shipped_teacher() -> str:
    """The expert the shipped model imitates, as its card names it (hub.TEACHERS)."""
    from snake_world_eqm.hub import TEACHERS

    card = (PRETRAINED_10X10 / "README.md").read_text()
    named = [kind for kind, sentence in TEACHERS.items() if sentence in card]
    assert len(named) == 1, named
    return named[0]


def test_shipped_checkpoint_agrees_with_its_teacher(shipped):
    teacher = _shipped_teacher()
    boards = _expert_boards(256, seed=123, kind=teacher)
    with torch.no_grad():
        actions = shipped.sample(boards, generator=torch.Generator().manual_seed(0)).action.numpy()
    agreement = float((actions == expert_actions(boards, teacher)).mean())
    assert agreement > 0.85, (teacher, agreement)


def test_shipped_checkpoint_plays_and_eats(shipped):
    torch.manual_seed(0)
    eqm = play_games(EqMAgent(shipped, seed=0), 10, 10, num_games=4, seed=7, max_steps=150, progress=False)
    expert = play_games(ExpertAgent(), 10, 10, num_games=4, seed=7, max_steps=150, progress=False)
    assert eqm["games"] == 4
    # A random agent eats ~0.1 apples a game on 10x10; the shipped model must actually play.
    assert eqm["mean_apples"] >= 3, eqm
    assert expert["mean_apples"] >= eqm["mean_apples"] * 0.5


def _populate_cache_from_push(tmp_path, monkeypatch, folder, repo_id):
    """Push with HfApi intercepted, then lay the committed files out as the HF cache holds a download."""
    committed: dict[str, bytes] = {}

    def fake_create_commit(self, repo_id, operations, **kwargs):
        for op in operations:
            content = op.path_or_fileobj
            committed[op.path_in_repo] = content if isinstance(content, bytes) else open(content, "rb").read()

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)
    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    monkeypatch.setattr(HfApi, "whoami", lambda self, token=None: {"name": "tester"})
    monkeypatch.setenv("HF_TOKEN", "hf_intercepted")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the push is intercepted; the load below is offline
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once at import by huggingface_hub
    push_folder(folder, repo_id)
    commit = "0" * 40
    repo_dir = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    for name, data in committed.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(data)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return committed


def test_pushed_repo_loads_by_id_offline_both_ways(tmp_path, monkeypatch, shipped):
    committed = _populate_cache_from_push(tmp_path, monkeypatch, PRETRAINED_10X10, "org/snake-eqm")
    # The push adds the library's modeling code so trust_remote_code works from the Hub repo alone.
    assert {"config.json", "model.safetensors", "README.md", "modeling_snake_world_eqm.py"} <= set(committed)
    board = _expert_boards(1, seed=5)[0]
    np.save(tmp_path / "board.npy", board)
    expected = shipped.sample(board, generator=torch.Generator().manual_seed(0)).latent_next
    torch.save(expected, tmp_path / "expected.pt")
    script = textwrap.dedent(f"""
        import numpy as np, torch
        from transformers import AutoModel
        board = np.load({str(tmp_path / 'board.npy')!r})
        expected = torch.load({str(tmp_path / 'expected.pt')!r})
        # Remote code first: importing the library's model registers its classes with AutoModel locally.
        remote = AutoModel.from_pretrained("org/snake-eqm", trust_remote_code=True).eval()
        assert type(remote).__module__.startswith("transformers_modules"), type(remote).__module__
        from snake_world_eqm import SnakeWorldEqM
        direct = SnakeWorldEqM.from_pretrained("org/snake-eqm").eval()
        for model in (direct, remote):
            out = model.sample(board, generator=torch.Generator().manual_seed(0))
            assert torch.equal(out.latent_next, expected)
        print("ok")
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hub"),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_card_of_the_shipped_checkpoint_has_valid_metadata():
    text = (PRETRAINED_10X10 / "README.md").read_text()
    import yaml

    metadata = yaml.safe_load(text.split("---")[1])
    assert metadata["library_name"] == "transformers"
    metrics = metadata["model-index"][0]["results"][0]["metrics"]
    assert any(m["type"] == "action_accuracy" for m in metrics)
    config = json.loads((PRETRAINED_10X10 / "config.json").read_text())
    assert config["model_type"] == "snake_world_eqm"
