"""DAgger rounds (collect on-policy data, aggregate, fine-tune, score): `python hub_scripts/dagger.py --model ...`.

Thin entry point; the loop lives in `dataset_builder.dagger`. Same flags as `python -m dataset_builder dagger --help`.
"""

from dataset_builder.dagger import main

if __name__ == "__main__":
    raise SystemExit(main())
