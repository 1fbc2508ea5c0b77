"""Where learned models run: device and precision, threads, one loaded copy per model.

Two engines behind one device setting (``set_device``: auto, cpu or gpu; the CLI's
``--device``, the extension's preferences, ``PHOTO3D_DEVICE``):

* ONNX Runtime (``onnx_session``) for every ONNX network: the best execution provider
  that is there and loads the model, CUDA (onnxruntime-gpu), DirectML (Windows:
  onnxruntime-directml), CoreML (macOS), then the CPU; a provider that fails to create
  the session or to run it once is skipped with one logged line saying why;
* PyTorch (``pick_device``) for models without an ONNX export: CUDA, then Apple's MPS,
  then the CPU; half precision on GPUs, fp32 on CPUs.

A model is loaded once and kept while Blender runs (``release`` frees it); running out of
memory becomes a clear message with what to try instead. Neither engine is imported until
a model needs it. ``runs()`` says which models ran where (``bench`` prints it).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InputError

_lock = threading.Lock()
_loaded: dict[str, object] = {}
log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu")
# What PHOTO3D_DEVICE and callers may also say: a GPU by its API's name.
_GPU_NAMES = ("gpu", "cuda", "mps", "dml", "directml", "coreml")
_device: str | None = None          # set_device(); None: PHOTO3D_DEVICE, else auto


def normalise_device(text: str | None) -> str:
    """auto, cpu or gpu from a setting, an argument or PHOTO3D_DEVICE (cuda, mps, ... mean gpu)."""
    t = (text or "auto").strip().lower()
    if t in DEVICES:
        return t
    if t.split(":")[0] in _GPU_NAMES:
        return "gpu"
    raise InputError(f"unknown device {text!r}: choose auto, cpu or gpu")


def set_device(device: str | None):
    """Where models run from now on when a call names no device (the pipeline sets it from
    its settings). "auto" or None leaves the choice to PHOTO3D_DEVICE, else automatic."""
    global _device
    d = normalise_device(device)
    _device = None if d == "auto" else d


def device_choice(device: str | None = None) -> str:
    """The device in effect: ``device``, else ``set_device``'s, else PHOTO3D_DEVICE, else auto."""
    return normalise_device(device or _device or os.environ.get("PHOTO3D_DEVICE") or "auto")


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def pick_device(prefer: str | None = None) -> str:
    """PyTorch's device: 'cuda', 'mps' or 'cpu' (``prefer``, else the device setting: a
    torch device name is taken as it is; gpu insists on CUDA or MPS)."""
    import torch
    want = (prefer or _device or os.environ.get("PHOTO3D_DEVICE") or "auto").lower()
    if want not in ("auto", "gpu"):
        return want
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    if want == "gpu":
        raise InputError("device gpu: PyTorch sees no GPU here (no CUDA, no Apple MPS); use device auto or cpu")
    return "cpu"


def pick_dtype(device: str):
    import torch
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def set_threads():
    import torch
    n = int(os.environ.get("PHOTO3D_THREADS", "0")) or max(1, (os.cpu_count() or 2))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def get(key: str, load: Callable[[], object]):
    """The model cached under ``key``, loading it with ``load()`` the first time."""
    with _lock:
        if key not in _loaded:
            _loaded[key] = load()
        return _loaded[key]


def release(key: str | None = None):
    """Forget one loaded model (or all) and give their memory back."""
    with _lock:
        for k in ([key] if key else list(_loaded)):
            _loaded.pop(k, None)
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def loaded() -> list[str]:
    return list(_loaded)


def out_of_memory(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, MemoryError) or "out of memory" in text or "cuda error: out of memory" in text


def oom_message(name: str, device: str) -> InputError:
    hint = "try a smaller working resolution or the CPU (--device cpu)" if device != "cpu" \
        else "try a smaller working resolution or a smaller model (depth-anything-v2-small)"
    return InputError(f"depth model {name} ran out of memory on {device}: {hint}")




# --- what ran where (for bench) -------------------------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    role: str            # "depth model", "portrait", "inpainting", ...
    name: str            # the model
    engine: str          # onnxruntime, opencv-dnn, torch
    provider: str        # CPUExecutionProvider, CUDAExecutionProvider, ... (torch: cuda, mps, cpu)
    precision: str       # fp32, fp16, int8, ...

    def __str__(self) -> str:
        return f"{self.name} via {self.engine} {self.provider} {self.precision}"


_runs: dict[tuple[str, str], RunInfo] = {}


def record_run(role: str, name: str, engine: str, provider: str, precision: str):
    """Note that a model ran (the last run of each model is kept)."""
    _runs[(role, name)] = RunInfo(role, name, engine, provider, precision)


def runs() -> list[RunInfo]:
    """The models that ran since ``clear_runs``, in the order they first ran."""
    return list(_runs.values())


def clear_runs():
    _runs.clear()


# --- ONNX Runtime ---------------------------------------------------------------------------

CPU = "CPUExecutionProvider"
# GPU execution providers, best first: CUDA comes with onnxruntime-gpu (NVIDIA; Linux and
# Windows), DirectML with onnxruntime-directml (Windows, any DirectX 12 GPU), CoreML with
# the standard macOS wheel (Apple GPU and Neural Engine).
GPU_PROVIDERS = ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")
SHORT_NAMES = {"CUDAExecutionProvider": "CUDA", "DmlExecutionProvider": "DirectML",
               "CoreMLExecutionProvider": "CoreML", CPU: "CPU"}
# Options per provider. CUDA: a quick heuristic for convolution algorithms instead of an
# exhaustive search for each new input size (photo3d's sizes follow the photo's aspect).
# CoreML: an ML Program runs float16 models and uses GPU and Neural Engine.
PROVIDER_OPTIONS = {
    "CUDAExecutionProvider": {"cudnn_conv_algo_search": "HEURISTIC"},
    "CoreMLExecutionProvider": {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"},
}
# A symbolic dimension in the first, tiny run that checks a GPU provider: a multiple of
# 7, 14, 16 and 32, the strides of the networks photo3d runs (batch dims get 1).
PROBE_SIDE = 224
_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
           "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8",
           "tensor(bool)": "bool"}


# A folder holding another ONNX Runtime build (``pip install --target DIR
# "onnxruntime-gpu[cuda,cudnn]"``: CUDA on Linux and Windows), used instead of the extension's
# own: the one the runtime installer put in place (``use_onnxruntime_dir``), else this variable's.
ENV_ORT_DIR = "PHOTO3D_ONNXRUNTIME_DIR"
_ort = None
_ort_dir: str | None = None         # use_onnxruntime_dir()
_ort_loaded_from = ""               # the folder onnxruntime() imported it from, if any


def use_onnxruntime_dir(folder: str | None) -> bool:
    """Import ONNX Runtime from ``folder`` from now on (None: PHOTO3D_ONNXRUNTIME_DIR, else the
    installed one). False when another ONNX Runtime is loaded already: Python cannot swap an
    imported extension module, so only a restart brings the new one (``restart_note`` says so)."""
    global _ort_dir
    _ort_dir = os.path.abspath(folder) if folder else None
    return not restart_note()


def onnxruntime_dir() -> str:
    """The folder whose ONNX Runtime is wanted, or "" for the installed one."""
    return _ort_dir or os.environ.get(ENV_ORT_DIR, "")


def _has_ort(folder: str) -> bool:
    return bool(folder) and os.path.isfile(os.path.join(folder, "onnxruntime", "__init__.py"))


def _inside(path: str, folder: str) -> bool:
    p, root = os.path.normcase(os.path.realpath(path)), os.path.normcase(os.path.realpath(folder))
    return p == root or p.startswith(os.path.join(root, ""))


def restart_note() -> str:
    """One line when the ONNX Runtime loaded is not the one wanted now (a GPU build installed
    or removed after ONNX Runtime was imported), else ""."""
    loaded = getattr(sys.modules.get("onnxruntime"), "__file__", None) or ""
    if not loaded:
        return ""
    folder = onnxruntime_dir()
    if _has_ort(folder):
        return "" if _inside(loaded, folder) else \
            f"restart Blender to use the ONNX Runtime in {folder} (another one is loaded)"
    if _ort_loaded_from:
        return f"restart Blender to stop using the ONNX Runtime from {_ort_loaded_from}"
    return ""


def onnxruntime():
    """The ``onnxruntime`` module: from ``onnxruntime_dir()`` when that folder holds one
    (imported from there alone: nothing else in it shadows Blender's packages or goes on
    sys.path), else the installed one; a folder whose ONNX Runtime fails to import is
    skipped with one logged line. A CUDA build gets NVIDIA's libraries preloaded from
    beside it (the nvidia-* wheels of its ``cuda`` and ``cudnn`` extras). ImportError when
    there is none."""
    global _ort, _ort_loaded_from
    if _ort is not None:
        return _ort
    folder = onnxruntime_dir()
    if _has_ort(folder) and "onnxruntime" not in sys.modules:
        try:
            _import_from(folder)
            _ort_loaded_from = folder
        except Exception as e:  # noqa: BLE001 - a broken or foreign build: the bundled one still runs
            note_fallback(f"ONNX Runtime in {folder} failed to load ({error_text(e)}); using the bundled one")
            log.warning("%s", _fallback)
    elif folder and "onnxruntime" in sys.modules and not _inside(sys.modules["onnxruntime"].__file__ or "", folder):
        log.warning("ONNX Runtime in %s is not used: another was loaded before, from %s: restart to use it",
                    folder, os.path.dirname(getattr(sys.modules["onnxruntime"], "__file__", "") or "?"))
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers() and hasattr(ort, "preload_dlls"):
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):      # it prints what it misses: sessions say it better
            try:
                ort.preload_dlls()
            except Exception:  # noqa: BLE001 - without them CUDA fails to load, and the CPU runs
                pass
    _ort = ort
    return ort


def _import_from(folder: str):
    """``onnxruntime`` from ``folder`` without putting the folder on sys.path; on failure
    every part of it that got imported is forgotten again."""
    import importlib.util
    init = os.path.join(folder, "onnxruntime", "__init__.py")
    spec = importlib.util.spec_from_file_location("onnxruntime", init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["onnxruntime"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for name in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
            del sys.modules[name]
        raise


_fallback = ""
_fallbacks = 0


def note_fallback(text: str):
    """Remember the latest fallback (a provider or a runtime that could not be used), for the
    preferences and the operator's report."""
    global _fallback, _fallbacks
    _fallback = text
    _fallbacks += 1


def fallback_count() -> int:
    """How many fallbacks were noted so far: a job compares it before and after."""
    return _fallbacks


def fallback_note() -> str:
    """The latest fallback's one line (why a GPU or the installed GPU build is not used), or ""."""
    return _fallback


def onnxruntime_available() -> bool:
    try:
        onnxruntime()
        return True
    except ImportError:
        return False


def pick_precision(provider: str) -> str:
    """The weights a provider runs best: fp16 on GPU providers, fp32 on the CPU (its
    kernels are float32; half-precision models run slower there, when they run)."""
    return "fp16" if provider in GPU_PROVIDERS else "fp32"


def provider_order(device: str | None = None, available: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The execution providers to try, best first, for ``device`` (see ``device_choice``).
    InputError when gpu is asked for and this ONNX Runtime has no GPU provider."""
    if available is None:
        available = onnxruntime().get_available_providers()
    device = device_choice(device)
    gpus = [p for p in GPU_PROVIDERS if p in available]
    if device == "cpu":
        return [CPU]
    if device == "gpu":
        if not gpus:
            raise InputError(no_gpu_message())
        return gpus
    return gpus + [CPU]


def no_gpu_message(platform: str = sys.platform) -> str:
    try:
        ort = onnxruntime()
        build = f"this ONNX Runtime ({_distribution(ort)} {ort.__version__}) has no GPU execution provider"
    except ImportError:
        build = "ONNX Runtime is not installed"
    if platform == "win32":
        hint = "the extension's onnxruntime-directml runs on any DirectX 12 GPU"
    elif platform == "darwin":
        hint = "the onnxruntime wheel for macOS has CoreML"
    else:
        hint = ("for an NVIDIA GPU install ONNX Runtime GPU (CUDA) in the extension's preferences, or set "
                f"{ENV_ORT_DIR} to an onnxruntime-gpu install (docs/performance.md)")
    return f"device gpu: {build}; {hint}; or choose device auto or cpu"


def onnx_summary() -> str:
    """One line: which ONNX Runtime is there and the execution providers it offers. Before
    any network ran, read from its metadata without importing it: an ONNX Runtime GPU
    installed meanwhile is then still used without a restart."""
    if _ort is None and "onnxruntime" not in sys.modules:
        dist, version = _wanted_distribution()
        if version:
            return f"ONNX Runtime {version} ({dist}): loaded with the first network"
    try:
        ort = onnxruntime()
    except ImportError:
        return "ONNX Runtime: not installed (the networks cannot run; the classical depth can)"
    names = [SHORT_NAMES[p] for p in (*GPU_PROVIDERS, CPU) if p in ort.get_available_providers()]
    return f"ONNX Runtime {ort.__version__} ({_distribution(ort)}): {', '.join(names)}"


def _wanted_distribution() -> tuple[str, str | None]:
    """(distribution, version) of the ONNX Runtime ``onnxruntime()`` would import, from metadata."""
    import importlib.metadata
    folder = onnxruntime_dir()
    for name in ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime"):
        try:
            dists = importlib.metadata.distributions(name=name, path=[folder]) if _has_ort(folder) else \
                [importlib.metadata.distribution(name)]
            for d in dists:
                return name, d.version
        except importlib.metadata.PackageNotFoundError:
            continue
    return "onnxruntime", None


def _distribution(ort) -> str:
    """onnxruntime, onnxruntime-gpu or onnxruntime-directml: the metadata beside the module."""
    import re
    site = os.path.dirname(os.path.dirname(os.path.abspath(ort.__file__ or "")))
    try:
        for entry in sorted(os.listdir(site)):
            m = re.fullmatch(r"(onnxruntime(?:[-_](?:gpu|directml))?)-[^-]+\.dist-info", entry, re.I)
            if m:
                return m.group(1).replace("_", "-").lower()
    except OSError:
        pass
    return "onnxruntime"


def unparsable(e: BaseException) -> bool:
    """Whether ONNX Runtime failed because the file itself is damaged (not a model it can parse)."""
    text = str(e)
    return ("INVALID_PROTOBUF" in text or "protobuf parsing failed" in text.lower()
            or type(e).__name__ in ("InvalidProtobuf", "InvalidGraph"))


class ModelLoadError(InputError):
    """No execution provider, the CPU included, could load a model file (``reason`` says why;
    ``path``: the file the CPU was given, so that a caller offering several knows which failed)."""

    def __init__(self, name: str, reason: str, path: str = ""):
        super().__init__(f"cannot load {name}: {reason}")
        self.reason, self.path = reason, path


class OnnxSession:
    """One ONNX model loaded in ONNX Runtime: ``run({input: array}) -> {output: array}``.
    ``provider`` and ``precision`` say where and how it runs (for ``bench`` and messages);
    ``inputs`` maps input names to shapes (symbolic dimensions as strings or None),
    ``input_types`` to NumPy dtype names."""

    engine = "onnxruntime"

    def __init__(self, session, provider: str, precision: str, name: str = "", path: str = "",
                 role: str = "model"):
        self.name, self.role = name or os.path.basename(path) or "model", role
        self.files: tuple[str, ...] = (path,)         # every file of the model (one per precision)
        self._lock = threading.Lock()
        # With device auto, a GPU session that fails a real run (out of GPU memory at a
        # large size, an operator the probe did not reach) is replaced by a CPU one.
        self.cpu_fallback: Callable[[], OnnxSession] | None = None
        self.unreadable: tuple[str, ...] = ()        # files a GPU provider found damaged on the way here
        self._use(session, provider, precision, path)

    def _use(self, session, provider: str, precision: str, path: str):
        self.session, self.provider, self.precision, self.path = session, provider, precision, path
        self.inputs = {i.name: i.shape for i in session.get_inputs()}
        self.input_types = {i.name: _DTYPES.get(i.type, "float32") for i in session.get_inputs()}
        self.outputs = [o.name for o in session.get_outputs()]

    @property
    def device(self) -> str:
        return "cpu" if self.provider == CPU else "gpu"

    def describe(self) -> str:
        return f"{self.name} via {self.engine} {self.provider} {self.precision}"

    def run(self, feeds: dict) -> dict:
        with self._lock:
            try:
                values = self.session.run(self.outputs, feeds)
            except Exception as e:
                if self.cpu_fallback is None:
                    raise
                make_cpu, self.cpu_fallback = self.cpu_fallback, None
                cpu = make_cpu()
                note_fallback(f"{self.name}: {SHORT_NAMES.get(self.provider, self.provider)} failed to run it "
                              f"({error_text(e)}); running on the CPU instead")
                log.warning("%s", _fallback)
                self._use(cpu.session, cpu.provider, cpu.precision, cpu.path)
                feeds = {k: v.astype(self.input_types.get(k, v.dtype), copy=False) for k, v in feeds.items()}
                values = self.session.run(self.outputs, feeds)
        record_run(self.role, self.name, self.engine, self.provider, self.precision)
        return dict(zip(self.outputs, values))


def onnx_session(path, device: str | None = None, *, name: str = "", role: str = "model",
                 probe: dict | bool | None = None) -> OnnxSession:
    """The ONNX model at ``path`` loaded once (cached by file and device) on the best
    execution provider for ``device`` (auto, cpu, gpu; None: ``device_choice()``).

    ``path`` may map precisions to files (``{"fp16": ..., "fp32": ...}``): each provider
    gets the file ``pick_precision`` names, else the other. On GPU providers the new
    session runs once on ``probe`` (feeds; None: made from the inputs' shapes, symbolic
    dimensions PROBE_SIDE; False: no probe run); a provider whose session cannot be made or
    fails that run is skipped. With auto, falling back is logged in one line; with gpu,
    no GPU loading it is an InputError."""
    files = _files_by_precision(path)
    device = device_choice(device)
    stamp = tuple((p, *_stat(p)) for p in files.values())
    key = f"onnx:{stamp}:{device}"
    with _lock:
        if key not in _loaded:
            # The same files on another device, or since replaced on disk, are superseded: their
            # sessions (a GPU's memory, for a large model) go before the new one loads.
            paths = set(files.values())
            for k in [k for k, v in _loaded.items() if isinstance(v, OnnxSession) and paths & set(v.files)]:
                _loaded.pop(k)
    return get(key, lambda: _load(files, device, name or _model_name(next(iter(files.values()))), role, probe))


def release_onnx(path: str | None = None):
    """Forget the ONNX sessions of one model file (or of all)."""
    with _lock:
        for key in [k for k in _loaded if k.startswith("onnx:") and (path is None or _session_of(k, path))]:
            _loaded.pop(key, None)


def _session_of(key: str, path: str) -> bool:
    session = _loaded.get(key)
    return isinstance(session, OnnxSession) and os.path.abspath(path) in session.files


def _files_by_precision(path) -> dict[str, str]:
    if isinstance(path, dict):
        files = {str(k): os.path.abspath(os.fspath(v)) for k, v in path.items() if v}
        if not files:
            raise InputError("no ONNX model file given")
        return files
    return {"": os.path.abspath(os.fspath(path))}


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        raise InputError(f"model file not found: {path}") from None
    return st.st_mtime_ns, st.st_size


def _model_name(path: str) -> str:
    """A readable name for messages: a Hugging Face cache's repository and file, else the file."""
    parts = path.replace("\\", "/").split("/")
    for i, part in enumerate(parts):
        if part.startswith("models--"):
            repo = part[len("models--"):].replace("--", "/")
            return f"{repo}/{'/'.join(parts[i + 3:])}" if len(parts) > i + 3 else repo
    return os.path.basename(path)


def _choose_file(files: dict[str, str], provider: str) -> tuple[str, str]:
    """(precision, path) for a provider from the files on offer."""
    if "" in files:
        return "", files[""]
    want = pick_precision(provider)
    if want in files:
        return want, files[want]
    fallback = "fp32" if "fp32" in files else next(iter(files))
    return fallback, files[fallback]


def _load(files: dict[str, str], device: str, name: str, role: str, probe) -> OnnxSession:
    try:
        onnxruntime()
    except ImportError:
        raise InputError(f"{name} needs ONNX Runtime (pip install onnxruntime), which is not installed") from None
    failures: list[str] = []
    unreadable: list[str] = []
    for provider in provider_order(device):
        precision, path = _choose_file(files, provider)
        try:
            sess = _create_session(path, provider)
            got = sess.get_providers()[0] if sess.get_providers() else CPU
            if got != provider:
                # ONNX Runtime quietly fell back (e.g. CUDA's libraries missing): not this provider.
                raise RuntimeError(f"ONNX Runtime could not enable it and chose {SHORT_NAMES.get(got, got)}")
            onnx = OnnxSession(sess, provider, precision or _precision_of(sess), name, path, role)
            onnx.files = tuple(files.values())
            if provider != CPU and probe is not False:
                onnx.session.run(onnx.outputs, probe if isinstance(probe, dict) else _probe_feeds(onnx))
        except Exception as e:  # noqa: BLE001 - any failure of a provider means: try the next one
            if provider == CPU:
                raise ModelLoadError(name, error_text(e), path) from None
            failures.append(f"{SHORT_NAMES.get(provider, provider)}: {error_text(e)}")
            if unparsable(e) and path not in unreadable:
                unreadable.append(path)
            continue
        onnx.unreadable = tuple(p for p in unreadable if p != path)
        if failures:
            note_fallback(f"{name}: {'; '.join(failures)}; running on {SHORT_NAMES.get(provider, provider)} instead")
            log.warning("%s", _fallback)
        if provider != CPU and device == "auto":
            onnx.cpu_fallback = lambda: _load(files, "cpu", name, role, False)
        return onnx
    raise InputError(f"device gpu: no GPU could run {name} ({'; '.join(failures)}); choose device auto or cpu")


def _session_options(provider: str):
    ort = onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3            # errors only: node placement notes would flood Blender's console
    n = int(os.environ.get("PHOTO3D_THREADS", "0") or 0)
    if n:
        opts.intra_op_num_threads = n
    # Idle worker threads sleep instead of spinning: Blender's own threads share the CPU
    # (and on a busy 2-core machine spinning made the bundled net a third slower).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if provider == "DmlExecutionProvider":
        # DirectML supports neither memory patterns nor parallel execution.
        opts.enable_mem_pattern = False
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


def _create_session(path: str, provider: str):
    """An ONNX Runtime session of ``path`` on ``provider`` alone (tests replace this)."""
    ort = onnxruntime()
    providers = [(provider, PROVIDER_OPTIONS[provider]) if provider in PROVIDER_OPTIONS else provider]
    opts = _session_options(provider)
    # Weights in a separate file beside the model (``model.onnx_data``, as large exports
    # have them): from bytes, ONNX Runtime finds that file only in the folder named here.
    opts.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                  os.path.dirname(os.path.abspath(path)))
    # ONNX Runtime cannot open every non-ASCII path on Windows: such a model is handed over as
    # bytes (one copy; a 1.3 GB model read through NumPy first was held twice).
    if path.isascii():
        source = path
    else:
        with open(path, "rb") as f:
            source = f.read()
    return ort.InferenceSession(source, sess_options=opts, providers=providers)


def _precision_of(sess) -> str:
    types = {i.type for i in sess.get_inputs()}
    return "fp16" if "tensor(float16)" in types else "fp32"


def _probe_feeds(onnx: OnnxSession) -> dict:
    import numpy as np
    feeds = {}
    for name, shape in onnx.inputs.items():
        dims = [d if isinstance(d, int) and d > 0 else (1 if i == 0 else PROBE_SIDE)
                for i, d in enumerate(shape or [])]
        feeds[name] = np.full(dims, 0.5 if "float" in onnx.input_types[name] else 0, onnx.input_types[name])
    return feeds


def error_text(e: BaseException) -> str:
    """An ONNX Runtime error in one short line, without its status prefix."""
    text = " ".join(str(e).split()) or type(e).__name__
    for prefix in ("[ONNXRuntimeError] :",):
        if text.startswith(prefix):
            text = text.split(":", 3)[-1].strip()
    # Long paths sit in the middle of ONNX Runtime's messages, the cause at their end: keep both ends.
    return text if len(text) <= 200 else text[:97] + "..." + text[-100:]
