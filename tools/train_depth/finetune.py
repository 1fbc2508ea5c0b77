"""Fine-tune the shipped depth network (models/photo3d_depth.onnx) instead of training from scratch.

The ONNX file is the only copy of the shipped weights (checkpoints are not committed), with
BatchNorm folded into the convolutions. ``warm_start`` puts them back into model.py's
DepthNet: each Conv of the graph, in execution order, into the module that runs at that
point, and every BatchNorm made an identity plus the folded bias. It checks the result
against ONNX Runtime (the largest difference is about 1e-6). The BatchNorms stay in eval
mode while fine-tuning: batch statistics would undo the warm start at the first step.

    .venv-train/bin/python tools/train_depth/finetune.py build/depth-pack --minutes 24 --out runs/ft.pt
    .venv-train/bin/python tools/train_depth/export.py runs/ft.pt --out runs/ft.onnx

Same losses and augmentation as train.py; AdamW, cosine from ``--lr`` over the time box.
On the 2-core development CPU, batch 16 takes 0.7 s a step (docs/real_photos.md has what 24
minutes did).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402
from model import build  # noqa: E402

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "models",
                       "photo3d_depth.onnx")


def warm_start(onnx_path: str = SHIPPED):
    """DepthNet with the ONNX file's weights (BatchNorm as identity + bias), checked against ONNX Runtime."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(onnx_path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    cast = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Cast"}     # fp16 weights

    def weight(name):
        while name not in inits and name in cast:
            name = cast[name]
        return inits[name].astype(np.float32)

    convs = [n for n in graph.node if n.op_type == "Conv"]
    model = build().eval()
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.rand(1, 3, 128, 192))
    for h in hooks:
        h.remove()
    if len(order) != len(convs):
        raise SystemExit(f"{onnx_path}: {len(convs)} convolutions, the model runs {len(order)}")
    bn_of = {}
    for seq in model.modules():
        if isinstance(seq, torch.nn.Sequential):
            kids = list(seq.children())
            bn_of.update({a: b for a, b in zip(kids, kids[1:])
                          if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.BatchNorm2d)})
    for conv, node in zip(order, convs):
        w = weight(node.input[1])
        b = weight(node.input[2]) if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
        if tuple(conv.weight.shape) != w.shape:
            raise SystemExit(f"{onnx_path}: {node.name} is {w.shape}, the model's conv {tuple(conv.weight.shape)}")
        conv.weight.data = torch.from_numpy(w)
        bn = bn_of.get(conv)
        if bn is None:
            conv.bias.data = torch.from_numpy(b)
        else:
            bn.weight.data.fill_(1.0)
            bn.bias.data = torch.from_numpy(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
    try:
        import onnxruntime as ort
    except ImportError:                  # a GPU machine with PyTorch and onnx only
        print("warm start: onnxruntime missing, not checked against it", flush=True)
        return model
    x = np.random.default_rng(0).random((1, 3, 128, 192)).astype(np.float32)
    ref = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"]).run(None, {"rgb": x})
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    gap = max(float(np.abs(r - o.numpy()).max()) for r, o in zip(ref, out))
    if gap > 1e-3:
        raise SystemExit(f"{onnx_path}: the warm-started model differs from ONNX Runtime by {gap}")
    print(f"warm start from {onnx_path}: largest difference from ONNX Runtime {gap:.1e}", flush=True)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="pack.py shards or generator .npz files")
    ap.add_argument("--out", required=True, help="checkpoint to write (export.py reads it)")
    ap.add_argument("--onnx", default=SHIPPED, help="the weights to start from")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = train.pick_device(a.device)
    model = warm_start(a.onnx).to(device)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    ds = train.NpzDepthDataset(a.data, crop=(128, 192), sky_far=True, scale=(1.0, 2.0))
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, drop_last=True, num_workers=1,
                                         worker_init_fn=train._worker_init)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    d = train.parse_args(["--data", a.data])          # train.py's loss weights: one home
    weights = {"ssi": d.w_ssi, "grad": d.w_grad, "normal": d.w_normal, "mask": d.w_mask}
    t0, step, ema = time.time(), 0, None
    while time.time() - t0 < a.minutes * 60:
        for batch in loader:
            progress = (time.time() - t0) / (a.minutes * 60)
            if progress >= 1:
                break
            for g in opt.param_groups:
                g["lr"] = a.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
            batch = {k: v.to(device) for k, v in batch.items()}
            total, parts = train.compute_losses(model(batch["rgb"]), batch, weights)
            opt.zero_grad()
            total.backward()
            opt.step()
            step += 1
            ema = total.item() if ema is None else 0.98 * ema + 0.02 * total.item()
            if step % 50 == 0:
                print(step, f"loss {ema:.4f}", {k: round(v.item(), 3) for k, v in parts.items()},
                      f"{time.time() - t0:.0f} s", flush=True)
    model.eval()
    train.save_checkpoint(a.out, model=model.cpu().state_dict(), config=model.config)
    print(f"{step} steps; wrote {a.out}")


if __name__ == "__main__":
    main()
