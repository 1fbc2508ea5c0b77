"""ONNX Runtime GPU (CUDA) on request: the runtime installer's second kind, with real pip and
no network. Hand-written wheels stand in for ``onnxruntime-gpu`` 1.24.4 (with its ``cuda``
and ``cudnn`` extras, as on PyPI) and NVIDIA's library wheels; the stand-in onnxruntime
offers CUDA first, and its sessions are ours to control. Checked: it installs into its own
folder, never onto sys.path; the engine imports it from there (in a fresh interpreter, where
no ONNX Runtime is loaded yet) and runs on CUDA, falling back to the CPU with one line;
where the bundled onnxruntime is loaded already it stays, and a restart is asked for;
removal; and the operators and the preferences in the real bpy. No real GPU is involved."""
import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from helpers import FakeLayout, write_wheel
from photo3d import runtime as rt
from photo3d.inference import engine

ON_X64_LINUX = sys.platform.startswith("linux") and rt.offered(rt.ORT_GPU)

FAKE_ORT = textwrap.dedent('''
    """A stand-in for onnxruntime-gpu's module: CUDA first; FAKE_ORT_FAIL names providers whose sessions fail."""
    import os
    from onnxruntime.capi import BUILD          # a submodule, found inside this folder
    __version__ = "1.24.4"
    PRELOADED = []

    def get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def preload_dlls():          # the real one loads nvidia/*/lib/* from beside the package
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        PRELOADED.append(os.path.isfile(os.path.join(here, "nvidia", "cuda_runtime", "lib", "libcudart.so.12")))
        print("Failed to load libcudnn.so.9")         # what the real one prints: kept off the console

    class ExecutionMode:
        ORT_SEQUENTIAL = 0

    class SessionOptions:
        log_severity_level = intra_op_num_threads = 0
        enable_mem_pattern, execution_mode = True, None

        def add_session_config_entry(self, key, value):
            pass

    class _Arg:
        def __init__(self, name, shape):
            self.name, self.shape, self.type = name, shape, "tensor(float)"

    class InferenceSession:
        def __init__(self, model, sess_options=None, providers=()):
            p = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
            if p in os.environ.get("FAKE_ORT_FAIL", "").split(","):
                raise RuntimeError(f"[ONNXRuntimeError] : 1 : FAIL : {p} could not load cudnn")
            self.provider = p

        def get_providers(self):
            return [self.provider]

        def get_inputs(self):
            return [_Arg("image", [1, 3, "h", "w"])]

        def get_outputs(self):
            return [_Arg("depth", [1, 1, "h", "w"])]

        def run(self, names, feeds):
            import numpy
            x = feeds["image"]
            return [numpy.full((1, 1) + x.shape[2:], 2.0 if self.provider.startswith("CUDA") else 1.0, "float32")]
''')
NVIDIA = {"nvidia_cuda_runtime_cu12": ("12.9.79", "nvidia/cuda_runtime/lib/libcudart.so.12"),
          "nvidia_cuda_nvrtc_cu12": ("12.9.86", "nvidia/cuda_nvrtc/lib/libnvrtc.so.12"),
          "nvidia_cufft_cu12": ("11.4.1.4", "nvidia/cufft/lib/libcufft.so.11"),
          "nvidia_curand_cu12": ("10.3.10.19", "nvidia/curand/lib/libcurand.so.10"),
          "nvidia_cudnn_cu12": ("9.28.0.42", "nvidia/cudnn/lib/libcudnn.so.9")}


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local wheel folder laid out like PyPI's onnxruntime-gpu 1.24.4 (its real
    Requires-Dist and extras), and pip configured to see only it."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    requires = ["numpy>=1.21.6", 'nvidia-cuda-nvrtc-cu12~=12.0; extra == "cuda"',
                'nvidia-cuda-runtime-cu12~=12.0; extra == "cuda"', 'nvidia-cufft-cu12~=11.0; extra == "cuda"',
                'nvidia-curand-cu12~=10.0; extra == "cuda"', 'nvidia-cudnn-cu12~=9.0; extra == "cudnn"']
    write_wheel(folder, "onnxruntime_gpu", "1.24.4", requires=requires, extras=("cuda", "cudnn"),
                files={"onnxruntime/__init__.py": FAKE_ORT, "onnxruntime/capi/__init__.py": "BUILD = 'cuda'\n"})
    for name, (version, lib) in NVIDIA.items():
        write_wheel(folder, name, version, files={lib: "not a real library\n"})
    write_wheel(folder, "numpy", np.__version__, files={"numpy/__init__.py": "FAKE = True\n"})
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", rt.ENV_PACKAGES,
                rt.ENV_ORT_PACKAGES, rt.ENV_DIR, engine.ENV_ORT_DIR):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(rt.ENV_PIP_ARGS, f"--no-index --find-links {folder}")
    return folder


@pytest.fixture
def engine_state():
    """The engine's choice of ONNX Runtime folder and its notes as they were; sys.path too."""
    saved = engine._ort_dir, engine._fallback, list(sys.path)
    yield
    engine._ort_dir, engine._fallback = saved[:2]
    sys.path[:] = saved[2]


def _install(target):
    inst = rt.Installer(str(target), "GPU", kind=rt.ORT_GPU)
    return inst, inst.start().wait(120)


def _run(code: str, env_extra=None) -> dict:
    """``code`` in a fresh interpreter (no ONNX Runtime imported yet); it prints one JSON line."""
    env = dict(os.environ, **(env_extra or {}))
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_offered_on_linux_and_windows_x64_only(monkeypatch):
    monkeypatch.delenv(rt.ENV_PIP_ARGS, raising=False)
    monkeypatch.delenv(rt.ENV_ORT_PACKAGES, raising=False)
    assert rt.offered(rt.ORT_GPU, "linux", "x86_64") and rt.offered(rt.ORT_GPU, "win32", "AMD64")
    assert not rt.offered(rt.ORT_GPU, "darwin", "arm64") and not rt.offered(rt.ORT_GPU, "linux", "aarch64")
    assert not rt.offered(rt.ORT_GPU, "win32", "ARM64") and rt.offered(rt.TORCH, "darwin", "arm64")
    assert rt.builds("darwin", rt.ORT_GPU) == {}
    gpu = rt.builds("linux", rt.ORT_GPU)["GPU"]
    assert gpu.kind == rt.ORT_GPU and 1500 < gpu.download_mb < 3000          # PyPI's wheels: about 2 GB
    cmd = rt.pip_command("/t", gpu, "/c.txt", python="py")
    assert cmd[-1] == "onnxruntime-gpu[cuda,cudnn]==1.24.4" and "--index-url" not in cmd      # PyPI
    assert not rt.KINDS[rt.ORT_GPU].on_sys_path and rt.KINDS[rt.TORCH].on_sys_path
    assert rt.KINDS[rt.ORT_GPU].env_dir == engine.ENV_ORT_DIR
    assert os.path.dirname(rt.default_dir(rt.ORT_GPU)) == os.path.dirname(rt.default_dir(rt.TORCH))
    assert rt.default_dir(rt.ORT_GPU) != rt.default_dir(rt.TORCH)


def test_installs_into_its_own_folder_never_on_sys_path(mirror, tmp_path, engine_state):
    target = tmp_path / "Nutzer é" / "onnxruntime-gpu"
    torch_target = tmp_path / "Nutzer é" / "site-packages"
    path = list(sys.path)
    inst, state = _install(target)
    assert state == rt.DONE, inst.error
    assert any(p.replace("_", "-") == "onnxruntime-gpu-1.24.4" for p in inst.installed), inst.installed
    names = sorted(os.listdir(target))
    assert "onnxruntime" in names and "nvidia" in names and "numpy" not in names      # Blender's NumPy stays
    assert sorted(os.listdir(target / "nvidia")) == ["cuda_nvrtc", "cuda_runtime", "cudnn", "cufft", "curand"]
    assert rt.version_in(str(target), "onnxruntime-gpu") == "1.24.4" and rt.folder_mb(str(target)) > 0
    assert not torch_target.exists() and sys.path == path
    # Put to use: the engine's folder, not sys.path; the bundled onnxruntime is what import finds.
    assert rt.activate(str(target), rt.ORT_GPU)
    assert sys.path == path and engine.onnxruntime_dir() == str(target)
    import importlib.util
    assert not importlib.util.find_spec("onnxruntime").origin.startswith(str(target))


def test_the_engine_runs_on_the_installed_cuda_build(mirror, tmp_path):
    target = tmp_path / "onnxruntime-gpu"
    assert _install(target)[1] == rt.DONE
    model = tmp_path / "net.onnx"
    model.write_bytes(b"not parsed by the stand-in")
    code = f"""
        import json, sys
        import numpy
        from photo3d import runtime as rt
        from photo3d.inference import engine
        rt.activate({str(target)!r}, rt.ORT_GPU)
        summary_before = engine.onnx_summary()          # from metadata: nothing imported yet
        assert "onnxruntime" not in sys.modules
        s = engine.onnx_session({str(model)!r}, name="net")
        out = s.run({{"image": numpy.zeros((1, 3, 8, 8), "float32")}})["depth"]
        ort = sys.modules["onnxruntime"]
        print(json.dumps(dict(file=ort.__file__, build=ort.BUILD, preloaded=ort.PRELOADED, provider=s.provider,
                              precision=s.precision, out=float(out.mean()), summary=engine.onnx_summary(),
                              before=summary_before, on_path=any("onnxruntime-gpu" in p for p in sys.path),
                              numpy=numpy.__file__, note=engine.fallback_note(), restart=engine.restart_note())))
    """
    r = _run(code)
    assert r["file"] == str(target / "onnxruntime" / "__init__.py") and r["build"] == "cuda"
    assert r["preloaded"] == [True]                         # NVIDIA's libraries looked for beside it
    assert r["provider"] == "CUDAExecutionProvider" and r["precision"] == "fp32" and r["out"] == 2.0
    assert r["before"] == "ONNX Runtime 1.24.4 (onnxruntime-gpu): loaded with the first network"
    assert r["summary"] == "ONNX Runtime 1.24.4 (onnxruntime-gpu): CUDA, CPU"
    assert not r["on_path"] and not r["numpy"].startswith(str(target))
    assert r["note"] == "" and r["restart"] == ""
    # CUDA cannot load the model (cuDNN missing, a driver too old): the CPU runs it, in one line.
    r = _run(code, {"FAKE_ORT_FAIL": "CUDAExecutionProvider"})
    assert r["provider"] == "CPUExecutionProvider" and r["out"] == 1.0
    assert r["note"] == "net: CUDA: CUDAExecutionProvider could not load cudnn; running on CPU instead"
    # Removed while loaded: the folder goes (Linux), and only a restart unloads it.
    r = _run(f"""
        import json
        from photo3d import runtime as rt
        from photo3d.inference import engine
        rt.activate({str(target)!r}, rt.ORT_GPU)
        engine.onnxruntime()
        restart = rt.remove({str(target)!r}, rt.ORT_GPU)
        print(json.dumps(dict(restart=restart, note=engine.restart_note(), folder=engine.onnxruntime_dir())))
    """)
    assert r["restart"] and r["folder"] == "" and r["note"].startswith("restart Blender to stop using")
    assert not target.exists()


def test_a_broken_gpu_build_falls_back_to_the_bundled_one(tmp_path):
    bad = tmp_path / "onnxruntime-gpu" / "onnxruntime"
    bad.mkdir(parents=True)
    (bad / "__init__.py").write_text("from onnxruntime.capi import missing_native_module\n")
    r = _run(f"""
        import json, sys
        from photo3d.inference import engine
        engine.use_onnxruntime_dir({str(bad.parent)!r})
        ort = engine.onnxruntime()
        print(json.dumps(dict(file=ort.__file__, note=engine.fallback_note(),
                              stale=[m for m in sys.modules if m.startswith("onnxruntime") and
                                     (getattr(sys.modules[m], "__file__", "") or "").startswith({str(bad)!r})])))
    """)
    assert not r["file"].startswith(str(bad)) and r["stale"] == []
    assert r["note"].startswith(f"ONNX Runtime in {bad.parent} failed to load (") and "bundled" in r["note"]


def test_importing_the_models_and_settings_loads_no_onnx_runtime_nor_pytorch():
    """ONNX Runtime GPU installed while Blender runs is used only if no ONNX Runtime was
    imported before: the model registry, the settings and the CLI import none (nor PyTorch)."""
    code = ("import sys\n"
            "import photo3d.inference.depth, photo3d.settings, photo3d.cli\n"
            "from photo3d.inference import depth\n"
            "assert depth.MODELS['depth-anything-v2-small'].precision and depth.MODELS['depth-pro']\n"
            "print(sorted(m for m in ('onnxruntime', 'torch', 'transformers') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip() == "[]", p.stdout


def test_the_loaded_bundled_runtime_stays_and_a_restart_is_asked_for(mirror, tmp_path, engine_state):
    target = tmp_path / "onnxruntime-gpu"
    assert _install(target)[1] == rt.DONE
    bundled = engine.onnxruntime()                      # loaded before the install, as after a first run
    assert not bundled.__file__.startswith(str(target))
    assert rt.activate(str(target), rt.ORT_GPU) and engine.use_onnxruntime_dir(str(target)) is False
    assert engine.restart_note() == f"restart Blender to use the ONNX Runtime in {target} (another one is loaded)"
    assert engine.onnxruntime() is bundled and sys.modules["onnxruntime"] is bundled
    assert rt.remove(str(target), rt.ORT_GPU) is False          # nothing of it was loaded
    assert not target.exists() and engine.onnxruntime_dir() == "" and engine.restart_note() == ""


# --- in Blender -------------------------------------------------------------------------------

@pytest.fixture
def fallback_home(mirror, tmp_path, monkeypatch, engine_state):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    from photo3d.runtime import operators as ops
    target = os.path.join(str(tmp_path / "home"), ".cache", "photo3d", "runtime", "onnxruntime-gpu")
    assert ops.runtime_dir(rt.ORT_GPU) == target
    yield target
    ops.state.installer, ops.state.message, ops.state.kind = None, "", None


@pytest.mark.blender
@pytest.mark.skipif(not ON_X64_LINUX, reason="onnxruntime-gpu is offered on Linux and Windows x64; tested on Linux")
def test_operators_and_preferences(blender, fallback_home):
    bpy = blender
    from photo3d.preferences import PREFERENCE_SETTINGS, Photo3DPreferences
    from photo3d.runtime import operators as ops
    from photo3d.runtime.ui import draw_runtime
    engine.onnxruntime()                                   # the bundled one, loaded as in a Blender that ran a net
    path = list(sys.path)
    layout = FakeLayout(bpy)
    draw_runtime(layout, bpy.context, types.SimpleNamespace(bl_rna=Photo3DPreferences.bl_rna))
    kinds = [(name, getattr(props, "kind", rt.TORCH)) for name, props in layout.operators]
    assert ("photo3d.install_runtime", rt.TORCH) in kinds and ("photo3d.install_runtime", rt.ORT_GPU) in kinds
    assert any(t.startswith("Not installed: the bundled ONNX Runtime") for t in layout.labels)
    assert bpy.ops.photo3d.install_runtime(kind=rt.ORT_GPU) == {"FINISHED"}
    assert ops.state.message == "Installed ONNX Runtime GPU 1.24.4: restart Blender to use it"
    assert os.path.isdir(os.path.join(fallback_home, "onnxruntime")) and sys.path == path
    assert not os.path.exists(ops.runtime_dir(rt.TORCH))         # PyTorch's folder is another one
    layout = FakeLayout(bpy)
    draw_runtime(layout, bpy.context, types.SimpleNamespace(bl_rna=Photo3DPreferences.bl_rna))
    assert any(t.startswith("onnxruntime-gpu 1.24.4 installed (") for t in layout.labels)
    assert any(t.startswith("Restart Blender to use the ONNX Runtime in") for t in layout.labels)
    assert ("photo3d.remove_runtime", rt.ORT_GPU) in [(n, getattr(p, "kind", rt.TORCH)) for n, p in layout.operators]
    # The preferences: device, the ONNX Runtime in use, the restart note, both runtimes.
    prefs = FakeLayout(bpy)
    Photo3DPreferences.draw(types.SimpleNamespace(layout=prefs, bl_rna=Photo3DPreferences.bl_rna,
                                                  **{s.name: s.default for s in PREFERENCE_SETTINGS}), bpy.context)
    assert "device" in prefs.drawn and any(t.startswith("ONNX Runtime ") for t in prefs.labels)
    assert bpy.ops.photo3d.remove_runtime(kind=rt.ORT_GPU) == {"FINISHED"}
    assert ops.state.message.startswith("Removed ONNX Runtime GPU (CUDA): the networks run on the bundled")
    assert not os.path.exists(fallback_home) and engine.restart_note() == ""


EXTENSION_SCRIPT = textwrap.dedent("""
    import os, sys, bpy
    from importlib import import_module
    mod = 'bl_ext.user_default.photo3d'
    if sys.argv[1] == 'install':
        res = bpy.ops.extensions.package_install_files(filepath=sys.argv[2], repo='user_default',
                                                       enable_on_install=True)
        assert res == {'FINISHED'}, res
    else:                                           # Blender's next start: the extension enabled again
        bpy.ops.preferences.addon_enable(module=mod)
    ops = import_module(mod + '.runtime.operators')
    engine = import_module(mod + '.inference.engine')
    target = ops.runtime_dir('onnxruntime-gpu')
    print('TARGET', target)
    if sys.argv[1] == 'install':
        assert 'onnxruntime' not in sys.modules     # registering the extension imports none
        engine.onnxruntime()                        # the bundled one, as in a Blender that ran a net
        assert bpy.ops.photo3d.install_runtime(kind='onnxruntime-gpu') == {'FINISHED'}, ops.state.message
        print('MESSAGE', ops.state.message)
        assert target not in sys.path and engine.onnxruntime_dir() == target
        print('NOTE', engine.restart_note())
    else:
        ort = engine.onnxruntime()                  # the first network imports it: from the folder
        print('LOADED', ort.__file__, engine.onnx_summary(), repr(engine.restart_note()))
        assert target not in sys.path
        assert bpy.ops.photo3d.remove_runtime(kind='onnxruntime-gpu') == {'FINISHED'}
        print('MESSAGE', ops.state.message)
    bpy.ops.preferences.addon_disable(module=mod)
    print('EXTENSION-OK')
""")


@pytest.mark.blender
@pytest.mark.slow
@pytest.mark.skipif(not ON_X64_LINUX, reason="onnxruntime-gpu is offered on Linux and Windows x64; tested on Linux")
def test_installed_extension_keeps_it_in_its_user_folder(mirror, tmp_path, monkeypatch):
    """As Blender users get it (the zip installed as bl_ext.user_default.photo3d): the GPU
    build goes into the extension's user folder beside PyTorch's; Blender, which loaded the
    bundled ONNX Runtime when a network ran, is told to restart; at the next start
    the engine imports the GPU build from that folder (never from sys.path), and Remove
    deletes it."""
    root = os.path.dirname(os.path.dirname(rt.__file__))
    build = subprocess.run([sys.executable, os.path.join(root, "tools", "build_extension.py"), "--out",
                            str(tmp_path / "build"), "--no-wheels"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    script = tmp_path / "ext.py"
    script.write_text(EXTENSION_SCRIPT)
    monkeypatch.setenv("BLENDER_USER_RESOURCES", str(tmp_path / "user"))
    want = os.path.join(str(tmp_path / "user"), "extensions", ".user", "user_default", "photo3d", "onnxruntime-gpu")
    out = []
    for step in ("install", "restart"):
        p = subprocess.run([sys.executable, str(script), step, str(sorted((tmp_path / "build").glob("*.zip"))[0])],
                           capture_output=True, text=True, timeout=300)
        assert "EXTENSION-OK" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
        assert f"TARGET {want}" in p.stdout
        out.append(p.stdout)
    assert "MESSAGE Installed ONNX Runtime GPU 1.24.4: restart Blender to use it" in out[0]
    assert f"NOTE restart Blender to use the ONNX Runtime in {want} (another one is loaded)" in out[0]
    assert f"LOADED {os.path.join(want, 'onnxruntime', '__init__.py')} ONNX Runtime 1.24.4 (onnxruntime-gpu): " \
           "CUDA, CPU ''" in out[1]
    assert "MESSAGE Removed ONNX Runtime GPU (CUDA): restart Blender to unload it" in out[1]
    assert not os.path.exists(want)
