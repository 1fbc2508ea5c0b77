"""The ONNX depth models (inference/depth/onnx_models.py), offline: tiny random networks with
the real exports' input and output names and dynamic shapes, laid out exactly as
huggingface_hub's cache holds a download (blobs, snapshot links, refs/main) plus photo3d's
completion manifest, or served by a fake Hub. Checked: pre-processing as transformers', each
family end to end (Depth Anything V2 and 3, MoGe-2), the precision file per device, downloads
of only the chosen file, offline errors, damaged files, the CLI and the operator, and that no
ONNX model imports PyTorch."""
import dataclasses
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

import hub
from photo3d.inference import depth as depth_models, engine, pipeline
from photo3d.inference.depth import onnx_models, zoo
from photo3d.inference.errors import InputError

pytest.importorskip("onnx")
pytest.importorskip("huggingface_hub")

DA2, DA3, MOGE = "depth-anything-v2-small", "depth-anything-v3-small", "moge-2-vits"
CUDA = "CUDAExecutionProvider"


@pytest.fixture(scope="module")
def repos():
    """The tiny repositories, as the Hub would serve them: repository -> {file: bytes}."""
    fp32 = hub.tiny_depth_anything_v2(mean=True)
    da2 = {"config.json": hub.DPT_CONFIG, "preprocessor_config.json": hub.DPT_PREPROCESSOR,
           "onnx/model.onnx": fp32, "onnx/model_fp16.onnx": hub.tiny_depth_anything_v2(mean=True, half=True),
           "onnx/model_quantized.onnx": hub.quantized(fp32), "onnx/model_q4.onnx": b"never fetched",
           "README.md": b"never fetched", "quantize_config.json": b"{}"}
    da3 = {"config.json": hub.DPT_CONFIG, **{f"onnx/{k}": v for k, v in hub.tiny_depth_anything_v3(mean=True).items()}}
    moge = {"model.onnx": hub.tiny_moge(), "README.md": b"never fetched"}
    return {onnx_models.SPECS[DA2].repo: da2, onnx_models.SPECS[DA3].repo: da3, onnx_models.SPECS[MOGE].repo: moge}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty model cache, offline (as Blender's PyPI module and --offline are)."""
    folder = tmp_path / "hub-cache"
    monkeypatch.setenv("PHOTO3D_MODEL_DIR", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    zoo.set_offline(True)
    yield folder
    zoo.set_offline(False)
    engine.release()


def put(cache, repos, name, precision="fp32", manifest=True, **replace):
    """Lay ``name``'s ``precision`` download out in the cache as a finished one."""
    spec = onnx_models.SPECS[name]
    fetch = onnx_models.fetch_for(spec, precision)
    files = {k: v for k, v in repos[spec.repo].items() if k in fetch.patterns}
    files.update(replace)
    return hub.lay_out_cache(cache, spec.repo, files, fetch.manifest if manifest else None)


def photo(h=60, w=90):
    """Dark on the left, bright on the right."""
    rgb = np.full((h, w, 3), 0.15, np.float32)
    rgb[:, w // 2:] = 0.9
    return rgb


# --- what is registered -----------------------------------------------------------------------

def test_onnx_models_take_the_plain_names_and_need_no_pytorch():
    for name, spec in onnx_models.SPECS.items():
        m = depth_models.get_model(name)
        assert m.runtime == "onnx" and m.licence == spec.licence and m.size_mb > 0 and "fp32" in spec.files
        assert m.fetch is not None and m.precision() == "fp32"          # the CPU engine: fp32
    assert depth_models.DEFAULT_MODEL == "photo3d-net"
    assert depth_models.get_model(DA2).licence == "Apache-2.0"
    assert all("non-commercial" in depth_models.get_model(f"depth-anything-v2-{s}").licence for s in ("base", "large"))
    assert depth_models.get_model(MOGE).metric and not depth_models.get_model(DA2).metric
    assert depth_models.get_model("depth-pro").runtime == "torch"      # no verified ONNX export
    assert not any(n.endswith("-torch") for n in depth_models.MODELS)
    f = onnx_models.fetch_for(onnx_models.SPECS[DA2], "fp16")
    assert f.required == ("onnx/model_fp16.onnx",) and f.manifest == "photo3d-complete-model_fp16.json"
    assert onnx_models.fetch_for(onnx_models.SPECS[DA3], "fp32").required == ("onnx/model.onnx",
                                                                              "onnx/model.onnx_data")


def test_preprocessing_is_transformers_dpt_image_processor(tmp_path):
    transformers = pytest.importorskip("transformers")
    from transformers.models.dpt.image_processing_dpt import get_resize_output_image_size
    (tmp_path / "preprocessor_config.json").write_bytes(hub.DPT_PREPROCESSOR)
    prep = onnx_models.DptPreprocess.load(str(tmp_path), onnx_models.SPECS[DA2])
    for h, w in ((345, 518), (518, 345), (1000, 2000), (200, 300), (518, 518), (37, 700), (777, 333)):
        want = get_resize_output_image_size(np.zeros((h, w, 3)), output_size=(518, 518), keep_aspect_ratio=True,
                                            multiple=14, input_data_format="channels_last")
        assert prep.target_size(h, w) == tuple(want), (h, w)
    theirs = transformers.DPTImageProcessor.from_pretrained(str(tmp_path))
    rng = np.random.default_rng(1)
    same = rng.integers(0, 256, (336, 518, 3), dtype=np.uint8)          # already the size it runs at
    np.testing.assert_allclose(prep(same), theirs(images=same, return_tensors="np")["pixel_values"], atol=1e-4)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 3)
    ours, ref = prep(smooth), theirs(images=smooth, return_tensors="np")["pixel_values"]
    assert ours.shape == ref.shape == (1, 3, 392, 518)                  # resized as transformers does
    assert np.abs(ours - ref).mean() < 0.02                             # OpenCV's bicubic vs PIL's


# --- running from the cache -------------------------------------------------------------------

def test_depth_anything_v2_runs_from_the_hub_cache(cache, repos):
    snap = put(cache, repos, DA2)
    assert os.path.islink(os.path.join(snap, "onnx", "model.onnx")) or os.name == "nt"
    assert onnx_models.cached(DA2) and depth_models.get_model(DA2).cached()
    depth, subject, extras = depth_models.estimate_with_info(DA2, photo())
    assert depth.shape == (60, 90) and depth.dtype == np.float32 and subject is None and extras == {}
    assert np.isfinite(depth).all() and (depth > 0).all()
    # Its output is disparity: the brighter half (larger output) is nearer.
    assert np.median(depth[:, 60:]) < np.median(depth[:, :30])
    sess = engine.onnx_session(os.path.join(snap, "onnx", "model.onnx"))
    assert set(sess.inputs) == {"pixel_values"} and sess.outputs == ["predicted_depth"]
    assert sess.inputs["pixel_values"][2:] == ["height", "width"]       # dynamic, as the exports are


def test_the_pipeline_and_tiles_run_an_onnx_model(cache, repos, small_portrait, portrait_path):
    from photo3d.inference.photo import load_photo
    put(cache, repos, DA2)
    r = pipeline.run(small_portrait, pipeline.Settings(depth_model=DA2, portrait=False))
    assert r.depth_model == DA2 and not r.metric and r.foreground_mesh.n_vertices > 0
    small = load_photo(portrait_path)
    big = dataclasses.replace(small, rgb=cv2.resize(small.rgb, (1200, 1200)))      # tiles add detail only here
    md = pipeline.model_depth(big, depth_models.get_model(DA2), 4, max(big.size))
    assert md.tiles is not None and md.depth.shape[::-1] == md.tiles.out_size and np.isfinite(md.depth).all()


def test_precision_follows_the_engine_and_each_file_runs(cache, repos, monkeypatch):
    for precision in ("fp16", "int8"):
        put(cache, repos, DA2, precision)
    assert not onnx_models.cached(DA2)                          # fp32 (what the CPU runs) is not there
    monkeypatch.setattr(engine, "pick_precision", lambda device=None: "fp16", raising=False)
    assert onnx_models.cached(DA2) and onnx_models.local_model(DA2)[1] == "fp16"
    fp16, _, _ = depth_models.estimate_with_info(DA2, photo())
    monkeypatch.setattr(engine, "pick_precision", lambda device=None: "int8", raising=False)
    int8, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert np.isfinite(fp16).all() and np.isfinite(int8).all()
    assert np.median(int8[:, 60:]) < np.median(int8[:, :30])     # the quantised file says the same
    # A precision an export lacks falls back to its fp32 file.
    assert onnx_models.pick_precision(onnx_models.SPECS[MOGE]) == "fp32"


class _GpuThatFails:
    """A real CPU session that says it runs on CUDA and fails every run but the probe's
    (a GPU out of memory at a real photo's size)."""

    def __init__(self, real):
        self.real = real

    def get_providers(self):
        return [CUDA, engine.CPU]

    def __getattr__(self, name):                      # get_inputs, get_outputs
        return getattr(self.real, name)

    def run(self, names, feeds):
        if next(iter(feeds.values())).shape[-1] != engine.PROBE_SIDE:
            raise RuntimeError("CUDA failure 2: out of memory")
        return self.real.run(names, feeds)


@pytest.fixture
def cuda(monkeypatch):
    """A fake CUDA provider that fails ``how`` ("create": at load, "run": at a real run);
    returns the (provider, file name) of each session made."""
    import onnxruntime
    real_create, made = engine._create_session, []

    def setup(how):
        def create(path, provider):
            made.append((provider, os.path.basename(path)))
            if provider == engine.CPU:
                return real_create(path, provider)
            if how == "create":
                raise RuntimeError("CUDA failed to initialise")
            if how == "parse":                        # a working GPU: it fails only on a damaged file
                return _GpuThatFails(real_create(path, engine.CPU))
            return _GpuThatFails(real_create(path, engine.CPU))
        monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA, engine.CPU])
        monkeypatch.setattr(engine, "_create_session", create)
        engine.set_device("auto")
        return made
    yield setup
    engine.set_device(None)


@pytest.mark.parametrize("how", ["create", "run"])
def test_a_gpu_that_fails_hands_the_cpu_the_fp32_file_on_disk(cache, repos, cuda, how):
    """The GPU's fp16 file is wanted; when the GPU fails to load or to run it, the CPU runs
    the fp32 file already cached, not the fp16 one."""
    for precision in ("fp16", "fp32"):
        put(cache, repos, DA2, precision)
    made = cuda(how)
    engine.clear_runs()
    assert onnx_models.local_model(DA2)[1] == "fp16"
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert np.isfinite(depth).all()
    assert made[0] == (CUDA, "model_fp16.onnx") and made[-1] == (engine.CPU, "model.onnx")
    assert [(r.provider, r.precision) for r in engine.runs()] == [(engine.CPU, "fp32")]


def test_a_gpu_that_fails_with_only_fp16_on_disk_runs_it_and_downloads_nothing(cache, repos, cuda, monkeypatch):
    fake = hub.FakeHub(repos, cache)
    hub.install(monkeypatch, fake)
    zoo.set_offline(False)
    made = cuda("create")
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert np.isfinite(depth).all() and made[-1] == (engine.CPU, "model_fp16.onnx")
    assert sorted(fake.downloads) == ["config.json", "onnx/model_fp16.onnx", "preprocessor_config.json"]


def test_the_damaged_file_is_the_one_named_and_forgotten(cache, repos, cuda):
    """fp16 wanted for the GPU, which fails; the fp32 file the CPU was given is damaged: that
    file is named and forgotten, the fp16 download stays."""
    put(cache, repos, DA2, "fp16")
    snap = put(cache, repos, DA2, "fp32")
    path = os.path.realpath(os.path.join(snap, "onnx", "model.onnx"))
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(b"\0" * size)
    cuda("create")
    with pytest.raises(InputError, match=r"its file onnx/model\.onnx is damaged and was removed"):
        depth_models.estimate_with_info(DA2, photo())
    assert onnx_models.cached_precisions(DA2) == ["fp16"]


def test_a_file_the_gpu_finds_damaged_is_forgotten_while_the_cpu_runs_the_other(cache, repos, cuda):
    """fp16 wanted for the GPU, but damaged: the CPU runs the fp32 file on disk, and the fp16
    download is forgotten (fetched again next time online) rather than failing on every run."""
    snap = put(cache, repos, DA2, "fp16")
    put(cache, repos, DA2, "fp32")
    path = os.path.realpath(os.path.join(snap, "onnx", "model_fp16.onnx"))
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(b"\0" * size)
    made = cuda("parse")
    engine.clear_runs()
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert np.isfinite(depth).all()
    assert made[0] == (CUDA, "model_fp16.onnx") and made[-1] == (engine.CPU, "model.onnx")
    assert onnx_models.cached_precisions(DA2) == ["fp32"]
    assert "model_fp16.onnx is damaged and was removed" in engine.fallback_note()
    depth_models.estimate_with_info(DA2, photo())            # offline, the fp32 file serves on
    assert [(r.provider, r.precision) for r in engine.runs()][-1] == (engine.CPU, "fp32")


def test_a_float16_input_is_fed_float16(cache, repos):
    put(cache, repos, DA2, **{"onnx/model.onnx": hub.tiny_depth_anything_v2(mean=True, half_io=True)})
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert np.isfinite(depth).all() and np.median(depth[:, 60:]) < np.median(depth[:, :30])


def test_offline_another_cached_precision_serves(cache, repos, monkeypatch):
    put(cache, repos, DA2, "int8")
    assert not onnx_models.cached(DA2) and onnx_models.cached_precisions(DA2) == ["int8"]
    assert onnx_models.local_model(DA2)[1] == "int8"
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert np.isfinite(depth).all()


def test_depth_anything_3_takes_five_dimensions_and_external_weights(cache, repos):
    snap = put(cache, repos, DA3)
    assert os.path.isfile(os.path.join(snap, "onnx", "model.onnx_data"))
    depth, _, _ = depth_models.estimate_with_info(DA3, photo())
    assert depth.shape == (60, 90) and np.isfinite(depth).all() and (depth > 0).all()
    # Its output is depth, not disparity: the brighter half (larger output) is farther.
    assert np.median(depth[:, 60:]) > np.median(depth[:, :30])
    assert np.percentile(depth, 2) == pytest.approx(1.0, rel=0.05)      # near end at 1, ratios kept


@pytest.mark.parametrize("scale_name", ["metric_scale", "scale"])
def test_moge_gives_metric_depth_and_a_field_of_view(cache, repos, scale_name, small_portrait):
    put(cache, repos, MOGE, **{"model.onnx": hub.tiny_moge(scale_name)})
    depth, _, extras = depth_models.estimate_with_info(MOGE, photo(70, 100))
    assert depth.shape == (70, 100) and np.isfinite(depth).all() and (depth > 0).all()
    assert set(extras) <= {"hfov_deg"} and all(0 < v < 180 for v in extras.values())
    r = pipeline.run(small_portrait, pipeline.Settings(depth_model=MOGE, portrait=False))
    assert r.metric and r.depth_model == MOGE


def test_moge_focal_and_shift_come_back_from_a_point_map():
    """A plane seen by a camera of known field of view, as MoGe's affine point map (z shifted):
    the focal length, shift and field of view are recovered."""
    h, w, hfov, shift = 48, 64, 60.0, 0.7
    a = w / h
    uv = onnx_models.view_plane_uv(w, h)
    fx = 0.5 / np.tan(np.radians(hfov) / 2)                           # normalised by the width
    focal = fx * 2 * a / np.sqrt(1 + a * a)                            # MoGe's: relative to half the diagonal
    z = 3.0 + 1.5 * (np.arange(h)[:, None] / h) + 0 * uv[..., 0]       # a receding floor
    points = np.dstack([uv * z[..., None] / focal, z - shift]).astype(np.float32)
    f, s = onnx_models.recover_focal_shift(points, np.ones((h, w), bool))
    assert f == pytest.approx(focal, rel=1e-3) and s == pytest.approx(shift, abs=1e-3)
    depth, fov = onnx_models.moge_depth(points, np.ones((h, w), bool), 2.0)
    assert fov == pytest.approx(hfov, abs=0.1)
    np.testing.assert_allclose(depth, z * 2.0, rtol=1e-3)
    mask = np.ones((h, w), bool)
    mask[:5] = False                                                   # sky: the farthest depth
    depth, _ = onnx_models.moge_depth(points, mask, 1.0)
    assert depth[:5].min() == pytest.approx(depth[5:].max())


# --- offline, downloads, damaged files --------------------------------------------------------------

def test_offline_with_nothing_cached_is_the_clear_error(cache):
    for name in (DA2, DA3, MOGE):
        assert not depth_models.get_model(name).cached()
        with pytest.raises(InputError, match="not downloaded and online access is off"):
            depth_models.estimate_with_info(name, photo())
    assert not os.path.exists(cache)                      # nothing written, nothing fetched


def test_download_fetches_only_the_chosen_file_and_configs(cache, repos, monkeypatch):
    fake = hub.FakeHub(repos, cache)
    hub.install(monkeypatch, fake)
    zoo.set_offline(False)
    seen = []
    depth_models.get_model(DA2).fetch(seen.append)
    assert sorted(fake.downloads) == ["config.json", "onnx/model.onnx", "preprocessor_config.json"]
    assert seen[-1].finished and seen[-1].total == sum(len(repos[onnx_models.SPECS[DA2].repo][f])
                                                       for f in fake.downloads)
    base = hub.repo_folder(cache, onnx_models.SPECS[DA2].repo)
    assert os.path.isfile(os.path.join(base, "photo3d-complete-model.json"))
    assert onnx_models.cached(DA2)
    fake.downloads.clear()
    zoo.set_offline(True)
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert fake.downloads == [] and np.isfinite(depth).all()
    # DA3's weights file comes with its graph; MoGe's repository has no configs at all.
    zoo.set_offline(False)
    depth_models.get_model(DA3).fetch()
    depth_models.get_model(MOGE).fetch()
    assert {"onnx/model.onnx", "onnx/model.onnx_data", "model.onnx"} <= set(fake.downloads)
    assert "README.md" not in fake.downloads


def test_the_pipeline_downloads_an_onnx_model_with_progress(cache, repos, monkeypatch, small_portrait):
    hub.install(monkeypatch, hub.FakeHub(repos, cache))
    zoo.set_offline(False)
    seen = []
    r = pipeline.run(small_portrait, pipeline.Settings(depth_model=DA2, portrait=False), on_download=seen.append)
    assert seen and seen[-1].finished and any(s.file == "onnx/model.onnx" and s.file_done for s in seen)
    assert r.depth_model == DA2 and "depth: download" in r.details


def test_a_truncated_file_is_not_cached_and_is_fetched_again(cache, repos, monkeypatch):
    snap = put(cache, repos, DA2)
    path = os.path.join(snap, "onnx", "model.onnx")
    data = open(path, "rb").read()
    with open(os.path.realpath(path), "wb") as f:
        f.write(data[: len(data) // 2])                        # cut short after it was complete
    assert not onnx_models.cached(DA2)
    with pytest.raises(InputError, match="not downloaded"):  # offline: not taken for a model
        depth_models.estimate_with_info(DA2, photo())
    fake = hub.FakeHub(repos, cache)
    hub.install(monkeypatch, fake)
    zoo.set_offline(False)
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert "onnx/model.onnx" in fake.downloads and np.isfinite(depth).all()
    assert open(path, "rb").read() == data


def test_a_download_that_does_not_match_its_checksum_is_refused(cache, repos, monkeypatch):
    fake = hub.FakeHub(repos, cache)
    repo = onnx_models.SPECS[DA2].repo
    good = repos[repo]["onnx/model.onnx"]
    fake.served = {repo: {"onnx/model.onnx": good[:-4] + b"oops"}}
    hub.install(monkeypatch, fake)
    zoo.set_offline(False)
    with pytest.raises(InputError, match="does not match the Hub's checksum"):
        depth_models.get_model(DA2).fetch()
    assert not onnx_models.cached(DA2)
    assert not os.path.lexists(os.path.join(hub.repo_folder(cache, repo), "snapshots", hub.SHA, "onnx", "model.onnx"))


def test_a_damaged_file_of_the_right_size_is_reported_then_fetched_again(cache, repos, monkeypatch):
    snap = put(cache, repos, DA2)
    path = os.path.realpath(os.path.join(snap, "onnx", "model.onnx"))
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(b"\0" * size)                                    # same size, not a model
    with pytest.raises(InputError, match="is damaged and was removed.*fetched again"):
        depth_models.estimate_with_info(DA2, photo())
    assert not onnx_models.cached(DA2)                          # no longer counted as whole
    fake = hub.FakeHub(repos, cache)
    hub.install(monkeypatch, fake)
    zoo.set_offline(False)
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())   # fetched again
    assert fake.downloads == ["config.json", "onnx/model.onnx", "preprocessor_config.json"]
    assert np.isfinite(depth).all()


def test_a_damaged_file_without_a_manifest_is_checked_and_fetched_again(cache, repos, monkeypatch):
    snap = put(cache, repos, DA2, manifest=False)               # as other tools leave a download
    path = os.path.realpath(os.path.join(snap, "onnx", "model.onnx"))
    good = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(good[:-4] + b"oops")                              # same size, other bytes
    fake = hub.FakeHub(repos, cache)
    hub.install(monkeypatch, fake)
    zoo.set_offline(False)
    zoo.download_files(DA2, onnx_models.fetch_for(onnx_models.SPECS[DA2], "fp32"))
    assert open(os.path.join(snap, "onnx", "model.onnx"), "rb").read() == good


def test_a_snapshot_other_tools_downloaded_counts_when_its_file_is_there(cache, repos):
    put(cache, repos, DA2, manifest=False)
    assert onnx_models.cached(DA2)
    depth, _, _ = depth_models.estimate_with_info(DA2, photo())
    assert np.isfinite(depth).all()


# --- the CLI, the operator, the panel: no PyTorch ------------------------------------------------

def test_cli_make_offline_runs_without_pytorch(cache, repos, small_portrait, tmp_path):
    """``python -m photo3d make PHOTO --out DIR --depth-model depth-anything-v2-small --no-render
    --offline`` in a fresh interpreter, then the other ONNX families; torch is never imported."""
    for name in (DA2, DA3, MOGE):
        put(cache, repos, name)
    out = tmp_path / "out"
    code = textwrap.dedent(f"""
        import runpy, sys
        import numpy as np
        sys.argv = ["photo3d", "make", {small_portrait!r}, "--out", {str(out)!r}, "--depth-model", {DA2!r},
                    "--no-render", "--offline"]
        try:
            runpy.run_module("photo3d", run_name="__main__")
        except SystemExit as e:
            rc = e.code
        from photo3d.inference import depth
        for name in ({DA3!r}, {MOGE!r}):
            d, _, _ = depth.estimate_with_info(name, np.random.default_rng(0).uniform(0, 1, (40, 60, 3)))
            assert d.shape == (40, 60)
        print("RC", rc, "TORCH", "torch" in sys.modules, "TRANSFORMERS", "transformers" in sys.modules)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "RC 0 TORCH False TRANSFORMERS False" in p.stdout, p.stdout + p.stderr[-2000:]
    assert (out / "scene.blend").is_file() and np.load(out / "depth.npy").shape == (256, 256)


def test_cli_make_offline_with_nothing_cached_says_so(cache, small_portrait, tmp_path):
    from helpers import run_cli
    rc, _, err = run_cli("make", small_portrait, "--out", tmp_path / "o", "--depth-model", DA2, "--no-render",
                         "--offline")
    assert rc == 2 and "not downloaded and online access is off" in err and not (tmp_path / "o").exists()


def test_models_lists_size_precision_licence_and_cache(cache, repos, capsys):
    from photo3d import cli
    put(cache, repos, DA2, "int8")
    assert cli.main(["models"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("#")]
    assert lines[0].split("\t")[:6] == ["name", "size", "status", "engine", "precision", "licence"]
    rows = {ln.split("\t")[0]: ln.split("\t") for ln in lines[1:]}
    name, size, status, how, precision, licence, _ = rows[DA2]
    assert how == "onnxruntime"
    assert size == "99 MB" and precision.startswith("fp32") and "fp16 50 MB" in precision and "int8 27 MB" in precision
    assert status.startswith("not downloaded (int8 cached)") and "ONNX" in status and licence == "Apache-2.0"
    assert "non-commercial" in rows["depth-anything-v2-large"][5] and "PyTorch" not in rows[MOGE][2]


@pytest.mark.blender
def test_the_panels_model_list_is_built_again_only_when_it_may_have_changed(cache, repos, monkeypatch):
    """Blender asks for the depth model items on every redraw: the same list (its strings kept
    referenced) comes back until a download lands, the device changes or some seconds pass."""
    pytest.importorskip("bpy")
    from photo3d import properties
    builds = []
    real_build = properties._build_model_items
    monkeypatch.setattr(properties, "_build_model_items", lambda: builds.append(1) or real_build())
    now = [1000.0]
    monkeypatch.setattr(properties.time, "monotonic", lambda: now[0])
    first = properties._model_items(None, None)
    labels = dict((i[0], i[1]) for i in first)
    assert labels[DA2].endswith("MB)") and labels[DA2].startswith("Depth Anything V2 Small (downloads")
    again = properties._model_items(None, None)
    assert again is properties._MODEL_ITEMS and again[0] is first[0] and len(builds) <= 1
    builds.clear()
    for _ in range(20):
        properties._model_items(None, None)
    assert builds == []                                            # redraws: nothing checked again
    put(cache, repos, DA2)                                         # a download lands
    assert "downloads" not in dict((i[0], i[1]) for i in properties._model_items(None, None))[DA2]
    assert len(builds) == 1
    engine.set_device("cpu")                                       # the device picks the precision
    try:
        properties._model_items(None, None)
        assert len(builds) == 2
    finally:
        engine.set_device(None)
    properties._model_items(None, None)
    now[0] += properties.ITEMS_TTL_S                               # what no stamp sees, in a while
    properties._model_items(None, None)
    assert len(builds) == 4


@pytest.mark.blender
def test_operator_runs_an_onnx_model_offline_and_the_panel_asks_for_no_pytorch(cache, repos, small_portrait,
                                                                                blender, monkeypatch):
    bpy = blender
    from photo3d import properties
    from photo3d.runtime.ui import needs_runtime
    from photo3d.scene import build
    put(cache, repos, DA2)
    monkeypatch.setattr(zoo, "available", lambda: False)                # no PyTorch anywhere
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.photo3d.depth_model = DA2
    scene.photo3d.portrait = False
    assert not needs_runtime(scene.photo3d)
    labels = {i[0]: i[1] for i in properties._model_items(None, bpy.context)}
    assert "PyTorch" not in labels[DA2] and "downloads" not in labels[DA2]          # cached, ONNX
    assert labels[MOGE].endswith("(downloads 141 MB)") and labels["depth-pro"].endswith("(needs PyTorch)")
    scene.photo3d.depth_model = "depth-pro"
    assert needs_runtime(scene.photo3d)
    scene.photo3d.depth_model = DA2
    assert bpy.ops.photo3d.make_photo(filepath=small_portrait) == {"FINISHED"}   # online access off: the cache
    assert build.find_collection(scene) is not None
    build.remove_photo(scene)
