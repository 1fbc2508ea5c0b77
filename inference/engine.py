"""Where learned models run: device and precision, threads, one loaded copy per model.

The equivalent of a mobile inference engine's backend selection for PyTorch models:
CUDA, then Apple's MPS, then the CPU; half precision on GPUs, fp32 on CPUs; a model is
loaded once and kept while Blender runs (``release`` frees it). Running out of memory
becomes a clear message with what to try instead. PyTorch is imported only when a model
needs it, so the rest of photo3d runs without it.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .errors import InputError

_lock = threading.Lock()
_loaded: dict[str, object] = {}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def pick_device(prefer: str | None = None) -> str:
    """'cuda', 'mps' or 'cpu' (``PHOTO3D_DEVICE`` or ``prefer`` overrides)."""
    import torch
    want = (prefer or os.environ.get("PHOTO3D_DEVICE") or "auto").lower()
    if want != "auto":
        return want
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
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
    hint = "try a smaller working resolution or the CPU (PHOTO3D_DEVICE=cpu)" if device != "cpu" \
        else "try a smaller working resolution or a smaller model (depth-anything-v2-small)"
    return InputError(f"depth model {name} ran out of memory on {device}: {hint}")


# --- ONNX Runtime ---------------------------------------------------------------------------

class OnnxSession:
    """One ONNX model loaded in ONNX Runtime: ``run({input: array}) -> {output: array}``.
    ``provider`` and ``precision`` say where and how it runs (for ``bench`` and messages)."""

    def __init__(self, session, provider: str, precision: str):
        self.session, self.provider, self.precision = session, provider, precision
        self.inputs = {i.name: i.shape for i in session.get_inputs()}
        self.outputs = [o.name for o in session.get_outputs()]
        self._lock = threading.Lock()

    def run(self, feeds: dict) -> dict:
        with self._lock:
            values = self.session.run(self.outputs, feeds)
        return dict(zip(self.outputs, values))


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


def onnx_session(path: str, device: str | None = None) -> OnnxSession:
    """The ONNX model at ``path`` loaded once (cached by path and device). A first, CPU-only
    version: provider choice per platform comes with the engine work of issue 18."""
    import onnxruntime as ort

    def load():
        from .files import read_bytes
        opts = ort.SessionOptions()
        n = int(os.environ.get("PHOTO3D_THREADS", "0"))
        if n:
            opts.intra_op_num_threads = n
        # Weights in a separate file beside the model (``model.onnx_data``, as large exports
        # have them): from bytes, ONNX Runtime finds that file only in the folder named here.
        opts.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                      os.path.dirname(os.path.abspath(path)))
        # Bytes, not the path: ONNX Runtime cannot open every non-ASCII path on Windows.
        sess = ort.InferenceSession(read_bytes(path).tobytes(), sess_options=opts, providers=["CPUExecutionProvider"])
        return OnnxSession(sess, "CPUExecutionProvider", "fp32")

    return get(f"onnx:{os.path.abspath(path)}:{device or 'auto'}", load)
