"""Export a depth-network checkpoint to ONNX for ``photo3d.inference.depth.net``.

checkpoint (train.py's ``last.pt``) -> ONNX (opset 13, BatchNorm folded into the
convolutions, 1x3xHxW input named ``rgb`` whose height and width are symbolic: photo3d
runs it at any multiple of 32, and ONNX Runtime refuses sizes other than fixed ones) ->
checked with ONNX Runtime (CPU, what photo3d runs it with) against PyTorch on a random
image at the export size and at a second size.

``--fp16`` (default) stores the weights as float16 initialisers followed by Cast-to-
float nodes: the graph still computes in float32 and the file is half the size (its
parity check against the float32 PyTorch model uses the looser ``--tol-fp16``).
``--no-fp16`` writes plain float32 weights (7.8 MB at width 1.0).

    python tools/train_depth/export.py runs/depth/last.pt --out models/photo3d_depth.onnx
    python tools/train_depth/export.py --dynamic-size models/photo3d_depth.onnx   # an older, fixed-size export
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import OUTPUT_NAMES, build, count_parameters  # noqa: E402


def load_model(ckpt_path: str):
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = build(state.get("config"))
    model.load_state_dict(state["model"])
    return model.eval(), state


def export_onnx(model, path, size=(288, 384), opset=13):
    dummy = torch.rand(1, 3, *size)
    torch.onnx.export(model, dummy, path, input_names=["rgb"], output_names=list(OUTPUT_NAMES),
                      opset_version=opset, do_constant_folding=True, dynamo=False)


def to_fp16_weights(src, dst, min_size=16):
    """Float32 initialisers (> min_size elements) -> float16 + Cast(to=FLOAT) nodes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = onnx.load(src)
    inits, casts = [], []
    for init in g.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > min_size:
            h = numpy_helper.from_array(a.astype(np.float16), init.name + "__fp16")
            inits.append(h)
            casts.append(helper.make_node("Cast", [h.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            inits.append(init)
    del g.graph.initializer[:]
    g.graph.initializer.extend(inits)
    nodes = list(g.graph.node)
    del g.graph.node[:]
    g.graph.node.extend(casts + nodes)
    onnx.checker.check_model(g)
    onnx.save(g, dst)


def dynamic_size(src, dst):
    """The graph's inputs and outputs with symbolic height and width (dims 2 and 3).

    Only the declared shapes change: the network itself is size-independent (its Resize
    nodes take scales, and there is no Reshape). OpenCV's DNN importer cannot read such a
    file (it infers every shape at import); ONNX Runtime can."""
    import onnx

    g = onnx.load(src)
    for v in [*g.graph.input, *g.graph.output]:
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4:
            for d, name in ((dims[2], "height"), (dims[3], "width")):
                d.ClearField("dim_value")
                d.dim_param = name
    del g.graph.value_info[:]          # inferred intermediate shapes would pin the old size
    onnx.checker.check_model(g)
    onnx.save(g, dst)


def op_histogram(path):
    try:
        import onnx
    except ImportError:
        return {}
    from collections import Counter
    return dict(Counter(n.op_type for n in onnx.load(path).graph.node))


def ort_session(onnx_path, threads=2):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])


def ort_forward(sess, x):
    return sess.run(list(OUTPUT_NAMES), {"rgb": x})


def verify(model, onnx_path, sizes, tol):
    """Max abs difference per output between ONNX Runtime and torch, for each size."""
    sess = ort_session(onnx_path)
    worst = {}
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * 1000 + w))
        with torch.no_grad():
            ref = [r.numpy() for r in model(x)]
        outs = ort_forward(sess, x.numpy())
        for name, o, r in zip(OUTPUT_NAMES, outs, ref):
            if o.shape != r.shape:
                raise SystemExit(f"{name} at {h}x{w}: onnxruntime shape {o.shape} != torch {r.shape}")
            err = float(np.abs(o - r).max() / max(1.0, float(np.abs(r).max())))
            worst[name] = max(worst.get(name, 0.0), err)
            print(f"  {h}x{w} {name:9s} max |onnxruntime - torch| (relative to max(1, |torch|)) = {err:.2e}")
    bad = {k: v for k, v in worst.items() if v > tol}
    if bad:
        raise SystemExit(f"parity check FAILED (tol {tol:g}): {bad}")
    return worst


def time_ort(onnx_path, size=(288, 384), runs=5, threads=2):
    sess = ort_session(onnx_path, threads)
    x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    ort_forward(sess, x)                                 # warm-up (allocations)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        ort_forward(sess, x)
        times.append(time.perf_counter() - t)
    return min(times), times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?")
    ap.add_argument("--dynamic-size", metavar="ONNX",
                    help="only make an exported model's height and width symbolic, in place")
    ap.add_argument("--out", default="photo3d_depth.onnx")
    ap.add_argument("--size", type=int, nargs=2, default=(288, 384), metavar=("H", "W"))
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=True,
                    help="store the weights as float16 (needs the onnx package)")
    ap.add_argument("--tol", type=float, default=1e-3, help="parity tolerance, fp32 weights")
    ap.add_argument("--tol-fp16", type=float, default=2e-2, help="parity tolerance, fp16 weights")
    ap.add_argument("--max-mb", type=float, default=8.0)
    ap.add_argument("--time", action=argparse.BooleanOptionalAction, default=True,
                    help="time ONNX Runtime (CPU, 2 threads) at --size (min of 5)")
    args = ap.parse_args(argv)
    if args.dynamic_size:
        dynamic_size(args.dynamic_size, args.dynamic_size)
        print(f"wrote {args.dynamic_size} (height and width symbolic)")
        return
    if not args.checkpoint:
        ap.error("give a checkpoint (or --dynamic-size ONNX)")
    torch.set_num_threads(2)
    if args.size[0] % 32 or args.size[1] % 32:
        ap.error("--size must be multiples of 32")

    model, state = load_model(args.checkpoint)
    print(f"{args.checkpoint}: step {state.get('step')}, {count_parameters(model) / 1e6:.3f} M parameters")
    h, w = args.size
    sizes = [(h, w), (w, h) if w != h else (h + 32, w)]     # a second size: the size is symbolic
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = os.path.join(tmp, "fp32.onnx")
        export_onnx(model, fp32, args.size, args.opset)
        dynamic_size(fp32, fp32)
        print("ops:", op_histogram(fp32))
        print(f"fp32 ONNX: {os.path.getsize(fp32) / 1e6:.2f} MB; onnxruntime parity:")
        verify(model, fp32, sizes, args.tol)
        final = fp32
        if args.fp16:
            fp16 = os.path.join(tmp, "fp16.onnx")
            to_fp16_weights(fp32, fp16)
            print(f"fp16-weight ONNX: {os.path.getsize(fp16) / 1e6:.2f} MB; onnxruntime parity:")
            verify(model, fp16, sizes, args.tol_fp16)
            final = fp16
        mb = os.path.getsize(final) / 1e6
        if mb > args.max_mb:
            raise SystemExit(f"exported model is {mb:.2f} MB > {args.max_mb} MB")
        with open(final, "rb") as src, open(args.out + ".tmp", "wb") as dst:
            dst.write(src.read())
        os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out} ({mb:.2f} MB)")
    if args.time:
        best, times = time_ort(args.out, args.size)
        print(f"onnxruntime {h}x{w}: min {best * 1000:.0f} ms of {', '.join(f'{t * 1000:.0f}' for t in times)}")


if __name__ == "__main__":
    main()
