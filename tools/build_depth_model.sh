#!/usr/bin/env bash
# Rebuild photo3d's own depth model from scratch: render data, train, export, evaluate.
#   tools/build_depth_model.sh [IMAGES] [STEPS]      (make depth-model IMAGES=... STEPS=...)
# Data and checkpoints go to $PHOTO3D_WORK (default ./build/depth-model), never into git.
# Resumable: rendered images are skipped, training resumes from its last checkpoint.
# Rendering takes ~2 s an image on a 2-core CPU. Training wants a GPU (--device auto picks
# CUDA): the shipped model's recipe below ran 6,030 + 2,492 steps in 8.6 + 3.4 minutes on one H200; on a
# 2-core CPU a step of batch 64 takes ~5 s. models/README.md has the figures.
# On a GPU machine without network (the project's device tool), carry the data as shards:
#   .venv-train/bin/python tools/train_depth/pack.py $WORK/data build/depth-pack --quality 90 88
#   tools/train_depth/device_train.sh 9          (there; same recipe, time-boxed)
# (the tree and the pack travel within 64 MiB: about 2,500 samples at those qualities). Richer
# data for a retraining: rich samples (generate.py --rich: light pools, lamps, lattice towers)
# beside the plain ones; tools/depthdata/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-2000}
STEPS=${2:-6000}
WORK=${PHOTO3D_WORK:-build/depth-model}
mkdir -p "$WORK"
if [ ! -x .venv-train/bin/python ]; then
  python3 -m venv .venv-train
  .venv-train/bin/pip install -q -r tools/train_depth/requirements.txt
fi
.venv/bin/python tools/depthdata/generate.py --out "$WORK/data" --count "$IMAGES" --seed 11
COMMON=(--data "$WORK/data" --out "$WORK/run" --resume --batch 64 --crop 128 192 --scale-max 2.0
        --sky-far --val 64 --val-every 1000 --workers 4)
# stage 1: cosine from 1.5e-3; stage 2: a gentler second cosine from 5e-4 (+40 % steps)
.venv-train/bin/python tools/train_depth/train.py "${COMMON[@]}" --steps "$STEPS" --lr 1.5e-3 --warmup 300
.venv-train/bin/python tools/train_depth/train.py "${COMMON[@]}" --steps $((STEPS * 14 / 10)) --lr 5e-4 \
    --warmup 0 --new-schedule
.venv-train/bin/python tools/train_depth/export.py "$WORK/run/best.pt" --out "$WORK/photo3d_depth.onnx"
.venv/bin/python tools/eval_depth.py --weights "$WORK/photo3d_depth.onnx"
echo "To ship it: cp $WORK/photo3d_depth.onnx models/ (only if it beats the one in models/ above)"
