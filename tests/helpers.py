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
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor
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


def write_wheel(folder, name, version="1.0", files=None, requires=(), extras=()):
    """A pure-Python wheel written by hand (no build backend, no network): ``files`` maps
    paths inside the wheel to their text (default: ``NAME/__init__.py`` with a VERSION);
    ``requires`` become its Requires-Dist (``'x; extra == "e"'`` for an extra's), ``extras``
    its Provides-Extra. Returns the wheel's path."""
    import base64
    import hashlib
    import os
    import zipfile
    files = dict(files or {f"{name}/__init__.py": f"VERSION = {version!r}\n"})
    info = f"{name}-{version}.dist-info"
    files[f"{info}/METADATA"] = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                                         *(f"Provides-Extra: {e}\n" for e in extras),
                                         *(f"Requires-Dist: {r}\n" for r in requires)])
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: photo3d-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    path = os.path.join(str(folder), f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for p, text in files.items():
            zf.writestr(p, text)
    return path


class FakeLayout:
    """Stands in for UILayout in draw() calls: checks that each property and operator drawn
    exists; ``drawn`` lists them in order (labels as "label"), ``labels`` the texts shown."""

    def __init__(self, bpy):
        self.bpy, self.drawn, self.labels, self.operators = bpy, [], [], []
        self.use_property_split = False

    def prop(self, data, name, **kw):
        assert name in data.bl_rna.properties, name
        self.drawn.append(name)

    def operator(self, idname, **kw):
        mod, op = idname.split(".")
        assert hasattr(getattr(self.bpy.ops, mod), op), idname
        self.drawn.append(idname)
        import types
        props = types.SimpleNamespace()          # what the draw code sets on the button's operator
        self.operators.append((idname, props))
        return props

    def progress(self, factor=0.0, text="", **kw):
        self.drawn.append("progress")
        self.labels.append(text)

    def label(self, text="", **kw):
        self.drawn.append("label")
        self.labels.append(text)

    def column(self, **kw):
        return self

    row = column

    def separator(self, **kw):
        pass


def png_header_only(path, w, h):
    """A small PNG file whose header declares ``w`` x ``h`` RGB pixels (its data is a few rows):
    what a size check must refuse before anything is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * (3 * w + 1) * 4)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
