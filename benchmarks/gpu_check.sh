#!/usr/bin/env bash
# GPU check, run on a lent GPU machine (no network there): trains the seed-sized default config with
# bf16, then the same for a short fp32 and fp16 run, and leaves metrics.json of each under $OUT.
# Wheels the GPU image lacks are carried in .gpu_wheels/ (pip download --no-deps ... for Python 3.12).
set -euo pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
BF16_MIN=${BF16_MIN:-1.5}; SHORT_MIN=${SHORT_MIN:-0.4}  # the recorded runs (docs/results/gpu_h200_*.json)
if [ -d .gpu_wheels ]; then python3 -m pip install -q --no-deps --no-index .gpu_wheels/*.whl 2>&1 | tail -1 || true; fi
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1 || true
python3 - <<'PY'
import torch, transformers, datasets, accelerate
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0))
print("transformers", transformers.__version__, "datasets", datasets.__version__, "accelerate", accelerate.__version__)
PY
python3 -m dataset_builder --num-samples 200000 --output /tmp/ds --seed 0 --num-proc 8 --no-progress
common=(--dataset /tmp/ds --config-preset recommended --batch-size 256 --eval-every 100000 --save-every 100000
        --max-eval-samples 2048 --disable-progress-bar --report-to none)
python3 hub_scripts/train.py "${common[@]}" --mixed-precision bf16 --max-train-minutes "$BF16_MIN" --output-dir /tmp/bf16
python3 hub_scripts/train.py "${common[@]}" --mixed-precision no --max-train-minutes "$SHORT_MIN" --output-dir /tmp/fp32
python3 hub_scripts/train.py "${common[@]}" --mixed-precision fp16 --max-train-minutes "$SHORT_MIN" --output-dir /tmp/fp16
for run in bf16 fp32 fp16; do cp /tmp/$run/metrics.json "$OUT/metrics_$run.json"; done
nvidia-smi --query-gpu=name,memory.used --format=csv
