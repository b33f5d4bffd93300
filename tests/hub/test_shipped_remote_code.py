"""The shipped checkpoint folders load the way a Hub user loads a model: through the Auto classes with
trust_remote_code=True, in a fresh interpreter that has imported nothing of the package first."""

from __future__ import annotations

import os
import subprocess
import sys

from snake_world_eqm.hub.cards import add_remote_code
from snake_world_eqm.hub.push import PACKAGE_DIR, files_to_push
from snake_world_eqm.shipped import PRETRAINED_10X10, PRETRAINED_MULTISIZE

SHIPPED = (PRETRAINED_10X10, PRETRAINED_MULTISIZE)

FRESH_LOAD = """
import sys
from transformers import AutoConfig, AutoModel
assert not [name for name in sys.modules if name.startswith("snake_world_eqm")]
for folder in sys.argv[1:]:
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__name__ == "SnakeWorldEqM" and type(config).__name__ == "SnakeWorldEqMConfig"
    # It plays: the start board of a 10x10 game gives one of the four moves.
    from snake_world_eqm.game import encode_observation, new_game
    import torch
    board = torch.as_tensor(encode_observation(new_game(10, 10, rng=0)), dtype=torch.long)[None]
    action = int(model.sample(board).action[0])
    assert 0 <= action < 4
    print("loaded", folder, type(model).__module__)
import gymnasium as gym
import snake_world_eqm  # noqa: F401  (enough: the package registers the env)
env = gym.make("snake_world_eqm/Snake-v0")
observation, info = env.reset(seed=0)
print("env", observation.shape)
"""


def test_shipped_folders_load_through_automodel_in_a_fresh_interpreter(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", FRESH_LOAD, *map(str, SHIPPED)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)  # a hang guard only
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = [line for line in done.stdout.splitlines() if line.startswith("loaded ")]
    assert len(loaded) == 2 and all("transformers_modules" in line for line in loaded)  # the folder's own code
    assert "env (10, 10)" in done.stdout


def test_shipped_remote_code_is_the_packages_own_and_what_a_push_sends():
    for folder in SHIPPED:
        code = sorted(name for name in files_to_push(folder, "model") if name.endswith(".py"))
        assert code == ["configuration_snake_world_eqm.py", "eqm.py", "modeling_snake_world_eqm.py"]
        # Links into the package: the shipped code is always the installed code, never a stale copy.
        assert all((folder / name).is_symlink() for name in code)
        assert all((folder / name).resolve() == (PACKAGE_DIR / name).resolve() for name in code)


def test_add_remote_code_writes_what_is_missing_or_stale_only(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((PRETRAINED_10X10 / name).read_bytes())
    assert add_remote_code(folder) == ["configuration_snake_world_eqm.py", "eqm.py", "modeling_snake_world_eqm.py"]
    assert add_remote_code(folder) == []
    (folder / "eqm.py").write_text("# edited\n")
    assert add_remote_code(folder) == ["eqm.py"]
    assert (folder / "eqm.py").read_bytes() == (PACKAGE_DIR / "eqm.py").read_bytes()
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".")]  # no staging left
    assert add_remote_code(folder, link=True) == ["configuration_snake_world_eqm.py", "eqm.py",
                                                  "modeling_snake_world_eqm.py"]
    assert (folder / "eqm.py").is_symlink() and add_remote_code(folder, link=True) == []
