"""The Hugging Face Hub and its cache, faked offline for the download tests: ``FakeHub`` serves
repositories from memory through stand-ins for ``HfApi.model_info`` and ``hf_hub_download``
that write huggingface_hub's real cache layout and draw its progress bars; ``lay_out_cache``
writes a finished download (blobs, snapshot links, refs/main and photo3d's completion
manifest) as if it had happened. Tiny random ONNX networks with the real exports' input and
output names stand in for the downloadable ONNX models (``tiny_*``)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import types

import numpy as np

SHA = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 8192
LFS_SUFFIXES = (".safetensors", ".onnx", ".onnx_data")


def repo_folder(cache, repo: str) -> str:
    return os.path.join(str(cache), "models--" + repo.replace("/", "--"))


def _link(blob: str, link: str):
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.lexists(link):
        try:
            os.symlink(os.path.relpath(blob, os.path.dirname(link)), link)
        except OSError:           # no symlinks (Windows without developer mode): the hub copies
            import shutil
            shutil.copyfile(blob, link)


def lay_out_cache(cache, repo: str, files: dict[str, bytes], manifest: str | None, sha: str = SHA) -> str:
    """A download of ``files`` from ``repo`` as huggingface_hub leaves it in ``cache``, marked
    complete by photo3d's ``manifest`` (None: as another tool leaves it, no manifest).
    Returns the snapshot folder."""
    base = repo_folder(cache, repo)
    snap = os.path.join(base, "snapshots", sha)
    for name, data in files.items():
        blob = os.path.join(base, "blobs", hashlib.sha256(data).hexdigest())
        os.makedirs(os.path.dirname(blob), exist_ok=True)
        with open(blob, "wb") as f:
            f.write(data)
        _link(blob, os.path.join(snap, name))
    os.makedirs(os.path.join(base, "refs"), exist_ok=True)
    with open(os.path.join(base, "refs", "main"), "w") as f:
        f.write(sha)
    if manifest:
        with open(os.path.join(base, manifest), "w") as f:
            json.dump({"repo": repo, "sha": sha, "files": {n: len(d) for n, d in files.items()}}, f)
    return snap


class FakeHub:
    """Stands in for the Hub: ``model_info`` and ``hf_hub_download`` over ``repos`` (repository
    -> {file name: bytes}), writing the real cache layout; ``fail`` = (file, byte offset,
    exception) breaks one download; ``gate`` (an Event) holds the first weights file after
    its first chunk; ``downloads`` lists what was fetched, ``bars`` (file, resumed at)."""

    def __init__(self, repos: dict[str, dict[str, bytes]], cache):
        self.repos, self.cache, self.fail, self.bars, self.gate = repos, str(cache), None, [], None
        self.downloads = []
        self.served: dict[str, dict[str, bytes]] = {}   # bytes served instead of those the checksums are of

    def model_info(self, repo_id, files_metadata=False, **kw):
        import huggingface_hub
        assert repo_id in self.repos and files_metadata
        siblings = []
        for name, data in sorted(self.repos[repo_id].items()):
            if name.endswith(LFS_SUFFIXES):
                lfs = huggingface_hub.hf_api.BlobLfsInfo(size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                                                          pointer_size=130)
                siblings.append(types.SimpleNamespace(rfilename=name, size=len(data), blob_id="x", lfs=lfs))
            else:
                blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                siblings.append(types.SimpleNamespace(rfilename=name, size=len(data), blob_id=blob, lfs=None))
        return types.SimpleNamespace(sha=SHA, siblings=siblings)

    def hf_hub_download(self, repo_id, filename, revision=None, cache_dir=None, **kw):
        """What huggingface_hub does: blob.incomplete (appended to, so resumable), a progress
        bar through file_download._get_progress_bar_context, rename, snapshot symlink; a blob
        already there is not fetched again."""
        from huggingface_hub import file_download
        assert repo_id in self.repos and revision == SHA and cache_dir == self.cache
        self.downloads.append(filename)
        base = repo_folder(cache_dir, repo_id)
        data = self.served.get(repo_id, {}).get(filename, self.repos[repo_id][filename])
        blob = os.path.join(base, "blobs", hashlib.sha256(data).hexdigest())
        link = os.path.join(base, "snapshots", revision, filename)
        os.makedirs(os.path.dirname(blob), exist_ok=True)
        if os.path.lexists(link) and not os.path.exists(link):
            os.remove(link)                                  # a dangling link: its blob was removed
        if not os.path.exists(link) and not os.path.exists(blob):
            part = blob + ".incomplete"
            with open(part, "ab") as f:
                resume = f.tell()
                with file_download._get_progress_bar_context(
                        desc=filename, log_level=logging.INFO, total=len(data), initial=resume,
                        name="huggingface_hub.http_get") as bar:
                    self.bars.append((filename, resume))
                    for start in range(resume, len(data), CHUNK):
                        if self.fail and self.fail[0] == filename and start >= self.fail[1]:
                            raise self.fail[2]
                        chunk = data[start: start + CHUNK]
                        f.write(chunk)
                        f.flush()
                        bar.update(len(chunk))
                        if self.gate is not None and filename.endswith(LFS_SUFFIXES) and start == 0:
                            self.gate.wait(60)      # the test looks at the job half-way
            os.replace(part, blob)
        _link(blob, link)
        return link


def install(monkeypatch, fake: FakeHub):
    """Route huggingface_hub's metadata call and downloads to ``fake``; nothing reaches the network."""
    import huggingface_hub
    monkeypatch.setenv("PHOTO3D_MODEL_DIR", fake.cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")          # belt and braces
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info",
                        lambda self, repo_id, **kw: fake.model_info(repo_id, **kw))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.hf_hub_download)


# --- tiny ONNX networks with the real exports' interfaces -------------------------------------------

def _model(nodes, inputs, outputs, inits):
    from onnx import helper
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _conv_weights(cin: int, cout: int, mean: bool, seed: int):
    if mean:     # each output channel the mean of the input channels (+3: nothing for the relu to cut)
        return np.full((cout, cin, 1, 1), 1.0 / cin, np.float32), np.full(cout, 3.0, np.float32)
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.3, (cout, cin, 3, 3)).astype(np.float32),
            rng.normal(0, 0.1, cout).astype(np.float32))


def _conv_net(x: str, out: str, cin: int, cout: int, mean: bool, positive: bool, seed: int = 0,
              half: bool = False):
    """Nodes and initialisers of conv -> relu -> conv [-> softplus] from ``x`` to ``out``
    (fp16 weights between casts when ``half``, as fp16 exports with float32 inputs are)."""
    from onnx import TensorProto, helper, numpy_helper
    w1, b1 = _conv_weights(cin, 4, mean, seed)
    w2, b2 = _conv_weights(4, cout, mean, seed + 1)
    dt = np.float16 if half else np.float32
    inits = [numpy_helper.from_array(a.astype(dt), n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes, src = [], x
    if half:
        nodes.append(helper.make_node("Cast", [x], ["x16"], to=TensorProto.FLOAT16))
        src = "x16"
    pad1, pad2 = (w1.shape[-1] // 2,) * 4, (w2.shape[-1] // 2,) * 4
    nodes += [helper.make_node("Conv", [src, "w1", "b1"], ["c1"], pads=list(pad1)),
              helper.make_node("Relu", ["c1"], ["r1"]),
              helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=list(pad2))]
    last = "c2"
    if positive:
        nodes.append(helper.make_node("Softplus", ["c2"], ["sp"]))
        last = "sp"
    if half:
        nodes.append(helper.make_node("Cast", [last], ["c32"], to=TensorProto.FLOAT))
        last = "c32"
    nodes.append(helper.make_node("Identity", [last], [out]))
    return nodes, inits


def _bytes(model, external: str | None = None) -> dict[str, bytes]:
    """{"": the model's bytes[, external: its weights]} (external data written with onnx.save)."""
    import tempfile

    import onnx
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.onnx")
        if external:
            onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                      location=external, size_threshold=0)
        else:
            onnx.save(model, path)
        out = {"": open(path, "rb").read()}
        if external:
            out[external] = open(os.path.join(d, external), "rb").read()
    return out


def tiny_depth_anything_v2(mean: bool = False, half: bool = False, half_io: bool = False) -> bytes:
    """``pixel_values`` (batch, 3, H, W) -> ``predicted_depth`` (batch, H, W), positive: the
    interface of onnx-community/depth-anything-v2-*. ``mean``: the output follows the image's
    brightness (a disparity: bright = near); ``half``: fp16 weights between float32 inputs and
    outputs; ``half_io``: float16 input and output too."""
    from onnx import TensorProto, helper
    io_type = TensorProto.FLOAT16 if half_io else TensorProto.FLOAT
    nodes, inits = _conv_net("x", "d4", 3, 1, mean, positive=True, half=half)
    if half_io:    # float16 in and out, float32 inside (what matters here is the interface)
        nodes = [helper.make_node("Cast", ["pixel_values"], ["x"], to=TensorProto.FLOAT), *nodes,
                 helper.make_node("Squeeze", ["d4", "axis1"], ["d3"]),
                 helper.make_node("Cast", ["d3"], ["predicted_depth"], to=TensorProto.FLOAT16)]
    else:
        nodes = [helper.make_node("Identity", ["pixel_values"], ["x"]), *nodes,
                 helper.make_node("Squeeze", ["d4", "axis1"], ["predicted_depth"])]
    inits.append(helper.make_tensor("axis1", TensorProto.INT64, [1], [1]))
    vi = helper.make_tensor_value_info
    model = _model(nodes, [vi("pixel_values", io_type, ["batch_size", 3, "height", "width"])],
                   [vi("predicted_depth", io_type, ["batch_size", "height", "width"])], inits)
    return _bytes(model)[""]


def quantized(model_bytes: bytes) -> bytes:
    """ONNX Runtime's dynamic 8-bit quantisation of a model (what transformers.js' q8 files are)."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.onnx"), os.path.join(d, "out.onnx")
        open(src, "wb").write(model_bytes)
        quantize_dynamic(src, dst, weight_type=QuantType.QUInt8)
        return open(dst, "rb").read()


def tiny_depth_anything_v3(mean: bool = False) -> dict[str, bytes]:
    """``pixel_values`` (batch, views, 3, H, W) -> ``predicted_depth`` (batch, 1, H, W), positive
    depth, its weights in ``model.onnx_data``: onnx-community/depth-anything-v3-*'s interface.
    Returns {"model.onnx": ..., "model.onnx_data": ...}."""
    from onnx import TensorProto, helper
    nodes, inits = _conv_net("x", "predicted_depth", 3, 1, mean, positive=True)
    nodes.insert(0, helper.make_node("Squeeze", ["pixel_values", "axis1"], ["x"]))
    inits.append(helper.make_tensor("axis1", TensorProto.INT64, [1], [1]))
    model = _model(nodes, [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                                                         ["batch_size", "views", 3, "height", "width"])],
                   [helper.make_tensor_value_info("predicted_depth", TensorProto.FLOAT,
                                                  ["batch_size", 1, "height", "width"])], inits)
    parts = _bytes(model, external="model.onnx_data")
    return {"model.onnx": parts[""], "model.onnx_data": parts["model.onnx_data"]}


def tiny_moge(scale_name: str = "metric_scale") -> bytes:
    """``image`` (batch, 3, H, W) in [0, 1] and ``num_tokens`` (int64 scalar) -> ``points``
    (batch, H, W, 3) with z about 2, ``normal`` (batch, H, W, 3), ``mask`` (batch, H, W) nearly
    all valid and the metric scale (batch,) = 1.5: MoGe-2's ONNX interface."""
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits = _conv_net("image", "feat", 3, 3, mean=False, positive=False)
    inits += [numpy_helper.from_array(np.array([0.0, 0.0, 2.0], np.float32), "z_offset"),
              numpy_helper.from_array(np.array(0.1, np.float32), "small"),
              numpy_helper.from_array(np.array(1.5, np.float32), "scale_value"),
              numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    nodes += [
        helper.make_node("Transpose", ["feat"], ["feat_hwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Mul", ["feat_hwc", "small"], ["xyz_small"]),
        helper.make_node("Add", ["xyz_small", "z_offset"], ["points"]),
        helper.make_node("Identity", ["feat_hwc"], ["normal"]),
        helper.make_node("ReduceMean", ["feat_hwc"], ["m4"], axes=[3], keepdims=0),
        helper.make_node("Mul", ["m4", "zero"], ["m0"]),
        helper.make_node("Add", ["m0", "scale_value"], ["m_logit"]),   # sigmoid(1.5) > 0.5: all valid
        helper.make_node("Sigmoid", ["m_logit"], ["mask"]),
        helper.make_node("ReduceMean", ["image"], ["per_image"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Cast", ["num_tokens"], ["tokens_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["tokens_f", "zero"], ["tokens_0"]),
        helper.make_node("Mul", ["per_image", "zero"], ["image_0"]),
        helper.make_node("Add", ["image_0", "tokens_0"], ["nothing"]),
        helper.make_node("Add", ["nothing", "scale_value"], [scale_name]),
    ]
    vi, f32 = helper.make_tensor_value_info, TensorProto.FLOAT
    model = _model(nodes, [vi("image", f32, ["batch_size", 3, "height", "width"]),
                           vi("num_tokens", TensorProto.INT64, [])],
                   [vi("points", f32, ["batch_size", "height", "width", 3]),
                    vi("normal", f32, ["batch_size", "height", "width", 3]),
                    vi("mask", f32, ["batch_size", "height", "width"]), vi(scale_name, f32, ["batch_size"])], inits)
    return _bytes(model)[""]


DPT_CONFIG = json.dumps({"model_type": "depth_anything"}).encode()
DPT_PREPROCESSOR = json.dumps({
    "do_normalize": True, "do_pad": False, "do_rescale": True, "do_resize": True, "ensure_multiple_of": 14,
    "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "DPTImageProcessor",
    "image_std": [0.229, 0.224, 0.225], "keep_aspect_ratio": True, "resample": 3,
    "rescale_factor": 0.00392156862745098, "size": {"height": 518, "width": 518}, "size_divisor": None},
    indent=2).encode()     # onnx-community/depth-anything-v2-base's preprocessor_config.json, as published
