"""Pack the generator's ``.npz`` samples into a few compact shards for training elsewhere.

A rendered sample is ~180 kB (float32 depth, float16 normals); a packed one is ~20 kB:
RGB as JPEG (q95), depth as a 12-bit log-depth PNG (0 = no surface; one level is a
0.2 % depth step, far below what the scale-and-shift-invariant loss can see), normals as a
4:4:4 JPEG (q92; the cosine loss does not notice), the subject mask as PNG. That makes a
few thousand samples fit through a 64 MiB transfer to a GPU machine.

A shard ``pack_NNN.npz`` holds ``blob`` (uint8, every encoded image back to back),
``offsets`` (int64, (N, 5): rgb, depth, normal, mask starts and the end), ``kind``
(mask_kind per sample) and ``names``. ``PackedSamples`` in ``train.py`` reads them.

    python tools/train_depth/pack.py /work/data/depth build/depth-pack [--per-shard 1000]
"""
from __future__ import annotations

import argparse
import glob
import os

import cv2
import numpy as np

LOG_NEAR, LOG_FAR, LEVELS = np.log(0.05), np.log(200.0), 4094     # codes 1..4095, 0 = invalid
MAX_DEPTH = 100.0                                                  # what invalid pixels decode to


def encode_depth(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    t = (np.log(np.maximum(depth, 1e-4)) - LOG_NEAR) / (LOG_FAR - LOG_NEAR)
    q = np.clip(np.round(t * LEVELS) + 1, 1, LEVELS + 1)
    return np.where(valid, q, 0).astype(np.uint16)


def decode_depth(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = q > 0
    t = (q.astype(np.float32) - 1) / LEVELS
    depth = np.exp(LOG_NEAR + t * (LOG_FAR - LOG_NEAR)).astype(np.float32)
    return np.where(valid, depth, MAX_DEPTH).astype(np.float32), valid


def _png(a) -> bytes:
    return cv2.imencode(".png", a, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()


def _jpg(a, q) -> bytes:
    return cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, q,
                                    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])[1].tobytes()


def encode_sample(z, quality: tuple[int, int] = (95, 92)) -> list[bytes]:
    """A sample's RGB, depth, normals and mask as encoded images; ``quality``: the JPEG
    qualities of the RGB and the normals."""
    rgb = np.asarray(z["rgb"])[..., :3]
    depth = np.asarray(z["depth"], np.float32)
    valid = np.asarray(z["valid"], bool) & np.isfinite(depth) & (depth > 0)
    normal = (np.nan_to_num(np.asarray(z["normal"], np.float32)) if "normal" in z
              else np.zeros(depth.shape + (3,), np.float32))
    mask = np.asarray(z["mask"], np.uint8) if "mask" in z else np.zeros(depth.shape, np.uint8)
    nq = np.clip(np.round((normal + 1) * 127.5), 0, 255).astype(np.uint8)
    return [_jpg(rgb[..., ::-1], quality[0]), _png(encode_depth(depth, valid)), _jpg(nq, quality[1]), _png(mask)]


def decode_sample(blob: np.ndarray, offs: np.ndarray):
    """-> rgb uint8, depth float32 (invalid = MAX_DEPTH), valid bool, normal float32, mask uint8."""
    part = [blob[offs[k]:offs[k + 1]] for k in range(4)]
    rgb = cv2.imdecode(part[0], cv2.IMREAD_COLOR)[..., ::-1]
    depth, valid = decode_depth(cv2.imdecode(part[1], cv2.IMREAD_UNCHANGED))
    normal = cv2.imdecode(part[2], cv2.IMREAD_COLOR).astype(np.float32) / 127.5 - 1.0
    n = np.linalg.norm(normal, axis=2, keepdims=True)       # "unknown" (0,0,0) decodes near 0
    normal = np.where(n > 0.5, normal / np.maximum(n, 1e-6), 0).astype(np.float32)
    mask = cv2.imdecode(part[3], cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(rgb), depth, valid, normal, mask


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="folder of generator .npz samples")
    ap.add_argument("out", help="folder for pack_NNN.npz shards")
    ap.add_argument("--per-shard", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=0, help="pack at most this many samples")
    ap.add_argument("--quality", type=int, nargs=2, default=(95, 92), metavar=("RGB", "NORMALS"),
                    help="JPEG qualities: 90 88 packs a sample in ~21 kB instead of ~26 (training adds JPEG "
                         "artefacts anyway), 2,500 samples beside the tree within the device's 64 MiB")
    a = ap.parse_args(argv)
    files = sorted(glob.glob(os.path.join(a.src, "**", "*.npz"), recursive=True))
    files = [f for f in files if not os.path.basename(f).startswith("pack_")]
    if a.limit:
        files = files[:a.limit]
    os.makedirs(a.out, exist_ok=True)
    total = 0
    for s in range(0, len(files), a.per_shard):
        blobs, offsets, kinds, names = [], [], [], []
        pos = 0
        for f in files[s:s + a.per_shard]:
            try:
                with np.load(f) as z:
                    parts = encode_sample(z, tuple(a.quality))
                    kinds.append(int(z["mask_kind"]) if "mask_kind" in z else 0)
            except Exception as exc:                     # a half-written or corrupt file
                print(f"skip {f}: {exc}")
                continue
            row = [pos]
            for p in parts:
                pos += len(p)
                row.append(pos)
            offsets.append(row)
            blobs.extend(parts)
            names.append(os.path.basename(f))
        path = os.path.join(a.out, f"pack_{s // a.per_shard:03d}.npz")
        np.savez(path, blob=np.frombuffer(b"".join(blobs), np.uint8), offsets=np.array(offsets, np.int64),
                 kind=np.array(kinds, np.uint8), names=np.array(names))
        total += len(names)
        print(f"{path}: {len(names)} samples, {os.path.getsize(path) / 1e6:.1f} MB")
    print(f"{total} samples")


if __name__ == "__main__":
    main()
