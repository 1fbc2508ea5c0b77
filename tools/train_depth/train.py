"""Train photo3d's depth network on a folder of ``.npz`` samples.

Each sample (as written by ``tools/depthdata/generate.py``) holds
``rgb`` uint8 (H,W,3), ``depth`` float32 metres, ``valid`` bool, ``normal`` float16
(H,W,3) camera-space unit normals, ``mask`` uint8 subject mask, ``hfov`` float.
``normal`` and ``mask`` may be missing: their losses then skip that sample.

Losses (weights on the command line):
* scale-and-shift-invariant loss on inverse depth (MiDaS): per image the target
  disparity over the valid pixels is normalised (median / mean absolute deviation),
  the prediction is aligned to it by least squares (scale + shift), loss = mean |residual|;
* multi-scale gradient matching on that residual (4 scales);
* normals: 1 - cos(pred, gt) over the valid pixels;
* subject mask: BCE + Dice on the logits.

AdamW, linear warm-up then cosine decay (over --steps, or over --minutes if that ends first);
checkpoints ``last.pt`` (and ``step_N.pt``)
in ``--out``, resumable with ``--resume`` (``--resume`` alone: ``OUT/last.pt``).

    python tools/train_depth/train.py --data data/depth --out runs/depth \\
        --steps 40000 --batch 16 --device auto
    python tools/train_depth/train.py --data data/depth --out runs/depth --resume
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import build, count_parameters  # noqa: E402


# --------------------------------------------------------------------------- data
def _photometric(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    """Heavy photometric augmentation of a uint8 RGB image; returns float32 [0,1]."""
    img = rgb.astype(np.float32) / 255.0
    # colour jitter: brightness, contrast, saturation, hue, gamma, per-channel gain
    if rng.random() < 0.9:
        img = img * rng.uniform(0.6, 1.4)
        mean = img.mean()
        img = (img - mean) * rng.uniform(0.6, 1.4) + mean
        img = np.clip(img, 0, 1)
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)                  # H in [0, 360)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-15, 15)) % 360.0
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 1)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        img = np.clip(img, 0, 1) ** rng.uniform(0.7, 1.5)
        img = img * np.array([rng.uniform(0.9, 1.1) for _ in range(3)], np.float32)
    if rng.random() < 0.05:
        img = np.repeat(img.mean(2, keepdims=True), 3, 2)
    # vignetting: darken towards the corners
    if rng.random() < 0.4:
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
        r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (0.25 * (w * w + h * h))
        img = img * (1.0 - rng.uniform(0.1, 0.6) * np.clip(r2, 0, 1.5))[..., None]
    # blur
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 2.0))
    # sensor noise (luma + chroma)
    if rng.random() < 0.5:
        sigma = rng.uniform(0.0, 0.04)
        nrng = np.random.default_rng(rng.getrandbits(32))
        noise = nrng.normal(0, sigma, img.shape[:2] + (1,)) + nrng.normal(0, sigma * 0.5, img.shape)
        img = img + noise.astype(np.float32)
    img = np.clip(img, 0, 1)
    # JPEG re-encoding
    if rng.random() < 0.5:
        u8 = (img * 255 + 0.5).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, rng.randint(30, 95)])
        if ok:
            img = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    return img.astype(np.float32)


class NpzDepthDataset(Dataset):
    """Random-scale crops, horizontal flips and photometric augmentation of the samples in
    ``root``: the generator's ``.npz`` files, or the shards ``pack.py`` makes of them."""

    def __init__(self, root: str, crop=(288, 384), augment=True, scale=(1.0, 1.6), seed=0, sky_far=False):
        self.root = root
        self.packs = sorted(glob.glob(os.path.join(root, "pack_*.npz")))
        self.shards = [dict(np.load(p)) for p in self.packs]
        self.index = [(k, j) for k, sh in enumerate(self.shards) for j in range(len(sh["offsets"]))]
        self.files = self.scan()
        if not self.files:
            raise SystemExit(f"no .npz files under {root}")
        self.crop, self.augment, self.scale, self.seed = tuple(crop), augment, scale, seed
        self.sky_far = sky_far
        self.epoch = 0

    def scan(self):
        if self.packs:
            return self.index
        return sorted(glob.glob(os.path.join(self.root, "**", "*.npz"), recursive=True))

    def __len__(self):
        return len(self.files)

    def load(self, item):
        if self.packs:
            from pack import decode_sample
            k, j = item
            rgb, depth, valid, normal, mask = decode_sample(self.shards[k]["blob"], self.shards[k]["offsets"][j])
        else:
            with np.load(item) as z:
                rgb = z["rgb"]
                depth = z["depth"].astype(np.float32)
                valid = z["valid"].astype(bool) if "valid" in z else np.ones(depth.shape, bool)
                normal = z["normal"].astype(np.float32) if "normal" in z else None
                mask = z["mask"] if "mask" in z else None
        valid &= np.isfinite(depth) & (depth > 0)
        if self.sky_far:
            # The generator marks sky / beyond --max-depth as invalid and stores max depth there;
            # supervising it as (almost) zero disparity teaches "the sky is farthest".
            depth = np.where(valid, depth, 1e3).astype(np.float32)
            valid = np.ones_like(valid)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, 2)
        return rgb[..., :3], depth, valid, normal, mask

    def __getitem__(self, i):
        rng = random.Random(hash((self.seed, self.epoch, i, os.getpid(), time.time_ns())))
        rgb, depth, valid, normal, mask = self.load(self.files[i])
        h, w = depth.shape
        ch, cw = self.crop
        s = max(ch / h, cw / w)
        if self.augment:
            s *= rng.uniform(*self.scale)
        nh, nw = max(ch, int(math.ceil(h * s))), max(cw, int(math.ceil(w * s)))
        if (nh, nw) != (h, w):
            rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)

            def near(a):
                return cv2.resize(a, (nw, nh), interpolation=cv2.INTER_NEAREST)

            depth = near(depth)
            valid = near(valid.astype(np.uint8)).astype(bool)
            normal = near(normal) if normal is not None else None
            mask = near(mask) if mask is not None else None
        y0 = rng.randint(0, nh - ch) if self.augment else (nh - ch) // 2
        x0 = rng.randint(0, nw - cw) if self.augment else (nw - cw) // 2
        sl = (slice(y0, y0 + ch), slice(x0, x0 + cw))
        rgb, depth, valid = rgb[sl], depth[sl], valid[sl]
        normal = normal[sl] if normal is not None else None
        mask = mask[sl] if mask is not None else None
        if self.augment and rng.random() < 0.5:                     # horizontal flip
            rgb, depth, valid = rgb[:, ::-1], depth[:, ::-1], valid[:, ::-1]
            if normal is not None:
                normal = normal[:, ::-1] * np.array([-1, 1, 1], np.float32)   # x points right
            if mask is not None:
                mask = mask[:, ::-1]
        img = _photometric(np.ascontiguousarray(rgb), rng) if self.augment else rgb.astype(np.float32) / 255
        inv = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0).astype(np.float32)
        if normal is not None:
            nrm = np.linalg.norm(normal, axis=2)
            nvalid = valid & np.isfinite(nrm) & (nrm > 0.5)
            normal = np.where(nvalid[..., None], normal / np.maximum(nrm, 1e-6)[..., None], 0)
        else:
            normal, nvalid = np.zeros(depth.shape + (3,), np.float32), np.zeros(depth.shape, bool)
        has_mask = mask is not None
        mask = (mask > 0).astype(np.float32) if has_mask else np.zeros(depth.shape, np.float32)

        def t(a):
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

        return {
            "rgb": t(img).permute(2, 0, 1), "inv": t(inv)[None], "valid": t(valid)[None],
            "normal": t(normal).permute(2, 0, 1), "nvalid": t(nvalid)[None],
            "mask": t(mask)[None], "has_mask": torch.tensor(float(has_mask)),
        }


# --------------------------------------------------------------------------- losses
def _normalise(x, m, count):
    """Per image: (x - median) / mean absolute deviation over the valid pixels (MiDaS)."""
    n = x.shape[0]
    med = torch.nan_to_num(torch.where(m, x, torch.nan).flatten(1).nanmedian(1).values).view(n, 1, 1, 1)
    mad = torch.where(m, (x - med).abs(), 0.0).flatten(1).sum(1).view(n, 1, 1, 1) / count.view(n, 1, 1, 1)
    return (x - med) / mad.clamp_min(1e-3)


def ssi_loss(pred, target, valid, scales=4, min_pixels=16):
    """MiDaS scale-and-shift-invariant loss + multi-scale gradient matching, batched.

    pred, target: (B,1,H,W) inverse depth; valid: (B,1,H,W) {0,1}. Returns (ssi, grad).
    Both prediction and target are normalised by their own median and mean absolute
    deviation. (Aligning the prediction to the target by least squares instead, as this
    script first did, scales the gradient by the fitted scale, which is ~0 while the
    prediction is still uncorrelated with the target: training sat at the constant
    prediction for hundreds of steps.)
    """
    m = valid > 0.5
    count = m.flatten(1).sum(1).float()
    use = count >= min_pixels
    if not bool(use.any()):
        z = pred.sum() * 0.0
        return z, z
    pred, target, m, count = pred[use], target[use], m[use], count[use]
    mf = m.float()
    res = (_normalise(pred, m, count) - _normalise(target, m, count)) * mf
    ssi = (res.abs().flatten(1).sum(1) / count).mean()
    grad = 0.0
    for k in range(scales):
        step = 2 ** k
        r, mk = res[..., ::step, ::step], mf[..., ::step, ::step]
        gx = ((r[..., 1:] - r[..., :-1]).abs() * mk[..., 1:] * mk[..., :-1]).flatten(1).sum(1)
        gy = ((r[..., 1:, :] - r[..., :-1, :]).abs() * mk[..., 1:, :] * mk[..., :-1, :]).flatten(1).sum(1)
        grad = grad + (gx + gy) / mk.flatten(1).sum(1).clamp_min(1.0)
    return ssi, grad.mean()


def normal_loss(pred, gt, nvalid):
    cos = (pred * gt).sum(1, keepdim=True).clamp(-1, 1)
    return ((1 - cos) * nvalid).sum() / nvalid.sum().clamp_min(1.0)


def mask_loss(logits, target, has_mask):
    w = has_mask.view(-1, 1, 1, 1)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    bce = (bce * w).sum() / (w.sum().clamp_min(1.0) * logits[0].numel())
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    dice = (dice * w.view(-1)).sum() / w.sum().clamp_min(1.0)
    return bce + dice


def compute_losses(outputs, batch, weights):
    inv_depth, normals, mask = (o.float() for o in outputs)
    ssi, grad = ssi_loss(inv_depth, batch["inv"], batch["valid"])
    parts = {
        "ssi": ssi, "grad": grad,
        "normal": normal_loss(normals, batch["normal"], batch["nvalid"]),
        "mask": mask_loss(mask, batch["mask"], batch["has_mask"]),
    }
    total = sum(weights[k] * v for k, v in parts.items())
    return total, parts


# --------------------------------------------------------------------------- training
def lr_factor(step, progress, warmup, floor=0.02):
    """Linear warm-up over the first ``warmup`` steps, then a cosine from 1 to ``floor``
    as ``progress`` (0..1, by steps or by time) runs out."""
    if step < warmup:
        return (step + 1) / warmup
    q = min(1.0, max(0.0, progress))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * q))


def save_checkpoint(path, **state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder of .npz samples (searched recursively)")
    ap.add_argument("--out", default="runs/depth", help="checkpoint / log folder")
    ap.add_argument("--steps", type=int, default=40000)
    ap.add_argument("--minutes", type=float, default=0,
                    help="time budget: stop after this many minutes (the learning rate decays "
                         "over whichever of steps and time runs out first)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, nargs=2, default=(288, 384), metavar=("H", "W"),
                    help="training crop (multiples of 32)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--scale-max", type=float, default=1.6,
                    help="random up-scaling of the samples before cropping, up to this factor "
                         "(inference runs at 384 px, twice the 192 px renders)")
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    ap.add_argument("--w-ssi", type=float, default=1.0)
    ap.add_argument("--w-grad", type=float, default=0.5)
    ap.add_argument("--w-normal", type=float, default=0.5)
    ap.add_argument("--w-mask", type=float, default=0.25)
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    ap.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                    help="bfloat16 autocast on CUDA (ignored on CPU)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--val", type=int, default=0, help="hold out this many samples (the last ones)")
    ap.add_argument("--val-every", type=int, default=1000)
    ap.add_argument("--save-every", type=int, default=1000)
    ap.add_argument("--keep-every", type=int, default=0, help="also keep step_N.pt every N steps")
    ap.add_argument("--resume", nargs="?", const="auto", default=None,
                    help="checkpoint to resume from (alone: OUT/last.pt, if it exists)")
    ap.add_argument("--new-schedule", action="store_true",
                    help="with --resume: a fresh cosine from --lr, from the resumed step to --steps "
                         "(a second, gentler stage; a time budget always starts a fresh one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sky-far", action="store_true",
                    help="supervise sky / beyond --max-depth pixels as the farthest (else they are ignored)")
    args = ap.parse_args(argv)
    if args.crop[0] % 32 or args.crop[1] % 32:
        ap.error("--crop must be multiples of 32")
    return args


def _worker_init(_):
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True          # fixed crop size: pick the fastest kernels once
    os.makedirs(args.out, exist_ok=True)

    start, state = 0, None
    resume = args.resume
    if resume == "auto":
        resume = os.path.join(args.out, "last.pt")
        resume = resume if os.path.exists(resume) else None
    if resume:
        state = torch.load(resume, map_location="cpu", weights_only=False)
        config = state["config"]
        print(f"resuming from {resume} at step {state['step']}")
    else:
        config = {"width": args.width}

    model = build(config).to(device)
    weights = {"ssi": args.w_ssi, "grad": args.w_grad, "normal": args.w_normal, "mask": args.w_mask}
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        start = state["step"]
    print(f"model: {count_parameters(model) / 1e6:.3f} M parameters, device {device}")

    ds = NpzDepthDataset(args.data, crop=args.crop, seed=args.seed, sky_far=args.sky_far,
                         scale=(1.0, args.scale_max))
    val = None
    if args.val:
        # the last --val samples, centre-cropped and unaugmented, score every --val-every
        # steps; the best weights are kept as best.pt (a long run on little data overfits)
        val = NpzDepthDataset(args.data, crop=args.crop, augment=False, sky_far=args.sky_far)
        val.files, ds.files = ds.files[-args.val:], ds.files[:-args.val]
    print(f"data: {len(ds)} samples from {args.data}" + (f", {len(val)} held out" if val else ""))
    def make_loader():
        return DataLoader(ds, batch_size=args.batch, shuffle=True, drop_last=len(ds) >= args.batch,
                          num_workers=args.workers, pin_memory=device.type == "cuda",
                          worker_init_fn=_worker_init, persistent_workers=args.workers > 0)
    use_amp = args.amp and device.type == "cuda"

    def batches():
        # Each epoch picks up samples the generator wrote meanwhile, so rendering and
        # training can run side by side.
        epoch, loader = start, make_loader()
        while True:
            files = ds.scan()
            if not ds.packs and val is None and len(files) != len(ds.files):
                ds.files, loader = files, make_loader()
                print(f"data: {len(ds)} samples", flush=True)
            ds.epoch = epoch
            yield from loader
            epoch += 1

    log_path = os.path.join(args.out, "log.jsonl")
    meta = {"config": config, "args": vars(args)}

    def checkpoint(step):
        save_checkpoint(os.path.join(args.out, "last.pt"), model=model.state_dict(), optim=opt.state_dict(),
                        step=step, **meta)
        # the weights alone (a third of last.pt: no optimiser state), what export.py needs
        save_checkpoint(os.path.join(args.out, "model.pt"), model=model.state_dict(), step=step, **meta)
        if args.keep_every and step % args.keep_every == 0:
            save_checkpoint(os.path.join(args.out, f"step_{step}.pt"), model=model.state_dict(), step=step, **meta)

    best = float("inf")

    def validate(step):
        nonlocal best
        model.eval()
        loader = DataLoader(val, batch_size=args.batch, num_workers=min(2, args.workers))
        tot, n = 0.0, 0
        with torch.no_grad():
            for b in loader:
                b = {k: v.to(device) for k, v in b.items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    outs = model(b["rgb"])
                ssi, _ = ssi_loss(outs[0].float(), b["inv"], b["valid"])
                tot, n = tot + float(ssi) * len(b["rgb"]), n + len(b["rgb"])
        model.train()
        score = tot / max(n, 1)
        mark = ""
        if score < best:
            best, mark = score, " (best)"
            save_checkpoint(os.path.join(args.out, "best.pt"), model=model.state_dict(), step=step,
                            val_ssi=score, **meta)
        print(f"step {step} val_ssi {score:.4f}{mark}", flush=True)
        with open(log_path, "a") as f:
            f.write(json.dumps({"step": step, "val_ssi": score}) + "\n")

    model.train()
    step, t0 = start, time.time()
    began = time.time()
    budget = args.minutes * 60.0
    base_lrs = [args.lr] * len(opt.param_groups)
    acc, nacc = {}, 0
    last_save = time.time()
    it = batches()
    while step < args.steps:
        first = start if args.new_schedule else args.warmup
        progress = (step - first) / max(1, args.steps - first)
        if budget:
            elapsed = time.time() - began
            if elapsed >= budget:
                break
            # by time or by steps, whichever is further: the cosine decay always ends
            progress = max(progress, elapsed / budget)
        for g, lr0 in zip(opt.param_groups, base_lrs):
            g["lr"] = lr0 * lr_factor(step, progress, args.warmup)
        batch = {k: v.to(device, non_blocking=True) for k, v in next(it).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            outputs = model(batch["rgb"])
        total, parts = compute_losses(outputs, batch, weights)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        for k, v in {"total": total, **parts}.items():          # summed on the device: no sync
            acc[k] = acc.get(k, 0.0) + v.detach()
        nacc += 1
        if step % args.log_every == 0 or step == args.steps:
            rec = {"step": step, "lr": opt.param_groups[0]["lr"], **{k: float(v) / nacc for k, v in acc.items()},
                   "s_per_step": (time.time() - t0) / nacc}
            print(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in rec.items()),
                  flush=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            acc, nacc, t0 = {}, 0, time.time()
        if val is not None and step % args.val_every == 0:
            validate(step)
        if step % args.save_every == 0 or (budget and time.time() - last_save > 120):
            checkpoint(step)
            last_save = time.time()
    checkpoint(step)
    if val is not None:
        validate(step)
    print(f"saved {os.path.join(args.out, 'last.pt')} and model.pt at step {step}")


if __name__ == "__main__":
    main()
