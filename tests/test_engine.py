"""The inference engine's ONNX Runtime side: which execution provider runs a model, falling
back in one line when a GPU provider cannot load or run it, the device setting from the
command line and the preferences, and which precision's file each provider gets.

GPU providers are faked (this machine has none): ``onnxruntime.get_available_providers``
lists them, and a session factory fails for the ones a test says fail; the CPU sessions are
real ones of the bundled network."""
from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import onnxruntime
import pytest

from helpers import run_cli
from photo3d import cli, settings
from photo3d.inference import depth as depth_models, engine
from photo3d.inference.errors import InputError

WEIGHTS = depth_models.NET_WEIGHTS
CUDA, DML, COREML, CPU = ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider",
                          "CPUExecutionProvider")


@pytest.fixture(autouse=True)
def fresh_engine():
    """No session, device or record of an earlier test."""
    def reset():
        engine.release_onnx()
        engine.set_device(None)
        engine.clear_runs()
    reset()
    yield
    reset()


class _FakeGpuSession:
    """A real CPU session that says it runs on ``provider``; ``fail_runs`` makes runs of
    other sizes than the probe's fail (a GPU out of memory on a real photo)."""

    def __init__(self, real, provider, fail_runs=False):
        self.real, self.provider, self.fail_runs = real, provider, fail_runs

    def get_providers(self):
        return [self.provider, CPU]

    def get_inputs(self):
        return self.real.get_inputs()

    def get_outputs(self):
        return self.real.get_outputs()

    def run(self, names, feeds):
        x = next(iter(feeds.values()))
        if self.fail_runs and x.shape[-1] != engine.PROBE_SIDE:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned "
                               "while running Conv node. Failed to allocate memory")
        return self.real.run(names, feeds)


@pytest.fixture
def gpus(monkeypatch):
    """Fake GPU providers: ``gpus(available, fail={provider: how})`` where how is 'create'
    (the session cannot be made), 'probe' (its first run fails), 'quiet' (ONNX Runtime
    quietly chose the CPU instead), 'run' (real runs fail) or absent (it works). Returns the
    list of (provider, path) the factory was asked for."""
    real_create = engine._create_session
    asked = []

    def setup(available, fail=None):
        fail = fail or {}
        monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(available))

        def create(path, provider):
            asked.append((provider, path))
            how = fail.get(provider)
            if how == "create":
                raise RuntimeError(f"[ONNXRuntimeError] : 1 : FAIL : {provider} failed to initialise\nmore detail")
            real = real_create(path, CPU)
            if provider == CPU:
                return real
            if how == "quiet":
                return real                                  # get_providers() says CPU only
            if how == "probe":
                fake = _FakeGpuSession(real, provider)
                fake.run = lambda names, feeds: (_ for _ in ()).throw(RuntimeError("probe: operator not supported"))
                return fake
            return _FakeGpuSession(real, provider, fail_runs=how == "run")

        monkeypatch.setattr(engine, "_create_session", create)
        return asked

    return setup


def _notes(caplog):
    return [r.getMessage() for r in caplog.records if r.name == engine.__name__]


# --------------------------------------------------------------------------- provider choice
def test_provider_order_per_device():
    everything = [CUDA, DML, COREML, CPU]
    assert engine.provider_order("auto", everything) == [CUDA, DML, COREML, CPU]
    assert engine.provider_order("auto", ["AzureExecutionProvider", CPU]) == [CPU]
    assert engine.provider_order("cpu", everything) == [CPU]
    assert engine.provider_order("gpu", [COREML, CPU]) == [COREML]
    with pytest.raises(InputError, match=r"^device gpu: .*no GPU execution provider"):
        engine.provider_order("gpu", [CPU])
    assert engine.pick_precision(CUDA) == engine.pick_precision(DML) == engine.pick_precision(COREML) == "fp16"
    assert engine.pick_precision(CPU) == "fp32"


def test_device_setting_and_environment(monkeypatch):
    monkeypatch.delenv("PHOTO3D_DEVICE", raising=False)
    assert engine.device_choice() == "auto"
    monkeypatch.setenv("PHOTO3D_DEVICE", "cuda")
    assert engine.device_choice() == "gpu"                   # a GPU API's name means gpu
    engine.set_device("cpu")
    assert engine.device_choice() == "cpu"                   # the setting wins over the environment
    assert engine.device_choice("gpu") == "gpu"              # and a call's own device over both
    engine.set_device("auto")
    assert engine.device_choice() == "gpu"                   # auto leaves it to the environment
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        engine.set_device("tpu")


def test_auto_falls_back_to_the_cpu_with_one_line(gpus, caplog):
    asked = gpus([CUDA, DML, CPU], fail={CUDA: "create", DML: "probe"})
    with caplog.at_level(logging.WARNING, logger=engine.__name__):
        s = engine.onnx_session(WEIGHTS, "auto", name="photo3d-net")
    assert s.provider == CPU and s.precision == "fp32" and s.device == "cpu"
    assert [p for p, _ in asked] == [CUDA, DML, CPU]
    notes = _notes(caplog)
    assert len(notes) == 1, notes
    line = notes[0]
    assert line.startswith("photo3d-net: CUDA: ") and "failed to initialise" in line and "more detail" in line
    assert "DirectML: probe: operator not supported" in line and line.endswith("running on CPU instead")
    assert "\n" not in line and "[ONNXRuntimeError]" not in line
    # loaded once: the next call is the same session, and says nothing again
    with caplog.at_level(logging.WARNING, logger=engine.__name__):
        assert engine.onnx_session(WEIGHTS, "auto", name="photo3d-net") is s
    assert len(_notes(caplog)) == 1


def test_a_provider_that_quietly_chose_the_cpu_is_not_taken_for_a_gpu(gpus, caplog):
    gpus([CUDA, CPU], fail={CUDA: "quiet"})
    with caplog.at_level(logging.WARNING, logger=engine.__name__):
        s = engine.onnx_session(WEIGHTS, "auto")
    assert s.provider == CPU
    assert "could not enable it" in _notes(caplog)[0]


def test_a_working_gpu_provider_is_used_and_probed_once(gpus, caplog):
    asked = gpus([DML, CPU])
    with caplog.at_level(logging.WARNING, logger=engine.__name__):
        s = engine.onnx_session(WEIGHTS, "auto", name="photo3d-net", role="depth model")
    assert s.provider == DML and s.device == "gpu" and not _notes(caplog)
    assert [p for p, _ in asked] == [DML]
    out = s.run({"rgb": np.full((1, 3, 64, 96), 0.5, np.float32)})
    assert out["inv_depth"].shape == (1, 1, 64, 96)
    assert [str(r) for r in engine.runs()] == ["photo3d-net via onnxruntime DmlExecutionProvider fp32"]


def test_a_gpu_that_fails_a_real_run_hands_over_to_the_cpu(gpus, caplog):
    gpus([CUDA, CPU], fail={CUDA: "run"})
    s = engine.onnx_session(WEIGHTS, "auto", name="photo3d-net")
    assert s.provider == CUDA                                 # the probe at 224x224 passed
    x = np.random.default_rng(0).random((1, 3, 64, 96), dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger=engine.__name__):
        out = s.run({"rgb": x})
        s.run({"rgb": x})
    assert s.provider == CPU
    notes = _notes(caplog)
    assert len(notes) == 1 and "CUDA failed to run it" in notes[0] and "Failed to allocate memory" in notes[0]
    ref = engine.onnx_session(WEIGHTS, "cpu").run({"rgb": x})
    np.testing.assert_allclose(out["inv_depth"], ref["inv_depth"], rtol=1e-5, atol=1e-6)


def test_gpu_insists_on_a_gpu(gpus):
    gpus([CUDA, DML, CPU], fail={CUDA: "create", DML: "create"})
    with pytest.raises(InputError, match=r"^device gpu: no GPU could run m \(CUDA: .*; DirectML: .*\); "
                                         r"choose device auto or cpu$"):
        engine.onnx_session(WEIGHTS, "gpu", name="m")
    gpus([CUDA, CPU], fail={CUDA: "run"})
    s = engine.onnx_session(WEIGHTS, "gpu", name="m2")
    with pytest.raises(RuntimeError, match="allocate"):       # no quiet move to the CPU either
        s.run({"rgb": np.zeros((1, 3, 64, 64), np.float32)})


def test_cpu_never_tries_a_gpu(gpus):
    asked = gpus([CUDA, DML, CPU])
    assert engine.onnx_session(WEIGHTS, "cpu").provider == CPU
    assert [p for p, _ in asked] == [CPU]


def test_each_provider_gets_the_precision_it_runs_best(gpus, tmp_path):
    fp16, fp32 = tmp_path / "model_fp16.onnx", tmp_path / "model.onnx"
    shutil.copy(WEIGHTS, fp16)
    shutil.copy(WEIGHTS, fp32)
    files = {"fp16": str(fp16), "fp32": str(fp32)}
    asked = gpus([CUDA, CPU])
    s = engine.onnx_session(files, "auto")
    assert (s.provider, s.precision, s.path) == (CUDA, "fp16", str(fp16))
    s = engine.onnx_session(files, "cpu")
    assert (s.provider, s.precision, s.path) == (CPU, "fp32", str(fp32))
    only16 = engine.onnx_session({"fp16": str(fp16)}, "cpu")     # what there is, when it is all there is
    assert only16.path == str(fp16)
    assert [p for p, _ in asked] == [CUDA, CPU, CPU]


def test_an_unloadable_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model" * 20)
    with pytest.raises(engine.ModelLoadError, match=r"^cannot load bad\.onnx: \S") as e:
        engine.onnx_session(str(bad), "cpu")
    assert "\n" not in str(e.value) and "[ONNXRuntimeError]" not in str(e.value)
    with pytest.raises(InputError, match="model file not found"):
        engine.onnx_session(str(tmp_path / "none.onnx"))


def test_threads_follow_photo3d_threads(monkeypatch):
    monkeypatch.setenv("PHOTO3D_THREADS", "1")
    assert engine._session_options(CPU).intra_op_num_threads == 1
    opts = engine._session_options(DML)
    assert opts.enable_mem_pattern is False
    assert opts.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL


def test_hub_cache_paths_read_as_repository_and_file():
    path = "/c/hub/models--onnx-community--depth-anything-v2-small/snapshots/abc/onnx/model_fp16.onnx"
    assert engine._model_name(path) == "onnx-community/depth-anything-v2-small/onnx/model_fp16.onnx"
    assert engine._model_name("/x/photo3d_depth.onnx") == "photo3d_depth.onnx"


# --------------------------------------------------------------------------- the device setting
def test_device_is_one_setting_for_the_cli_the_preferences_and_the_pipeline():
    spec = settings.BY_NAME["device"]
    assert spec.default == "auto" and spec.choice_ids() == ("auto", "cpu", "gpu")
    assert spec.in_preferences and not spec.on_panel
    assert set(spec.commands) == {"make", "depth", "bench"}
    args = cli.build_parser().parse_args(["bench", "p.jpg", "--device", "cpu"])
    assert settings.pipeline_settings(settings.options_from_args(args)).device == "cpu"
    assert settings.pipeline_settings(settings.Options()).device == "auto"


def test_the_preferences_declare_the_device_from_its_setting(empty_scene, monkeypatch):
    import bpy

    from photo3d import preferences
    from photo3d.operators import make_photo
    from photo3d.properties import blender_property
    assert "device" in preferences.Photo3DPreferences.bl_rna.properties.keys()     # registered, not only declared
    prop = blender_property(settings.BY_NAME["device"])
    items = prop.keywords["items"]
    assert [i[0] for i in items] == ["auto", "cpu", "gpu"] and prop.keywords["default"] == "auto"
    # the extension is not enabled as an add-on here: the default, then what the preferences say
    assert make_photo._options(bpy.context).device == "auto"
    monkeypatch.setattr(preferences, "values", lambda context: {"device": "cpu"})
    opts = make_photo._options(bpy.context)
    assert opts.device == "cpu" and settings.pipeline_settings(opts).device == "cpu"


# --------------------------------------------------------------------------- through the command line
def test_device_cpu_through_the_cli(tmp_path, small_portrait):
    rc, so, se = run_cli("depth", small_portrait, "--out", tmp_path / "d.npy", "--device", "cpu")
    assert rc == 0, se
    assert np.load(tmp_path / "d.npy").shape == (256, 256)


def test_device_gpu_on_a_cpu_only_machine_is_one_clear_line(tmp_path, small_portrait):
    rc, so, se = run_cli("depth", small_portrait, "--out", tmp_path / "d.npy", "--device", "gpu")
    assert rc == 2
    lines = [ln for ln in se.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("photo3d: error: device gpu: "), se
    assert "choose device auto or cpu" in lines[0]
    assert not (tmp_path / "d.npy").exists()


def test_the_fallback_line_shows_among_the_progress_lines(tmp_path, small_portrait, gpus, capsys):
    """main() routes the engine's notes to stdout for every command (make's too; run
    in-process here, where the GPU can be faked, with the depth command)."""
    gpus([CUDA, CPU], fail={CUDA: "create"})
    rc = cli.main(["depth", small_portrait, "--out", str(tmp_path / "d.npy")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    notes = [ln for ln in out.splitlines() if "instead" in ln]
    assert len(notes) == 1 and notes[0].startswith("photo3d: photo3d-net: CUDA: "), out
    assert notes[0].endswith("running on CPU instead") and not err


def test_an_onnx_runtime_build_from_its_own_folder(tmp_path):
    """PHOTO3D_ONNXRUNTIME_DIR (an onnxruntime-gpu install): its onnxruntime is the one
    imported, alone (nothing else of the folder on sys.path), and CUDA's libraries are preloaded."""
    import os
    import subprocess
    import sys
    pkg = tmp_path / "gpu" / "onnxruntime"
    (pkg / "capi").mkdir(parents=True)
    (pkg / "capi" / "__init__.py").write_text("BUILD = 'cuda'\n")
    (pkg / "__init__.py").write_text(
        "from onnxruntime.capi import BUILD\n__version__ = '1.24.4'\nPRELOADED = []\n"
        "def get_available_providers():\n    return ['CUDAExecutionProvider', 'CPUExecutionProvider']\n"
        "def preload_dlls():\n    print('Failed to load libcudnn.so.9')\n    PRELOADED.append(True)\n")
    (tmp_path / "gpu" / "onnxruntime_gpu-1.24.4.dist-info").mkdir()
    (tmp_path / "gpu" / "numpy").mkdir()                           # never to shadow Blender's
    code = ("import sys; from photo3d.inference import engine; ort = engine.onnxruntime(); "
            "import numpy; print(ort.__file__, ort.BUILD, ort.PRELOADED, 'gpu' in numpy.__file__); "
            "print(engine.onnx_summary())")
    env = dict(os.environ, PHOTO3D_ONNXRUNTIME_DIR=str(tmp_path / "gpu"))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    first, second = p.stdout.strip().splitlines()
    assert first == f"{pkg / '__init__.py'} cuda [True] False"       # the preload's own print kept quiet
    assert second == "ONNX Runtime 1.24.4 (onnxruntime-gpu): CUDA, CPU"


def test_make_3d_photo_reports_a_gpu_fallback_where_blender_users_look(empty_scene, box_files, box_result,
                                                                       monkeypatch, capfd):
    import bpy

    from photo3d.operators import make_photo

    def run(path, settings, *args, **kwargs):
        engine.note_fallback("photo3d-net: CUDA: no kernel image; running on CPU instead")
        return box_result

    monkeypatch.setattr(make_photo.pipeline, "run", run)
    assert bpy.ops.photo3d.make_photo(filepath=box_files[0]) == {"FINISHED"}
    out = capfd.readouterr()
    assert "3D Photo: photo3d-net: CUDA: no kernel image; running on CPU instead" in out.out + out.err
    # No fallback this time: no warning.
    monkeypatch.setattr(make_photo.pipeline, "run", lambda *a, **k: box_result)
    assert bpy.ops.photo3d.make_photo(filepath=box_files[0]) == {"FINISHED"}
    assert "running on CPU instead" not in "".join(capfd.readouterr())


def test_a_session_on_another_device_or_of_a_replaced_file_is_let_go(tmp_path):
    model = tmp_path / "model.onnx"
    shutil.copy(WEIGHTS, model)
    first = engine.onnx_session(str(model), "cpu")
    assert engine.onnx_session(str(model), "cpu") is first                 # cached
    engine.onnx_session(str(model), "auto")                                 # the device setting changed
    assert len([k for k in engine.loaded() if k.startswith("onnx:") and str(model) in k]) == 1
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))            # the file replaced
    engine.onnx_session(str(model), "auto")
    keys = [k for k in engine.loaded() if k.startswith("onnx:") and str(model) in k]
    assert len(keys) == 1 and str(st.st_mtime_ns + 10**9) in keys[0]
    other = engine.onnx_session(WEIGHTS, "cpu")                             # other files are no business of it
    assert other is not first and any(str(model) in k for k in engine.loaded())
