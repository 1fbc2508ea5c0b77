"""The learned depth network's runtime (ONNX through the engine's ONNX Runtime, no torch):
loading errors, shapes and ranges of what it returns, the cache and thread safety.

The tiny ONNX models are written byte by byte here (ONNX files are protobuf messages),
so neither torch nor the ``onnx`` package is needed; when ``onnx`` happens to be
installed, the bytes are also checked with its checker."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from photo3d.inference.depth import net as depth_net
from photo3d.inference.errors import InputError


# --------------------------------------------------------------------------- a tiny protobuf / ONNX writer
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, v: int) -> bytes:
    return _varint(field << 3) + _varint(v)


def _bytes(field: int, v) -> bytes:
    v = v.encode() if isinstance(v, str) else bytes(v)
    return _varint(field << 3 | 2) + _varint(len(v)) + v


def _tensor(name: str, arr: np.ndarray) -> bytes:            # TensorProto, FLOAT
    arr = np.asarray(arr, "<f4")
    return b"".join(_int(1, d) for d in arr.shape) + _int(2, 1) + _bytes(8, name) + _bytes(9, arr.tobytes())


def _value_info(name: str, shape) -> bytes:                  # ValueInfoProto, FLOAT tensor
    # a dimension is a number (dim_value) or a name (dim_param: any size)
    dims = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in shape)
    tensor_type = _int(1, 1) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _ints_attr(name: str, values) -> bytes:                  # AttributeProto, INTS
    return _bytes(1, name) + b"".join(_int(8, v) for v in values) + _int(20, 7)


def _node(op: str, inputs, outputs, name: str, *attrs: bytes) -> bytes:     # NodeProto
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(3, name) + _bytes(4, op) + b"".join(_bytes(5, a) for a in attrs))


K1 = _ints_attr("kernel_shape", (1, 1))


def tiny_model(outputs=("inv_depth", "normals", "mask"), size=("H", "W")) -> bytes:
    """1x1-conv model: inverse depth = softplus(4 * red), normals = rgb - 0.5 with a
    forward bias, subject logits = 8 * (green - 0.5). Output names as given (by order);
    height and width symbolic unless ``size`` gives numbers."""
    h, w = size
    nodes, inits, outs = [], [], []
    inits.append(_tensor("wd", np.array([4, 0, 0], np.float32).reshape(1, 3, 1, 1)))
    inits.append(_tensor("bd", np.zeros(1)))
    nodes.append(_node("Conv", ["rgb", "wd", "bd"], ["d0"], "conv_d", K1))
    nodes.append(_node("Softplus", ["d0"], [outputs[0]], "softplus"))
    outs.append(_value_info(outputs[0], (1, 1, h, w)))
    if len(outputs) > 1:
        inits.append(_tensor("wn", np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)))
        inits.append(_tensor("bn", np.array([-0.5, -0.5, -1.0])))
        nodes.append(_node("Conv", ["rgb", "wn", "bn"], [outputs[1]], "conv_n", K1))
        outs.append(_value_info(outputs[1], (1, 3, h, w)))
    if len(outputs) > 2:
        inits.append(_tensor("wm", np.array([0, 8, 0], np.float32).reshape(1, 3, 1, 1)))
        inits.append(_tensor("bm", np.array([-4.0])))
        nodes.append(_node("Conv", ["rgb", "wm", "bm"], [outputs[2]], "conv_m", K1))
        outs.append(_value_info(outputs[2], (1, 1, h, w)))
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "tiny")
             + b"".join(_bytes(5, t) for t in inits)
             + _bytes(11, _value_info("rgb", (1, 3, h, w))) + b"".join(_bytes(12, o) for o in outs))
    opset = _bytes(1, "") + _int(2, 13)
    model = _int(1, 7) + _bytes(2, "photo3d-test") + _bytes(7, graph) + _bytes(8, opset)
    try:
        import onnx
    except ImportError:
        pass
    else:
        onnx.checker.check_model(onnx.load_from_string(model))
    return model


@pytest.fixture
def model_path(tmp_path):
    p = tmp_path / "tiny.onnx"
    p.write_bytes(tiny_model())
    return str(p)


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((h, w, 3), dtype=np.float32)


# --------------------------------------------------------------------------- errors
def test_missing_weights_is_a_clear_input_error(tmp_path):
    missing = tmp_path / "nope" / "depth.onnx"
    with pytest.raises(InputError, match=r"^depth model weights not found: .*depth\.onnx"):
        depth_net.run(_photo(8, 8), str(missing))
    with pytest.raises(InputError, match="depth model weights not found"):
        depth_net.load(str(tmp_path))                        # a folder is not a weights file


@pytest.mark.parametrize("content", [b"", b"this is not an onnx model\n" * 10, os.urandom(4096),
                                     tiny_model()[:-40]])
def test_corrupt_weights_is_a_clear_input_error(tmp_path, content):
    p = tmp_path / "broken.onnx"
    p.write_bytes(content)
    with pytest.raises(InputError, match=r"^cannot load depth model .*broken\.onnx: \S"):
        depth_net.run(_photo(8, 8), str(p))


def test_a_fixed_size_model_says_how_to_free_it(tmp_path):
    p = tmp_path / "fixed.onnx"
    p.write_bytes(tiny_model(size=(32, 32)))
    assert depth_net.run(_photo(32, 32), str(p), long_side=32)[0].shape == (32, 32)    # its own size runs
    with pytest.raises(InputError, match=r"failed to run: .*fixed input size 32x32: make it symbolic with "
                                         r"tools/train_depth/export.py --dynamic-size"):
        depth_net.run(_photo(40, 30), str(p))


def test_bad_image_shape_is_an_input_error(model_path):
    with pytest.raises(InputError, match="RGB image"):
        depth_net.run(np.zeros((10, 10), np.float32), model_path)


# --------------------------------------------------------------------------- running
@pytest.mark.parametrize("hw", [(48, 64), (300, 200), (7, 5), (1080, 1920), (33, 400)])
def test_shapes_dtypes_and_ranges(model_path, hw):
    h, w = hw
    depth, subject, normals = depth_net.run(_photo(h, w), model_path)
    assert depth.shape == (h, w) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and (depth > 0).all()
    assert depth.min() >= depth_net.NEAR - 1e-4 and depth.max() <= depth_net.FAR + 1e-3
    assert subject.shape == (h, w) and subject.dtype == np.float32
    assert (subject >= 0).all() and (subject <= 1).all()
    assert normals.shape == (h, w, 3) and normals.dtype == np.float32
    assert np.allclose(np.linalg.norm(normals, axis=2), 1, atol=1e-4)


def test_more_inverse_depth_is_nearer(model_path):
    """The tiny model's inverse depth grows with red: a red ramp left to right comes
    nearer to the right; the robust range maps onto [near, far]."""
    h, w = 60, 90
    rgb = np.zeros((h, w, 3), np.float32)
    rgb[..., 0] = np.linspace(0, 1, w)[None]
    rgb[:, : w // 3, 1] = 1.0                                  # green on the left third: subject
    depth, subject, normals = depth_net.run(rgb, model_path, near=1.0, far=20.0)
    row = depth[h // 2]
    assert (np.diff(row) <= 1e-4).all() and row[0] > 5 * row[-1]
    assert depth.max() == pytest.approx(20.0, rel=1e-3) and depth.min() == pytest.approx(1.0, rel=1e-3)
    assert subject[:, : w // 3 - 3].min() > 0.9 and subject[:, w // 3 + 3:].max() < 0.1
    assert normals[..., 2].max() < 0                           # facing the camera (bias -1)


def test_depth_only_model_with_other_output_names(tmp_path):
    p = tmp_path / "depth_only.onnx"
    p.write_bytes(tiny_model(outputs=("out",)))
    depth, subject, normals = depth_net.run(_photo(40, 30), str(p))
    assert depth.shape == (40, 30) and (depth > 0).all()
    assert subject is None and normals is None


def test_unnamed_outputs_are_read_by_order(tmp_path):
    p = tmp_path / "renamed.onnx"
    p.write_bytes(tiny_model(outputs=("a", "b", "c")))
    depth, subject, normals = depth_net.run(_photo(40, 30), str(p))
    assert subject is not None and subject.shape == (40, 30)
    assert normals is not None and normals.shape == (40, 30, 3)


def test_model_input_size():
    assert depth_net.model_input_size(4000, 3000, 384) == ((384, 288), (384, 288))
    assert depth_net.model_input_size(1920, 1080, 384) == ((384, 216), (384, 224))
    assert depth_net.model_input_size(1080, 1920, 384) == ((216, 384), (224, 384))
    assert depth_net.model_input_size(4000, 3000) == ((320, 240), (320, 256))
    (rw, rh), (pw, ph) = depth_net.model_input_size(10, 1000, 384)
    assert (rw, rh) == (4, 384) and (pw, ph) == (32, 384)


def test_inverse_depth_to_z():
    inv = np.linspace(0.1, 5.0, 1000, dtype=np.float32).reshape(10, 100)
    z = depth_net.inverse_depth_to_z(inv, near=1, far=20)
    assert z.dtype == np.float32 and z.min() == pytest.approx(1) and z.max() == pytest.approx(20)
    assert (np.diff(z.ravel()) <= 0).all()                     # more inverse depth: nearer
    flat = depth_net.inverse_depth_to_z(np.full((4, 4), 3.0), near=1, far=16)
    assert np.allclose(flat, 4.0)
    nan = inv.copy()
    nan[0, :5] = np.nan
    assert np.isfinite(depth_net.inverse_depth_to_z(nan)).all()
    with pytest.raises(ValueError):
        depth_net.inverse_depth_to_z(inv, near=5, far=2)


# --------------------------------------------------------------------------- cache and threads
def test_cache_per_path_and_reload_on_change(tmp_path, model_path):
    a = depth_net.load(model_path)
    assert depth_net.load(model_path).session is a.session
    other = tmp_path / "other.onnx"
    other.write_bytes(tiny_model(outputs=("out",)))
    assert depth_net.load(str(other)).session is not a.session
    with open(model_path, "wb") as f:                            # replaced by another model
        f.write(tiny_model(outputs=("out",)))
    st = os.stat(model_path)
    os.utime(model_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    b = depth_net.load(model_path)
    assert b.session is not a.session and b.out_names == ["out"]


def test_the_engine_alone_keeps_the_loaded_net(model_path):
    """One home for loaded sessions: engine.release() frees the net's (no cache of its own
    holds it on), and the next run loads it again."""
    import gc
    import weakref

    from photo3d.inference import engine
    engine.release()
    depth_net.run(_photo(40, 60), model_path)
    session = weakref.ref(depth_net.load(model_path).session)
    assert [k for k in engine.loaded() if k.startswith("onnx:")]
    engine.release()
    gc.collect()
    assert session() is None and not engine.loaded()
    depth, _, _ = depth_net.run(_photo(40, 60), model_path)
    assert np.isfinite(depth).all() and len(engine.loaded()) == 1


def test_a_net_under_a_non_ascii_path_is_read_through_bytes(tmp_path, monkeypatch):
    """ONNX Runtime cannot open every non-ASCII path on Windows: such a file reaches it as bytes."""
    from photo3d.inference import engine
    ort = engine.onnxruntime()
    real, sources = ort.InferenceSession, []

    def spy(source, *a, **kw):
        sources.append(source)
        return real(source, *a, **kw)
    monkeypatch.setattr(ort, "InferenceSession", spy)
    p = tmp_path / "Tiefe \u00e9" / "netz \u00fc.onnx"
    p.parent.mkdir()
    p.write_bytes(tiny_model())
    depth, _, _ = depth_net.run(_photo(40, 60), str(p))
    assert np.isfinite(depth).all() and [type(s) for s in sources] == [bytes]
    engine.release()


def test_concurrent_runs_match_sequential(model_path):
    photos = [_photo(60 + 16 * i, 80 - 8 * i, seed=i) for i in range(6)]
    expected = [depth_net.run(p, model_path) for p in photos]
    results, errors = [None] * len(photos), []

    def work(i):
        try:
            for _ in range(3):
                results[i] = depth_net.run(photos[i], model_path)
        except Exception as e:                                  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(photos))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, exp in zip(results, expected):
        for g, e in zip(got, exp):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_no_torch_or_bpy_import():
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(depth_net))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not names & {"torch", "bpy", "onnx", "onnxruntime"}
