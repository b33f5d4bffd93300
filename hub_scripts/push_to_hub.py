"""Push a trained model folder (or a built dataset folder) to the Hugging Face Hub.

    python hub_scripts/push_to_hub.py --model-dir outputs/snake_world_eqm --repo-id org/snake-eqm
    python hub_scripts/push_to_hub.py --dataset-dir snake_world_dataset --repo-id org/snake-world
    python hub_scripts/push_to_hub.py --space-id org/snake-eqm-demo --model-id org/snake-eqm   # the Gradio app
"""

from snake_world_eqm.hub import main

if __name__ == "__main__":
    raise SystemExit(main())
