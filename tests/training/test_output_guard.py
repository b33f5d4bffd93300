"""Issue 28, items 6, 7, 8, 9, 11: the one output-folder guard, the lock against concurrent writers, and
atomic writes. The kill tests SIGKILL a dataset build and a training run at fixed points (a patched function
kills its own process) and check that the previous good artifact is intact and the next run leaves no staging.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dataset_builder.builder import build_dataset
from snake_world_eqm.data import GenerationConfig
from snake_world_eqm.output_guard import OutputFolderError, OutputLock, guard_output_folder
from snake_world_eqm.pretrained import load_model
from snake_world_eqm.training import main as train_main
from tests.training_helpers import QUIET, REPO_ROOT, TINY_EQM, build_tiny_dataset, subprocess_env

SMALL = dict(num_samples=120, height=5, width=5, seed=1, split_fractions=(0.8, 0.1, 0.1))


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "ds", num_samples=200)


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _train_argv(dataset, out, *extra):
    return ["--dataset", str(dataset), "--output-dir", str(out), "--max-steps", "2", "--batch-size", "16",
            "--max-eval-samples", "8", *TINY_EQM, *QUIET, *extra]


# ---------------------------------------------------------------------------------------------------------
# Item 6: never delete the current folder, a folder above it, or the model the command reads


def test_build_with_output_dot_and_overwrite_deletes_nothing(tmp_path, monkeypatch):
    work = tmp_path / "thesis"
    (work / "src").mkdir(parents=True)
    (work / "thesis.tex").write_text("years of work")
    monkeypatch.chdir(work)
    before = _digest(work)
    for output in (".", str(work), str(tmp_path)):
        with pytest.raises(OutputFolderError, match="current folder or one above it"):
            build_dataset(GenerationConfig(**SMALL), output, overwrite=True, progress=False)
    assert _digest(work) == before


def test_the_model_read_is_never_the_output(tmp_path, dataset, capsys):
    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
    from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM
    from tests.model.test_bad_input_model import TINY

    model = tmp_path / "m"
    SnakeWorldEqM(SnakeWorldEqMConfig(**TINY)).save_pretrained(model)
    before = _digest(model)
    with pytest.raises(OutputFolderError, match="input"):  # --policy M --output M --overwrite
        guard_output_folder(model, "dataset", True, "--output", protected=[str(model)])
    with pytest.raises(OutputFolderError, match="holds a model"):  # and a model is never a dataset to replace
        guard_output_folder(model, "dataset", True, "--output")
    assert train_main(_train_argv(dataset, model, "--model-name-or-path", str(model),
                                  "--overwrite-output-dir")) == 2
    assert "input" in capsys.readouterr().err and _digest(model) == before


# ---------------------------------------------------------------------------------------------------------
# Item 9: training into the dataset folder (or any folder of another kind or foreign files) is refused


def test_training_into_the_dataset_folder_is_refused(dataset, capsys):
    before = _digest(dataset)
    assert train_main(_train_argv(dataset, dataset, "--overwrite-output-dir")) == 2
    assert "is, holds or lies inside the input" in capsys.readouterr().err
    assert _digest(dataset) == before


def test_training_into_another_dataset_or_foreign_files_is_refused(tmp_path, dataset, capsys):
    other = build_tiny_dataset(tmp_path / "other", num_samples=60)
    assert train_main(_train_argv(dataset, other, "--overwrite-output-dir")) == 2
    assert "holds a dataset" in capsys.readouterr().err
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "draft.md").write_text("mine")
    assert train_main(_train_argv(dataset, notes, "--overwrite-output-dir")) == 2
    assert "files this tool did not write (draft.md)" in capsys.readouterr().err


def test_a_dataset_build_never_replaces_a_training_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(OutputFolderError, match="holds a training run"):
        build_dataset(GenerationConfig(**SMALL), run, overwrite=True, progress=False)
    assert (run / "run.json").is_file()


# ---------------------------------------------------------------------------------------------------------
# Item 7: a second writer of the same folder fails at once (the lock outlives nothing: SIGKILL drops it)

HOLD_LOCK = """
import sys, time
from snake_world_eqm.output_guard import OutputLock
OutputLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_writer_is_refused(tmp_path, dataset, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True,
                              env=subprocess_env(), cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputFolderError, match="being written by another process"):
            build_dataset(GenerationConfig(**SMALL), out, progress=False)
        assert train_main(_train_argv(dataset, out)) == 2
        assert "being written by another process" in capsys.readouterr().err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not out.exists() or not any(out.iterdir())
    with OutputLock(out):  # the kernel dropped the dead holder's lock
        pass
    build_dataset(GenerationConfig(**SMALL), out, progress=False)


# ---------------------------------------------------------------------------------------------------------
# Items 8, 11: kills at fixed points keep the previous good artifact and leave no staging behind

KILL_BUILD = """
import os, signal, sys
import dataset_builder.builder as builder
from dataset_builder.__main__ import main
point, sig = sys.argv[1], getattr(signal, sys.argv[2])
if point == "after-first-chunk":
    original = builder._write_chunk
    def write_then_die(*args, **kwargs):
        stats = original(*args, **kwargs)
        os.kill(os.getpid(), sig)
        return stats
    builder._write_chunk = write_then_die
elif point == "before-publish":
    def die(*args, **kwargs):
        os.kill(os.getpid(), sig)
    builder.publish_staging = die
main(sys.argv[3:])
"""


def _staging(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}.") and not p.name.endswith(".lock"))


@pytest.mark.parametrize("point, sig", [("after-first-chunk", "SIGKILL"), ("before-publish", "SIGKILL"),
                                        ("after-first-chunk", "SIGTERM")])
def test_killed_build_keeps_the_previous_dataset(tmp_path, point, sig):
    output = tmp_path / "ds"
    build_dataset(GenerationConfig(**SMALL), output, progress=False)
    before = _digest(output)
    argv = ["--num-samples", "400", "--height", "5", "--width", "5", "--seed", "9", "--rows-per-chunk", "100",
            "--output", str(output), "--overwrite", "--no-progress"]
    proc = subprocess.run([sys.executable, "-c", KILL_BUILD, point, sig, *argv], env=subprocess_env(),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (-signal.SIGKILL, 128 + signal.SIGTERM, -signal.SIGTERM), proc.stderr
    assert _digest(output) == before  # the previous good dataset, untouched
    if sig == "SIGTERM":  # item 11: a SIGTERM'd build removes its own staging folder
        assert _staging(tmp_path, "ds") == []
    build_dataset(GenerationConfig(**SMALL), output, overwrite=True, progress=False)  # the next run cleans up
    assert _staging(tmp_path, "ds") == [] and _digest(output) == before


KILL_TRAIN = """
import os, signal, sys
from pathlib import Path
import snake_world_eqm.training.outputs as outputs
from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM
from snake_world_eqm.training import main
point = sys.argv[1]
original = SnakeWorldEqM.save_pretrained
def save_then_die(self, folder, *args, **kwargs):
    original(self, folder, *args, **kwargs)
    if point == "final-save" and Path(folder).name == ".tmp-final":
        os.kill(os.getpid(), signal.SIGKILL)
SnakeWorldEqM.save_pretrained = save_then_die
if point == "final-rename":
    move = outputs.move_files_into
    def die_in_move(staging, folder, last=()):
        os.replace(Path(staging) / "README.md", Path(folder) / "README.md")
        os.kill(os.getpid(), signal.SIGKILL)
    outputs.move_files_into = die_in_move
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("point", ["final-save", "final-rename"])
def test_kill_during_the_final_save_keeps_the_previous_model(tmp_path, dataset, point):
    out = tmp_path / "run"
    assert train_main(_train_argv(dataset, out, "--save-every", "1")) == 0
    weights = (out / "model.safetensors").read_bytes()
    config = (out / "config.json").read_bytes()
    argv = _train_argv(dataset, out, "--save-every", "1", "--resume-from-checkpoint", "latest")
    argv[argv.index("--max-steps") + 1] = "4"
    proc = subprocess.run([sys.executable, "-c", KILL_TRAIN, point, *argv], env=subprocess_env(), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (out / "model.safetensors").read_bytes() == weights and (out / "config.json").read_bytes() == config
    load_model(out)  # the previous good model still loads
    assert train_main(argv) == 0  # the next run resumes and finishes
    assert [p.name for p in out.iterdir() if p.name.startswith(".tmp")] == []
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 4
    assert (out / "model.safetensors").read_bytes() != weights
