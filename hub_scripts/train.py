"""Train the Snake EqM world model (or the baseline): `accelerate launch hub_scripts/train.py --dataset ...`.

Thin entry point; the loop lives in `snake_world_eqm.training`. Same flags as `snake-eqm train --help`.
"""

from snake_world_eqm.training import main

if __name__ == "__main__":
    raise SystemExit(main())
