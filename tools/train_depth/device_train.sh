#!/usr/bin/env bash
# One time-boxed training run on a lent GPU machine (the project's `device` tool), all in
# one call: that machine has PyTorch, OpenCV and onnx but no network, so the data travel
# as pack.py shards (build/depth-pack, carried) and the weights come back under $OUT.
#   here:   .venv-train/bin/python tools/train_depth/pack.py DATA build/depth-pack
#   there:  tools/train_depth/device_train.sh MINUTES [extra train.py args]
# Returns $OUT/model.pt (weights only), $OUT/photo3d_depth.onnx, $OUT/train.log.
set -uo pipefail
MINUTES=${1:-8}; shift || true
OUT=${OUT:-build/device-out}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" -c "import torch, cv2, onnx; print('torch', torch.__version__, 'cv2', cv2.__version__, 'onnx', onnx.__version__, 'cuda', torch.cuda.is_available())"
"$PY" tools/train_depth/train.py --data build/depth-pack --out /tmp/run --device "${DEVICE:-cuda}" \
    --minutes "$MINUTES" --steps 200000 --batch 64 --crop 128 192 --workers 14 --lr 1.5e-3 --val 64 --val-every 1000 --scale-max 2.0 --threads 2 \
    --sky-far --warmup 300 --log-every 250 --save-every 100000 "$@" 2>&1 | tee "$OUT/train.log"
cp /tmp/run/model.pt /tmp/run/best.pt /tmp/run/log.jsonl "$OUT/"
for w in $([ "${EXPORT:-1}" = 1 ] && echo best model); do     # EXPORT=0: export back home
  [ -f "/tmp/run/$w.pt" ] && "$PY" tools/train_depth/export.py "/tmp/run/$w.pt" --out "$OUT/$w.onnx" --no-time 2>&1 | tail -3
done
ls -la "$OUT"
