"""Test helpers shared by several test modules (importable: pytest.ini puts tests/ on the path)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np


def box_scene(h=60, w=80, wall=5.0, box=2.0):
    """A near box in front of a wall: depth and a matching two-tone photo."""
    depth = np.full((h, w), wall, np.float32)
    depth[h // 4: 3 * h // 4, w // 4: w // 2] = box
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = (40, 90, 200)                    # wall: blue (BGR for cv2 -> shown as orange-ish, fine)
    rgb[depth < wall] = (20, 200, 40)         # box: green
    return depth, rgb


def run_cli(*args, timeout=600):
    """``python -m photo3d ARGS`` in a subprocess: (returncode, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "photo3d", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr
