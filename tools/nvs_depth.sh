#!/bin/bash
# ../shared/eval/nvs.sh --predicted with another depth than the default model: give this
# script as its Python. It passes every call through, except `-m photo3d depth`, which
# gets NVS_DEPTH: a model name (`--depth-model NAME`) or `ramp` (a vertical ramp, near at
# the bottom; nvs.sh aligns it to the truth like any other depth).
#   NVS_DEPTH=classical PHOTO3D_PYTHON=tools/nvs_depth.sh ../shared/eval/nvs.sh ../shared/eval/real --predicted
#   NVS_DEPTH=ramp      PHOTO3D_PYTHON=tools/nvs_depth.sh ../shared/eval/nvs.sh ../shared/eval/real --predicted
# NVS_PYTHON: the real interpreter (default .venv/bin/python).
PY=${NVS_PYTHON:-.venv/bin/python}
if [ "${1:-}" = -m ] && [ "${2:-}" = photo3d ] && [ "${3:-}" = depth ] && [ -n "${NVS_DEPTH:-}" ]; then
  if [ "$NVS_DEPTH" = ramp ]; then
    # argv: -m photo3d depth PHOTO --out OUT
    exec "$PY" - "$4" "$6" <<'EOF'
import sys, cv2, numpy as np
h, w = cv2.imread(sys.argv[1]).shape[:2]
v = (np.arange(h, dtype=np.float32) + 0.5) / h
np.save(sys.argv[2], np.repeat((1.0 / (0.1 + v))[:, None], w, 1).astype(np.float32))
print(f"nvs_depth: wrote a vertical ramp {w}x{h} to {sys.argv[2]}")
EOF
  fi
  exec "$PY" "$@" --depth-model "$NVS_DEPTH"
fi
exec "$PY" "$@"
