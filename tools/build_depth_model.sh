#!/usr/bin/env bash
# Rebuild photo3d's own depth model from scratch: render data, train, export, install.
#   tools/build_depth_model.sh [IMAGES] [STEPS]      (make depth-model IMAGES=... STEPS=...)
# Data and checkpoints go to $PHOTO3D_WORK (default ./build/depth-model), never into git.
# Resumable: rendered images are skipped, training resumes from its last checkpoint.
# On a CPU, rendering takes ~2 s an image and training ~0.85 s a step (batch 12 at 128x160);
# a GPU (--device auto picks CUDA) is what a model worth shipping needs.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-4000}
STEPS=${2:-20000}
WORK=${PHOTO3D_WORK:-build/depth-model}
mkdir -p "$WORK"
if [ ! -x .venv-train/bin/python ]; then
  python3 -m venv .venv-train
  .venv-train/bin/pip install -q -r tools/train_depth/requirements.txt
fi
.venv/bin/python tools/depthdata/generate.py --out "$WORK/data" --count "$IMAGES" --seed 11
.venv-train/bin/python tools/train_depth/train.py --data "$WORK/data" --out "$WORK/run" \
    --steps "$STEPS" --batch 12 --crop 128 160 --resume
.venv-train/bin/python tools/train_depth/export.py "$WORK/run/last.pt" --out "$WORK/photo3d_depth.onnx" --no-fp16
.venv/bin/python tools/eval_depth.py --weights "$WORK/photo3d_depth.onnx"
echo "To ship it: cp $WORK/photo3d_depth.onnx models/ (only if it beats the classical fallback above)"
