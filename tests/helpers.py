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


def save_tiny_depth_anything(folder):
    """A tiny randomly initialised Depth Anything model and its processor, saved with
    ``save_pretrained`` into ``folder`` (the offline stand-in for the downloadable zoo)."""
    import torch
    from transformers import (DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config,
                              DPTImageProcessor)
    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            image_size=56, patch_size=14, reshape_hidden_states=False,
                            out_features=["stage1", "stage2", "stage3", "stage4"])
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32,
                                 neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True,
                      ensure_multiple_of=14).save_pretrained(folder)
    return folder
