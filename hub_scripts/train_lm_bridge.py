"""Train the LM bridge (a causal LM reading the EqM world model's prediction) with Accelerate.

    accelerate launch hub_scripts/train_lm_bridge.py --dataset snake_world_dataset \
        --eqm-model outputs/snake_world_eqm --output-dir outputs/lm_bridge
    # a real Hub LM instead of the tiny one built from a config (frozen by default; the projector trains):
    accelerate launch hub_scripts/train_lm_bridge.py ... --lm-name-or-path HuggingFaceTB/SmolLM2-135M
    # continue an interrupted run from its newest checkpoint:
    accelerate launch hub_scripts/train_lm_bridge.py ... --resume-from-checkpoint latest

Thin entry point; the loop lives in `snake_world_eqm.lm_bridge.training`. Same flags as `snake-eqm lm-train --help`.
"""

import sys

from snake_world_eqm.cli import main  # through the dispatcher: --help answers without torch

if __name__ == "__main__":
    raise SystemExit(main(["lm-train", *sys.argv[1:]]))
