"""What gets installed, from where: the runtime kinds (PyTorch; ONNX Runtime's CUDA build),
their builds and package lists, and pip's command line (with the settings a studio can
change through the environment)."""
from __future__ import annotations

import os
import platform as _platform
import shlex
import sys
from dataclasses import dataclass

PACKAGES = ("torch>=2.2", "transformers>=4.50,<5", "huggingface_hub", "safetensors")
# onnxruntime-gpu's extras bring NVIDIA's CUDA 12 and cuDNN 9 libraries as wheels (nvidia-*-cu12),
# which its preload_dlls() loads from beside it: nothing to install system-wide.
ORT_GPU_PACKAGES = ("onnxruntime-gpu[cuda,cudnn]==1.24.4",)
ENV_PIP_ARGS = "PHOTO3D_PIP_ARGS"
ENV_PACKAGES = "PHOTO3D_RUNTIME_PACKAGES"
ENV_ORT_PACKAGES = "PHOTO3D_ONNXRUNTIME_PACKAGES"
TORCH, ORT_GPU = "torch", "onnxruntime-gpu"


@dataclass(frozen=True)
class Kind:
    """One installable runtime: what it is, where it goes, how it is used once installed."""
    key: str                     # TORCH or ORT_GPU
    name: str                    # for messages: "PyTorch", "ONNX Runtime GPU (CUDA)"
    folder: str                  # its folder's name in the extension's user folder
    env_dir: str                 # the environment variable that names that folder instead
    env_packages: str            # ... and the one that replaces the package list
    packages: tuple[str, ...]
    modules: tuple[str, ...]     # once imported from the folder, only a restart unloads them
    on_sys_path: bool            # appended to sys.path; else only the engine imports from it
    machines: tuple[tuple[str, str], ...] = ()     # (sys.platform, machine) it exists for; () everywhere


KINDS = {
    TORCH: Kind(TORCH, "PyTorch", "site-packages", "PHOTO3D_RUNTIME_DIR", ENV_PACKAGES, PACKAGES,
                ("torch", "transformers"), True),
    # Never on sys.path: the extension's own onnxruntime (CPU, DirectML) would be shadowed by,
    # or mixed with, the CUDA build. The engine imports it from its folder alone.
    ORT_GPU: Kind(ORT_GPU, "ONNX Runtime GPU (CUDA)", "onnxruntime-gpu", "PHOTO3D_ONNXRUNTIME_DIR",
                  ENV_ORT_PACKAGES, ORT_GPU_PACKAGES, ("onnxruntime",), False,
                  (("linux", "x86_64"), ("win32", "amd64"))),
}


def kind_of(kind: str | Kind) -> Kind:
    return kind if isinstance(kind, Kind) else KINDS[kind]


def offered(kind: str | Kind, platform: str = sys.platform, machine: str | None = None) -> bool:
    """Whether ``kind`` can be installed on this platform (onnxruntime-gpu: Linux and Windows on x64)."""
    k = kind_of(kind)
    machine = (machine or _platform.machine()).lower()
    return not k.machines or any(platform.startswith(p) and machine == m for p, m in k.machines)
PYPI = "https://pypi.org/simple"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"     # Windows: PyPI's torch there is CPU-only


@dataclass(frozen=True)
class Build:
    key: str                  # "CPU" or "GPU"
    label: str
    description: str
    index_args: tuple[str, ...]
    download_mb: int          # roughly what pip downloads
    disk_mb: int              # roughly what the installed runtime and its staging take
    kind: str = TORCH

    def size_text(self) -> str:
        return mb_text(self.download_mb)


def builds(platform: str = sys.platform, kind: str = TORCH) -> dict[str, Build]:
    """The choices for ``kind``, as they are on ``platform`` (``sys.platform``): PyTorch's CPU
    and GPU builds; ONNX Runtime's one CUDA build from PyPI (none where it is not offered)."""
    if kind == ORT_GPU:
        if not offered(ORT_GPU, platform, "amd64" if platform == "win32" else "x86_64"):
            return {}
        # Measured on PyPI for 1.24.4 (cp311): 1.98 GB of wheels on Linux x64, 1.86 GB on
        # Windows x64 (cuDNN 0.7 GB, cuBLAS 0.6 GB, onnxruntime-gpu 0.25 GB, cuFFT 0.2 GB, ...).
        return {"GPU": Build("GPU", "GPU (CUDA)", "ONNX Runtime's CUDA build and NVIDIA's CUDA 12 and cuDNN 9 "
                                                  "libraries, for NVIDIA graphics cards", (), 2000, 6000, ORT_GPU)}
    if platform == "darwin":
        mps = ("Apple GPU", "PyTorch from PyPI: runs on the Apple GPU (MPS) where there is one")
        return {k: Build(k, mps[0], mps[1], (), 150, 900) for k in ("CPU", "GPU")}
    cpu_index = ("--index-url", TORCH_CPU_INDEX, "--extra-index-url", PYPI)
    gpu_index = ("--index-url", TORCH_CUDA_INDEX, "--extra-index-url", PYPI) if platform == "win32" else ()
    return {
        "CPU": Build("CPU", "CPU", "PyTorch's CPU build: works everywhere, a smaller download", cpu_index, 250, 1500),
        "GPU": Build("GPU", "GPU (CUDA)", "PyTorch with CUDA for NVIDIA graphics cards: much faster depth, "
                                          "a download of several GB", gpu_index, 3000, 9000),
    }


def mb_text(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB" if mb >= 1 else f"{mb * 1000:.0f} kB"


def extra_pip_args(env=None) -> list[str]:
    text = (os.environ if env is None else env).get(ENV_PIP_ARGS, "").strip()
    if not text:
        return []
    if os.name == "nt":          # keep backslashes in Windows paths; drop the quotes around them
        return [a[1:-1] if len(a) > 1 and a[0] == a[-1] and a[0] in "\"'" else a
                for a in shlex.split(text, posix=False)]
    return shlex.split(text)


def uses_network(env=None) -> bool:
    """Whether the install would reach out to an index (``--no-index`` mirrors do not)."""
    return "--no-index" not in extra_pip_args(env)


def packages(env=None, kind: str = TORCH) -> list[str]:
    k = kind_of(kind)
    text = (os.environ if env is None else env).get(k.env_packages, "").strip()
    return text.split() if text else list(k.packages)


def constraints_text() -> str:
    """Pins for pip: the NumPy that is running (Blender's) stays the one torch and transformers see."""
    import numpy
    return f"numpy=={numpy.__version__}\n"


def own_indexes(env=None) -> bool:
    """The build's indexes are used (``PHOTO3D_PIP_ARGS`` names none of its own)."""
    return not any(a in ("--no-index", "-i", "--index-url") or a.startswith("--index-url=")
                   for a in extra_pip_args(env))


def pip_command(target: str, build: Build, constraints: str, pkgs=None, python: str | None = None,
                env=None, raw_progress: bool = True) -> list[str]:
    """``python -m pip install --target ...`` for the chosen build and packages (the build's
    kind's, unless ``pkgs`` names them): an argument
    list, never a shell line (paths with spaces need no quoting)."""
    extra = extra_pip_args(env)
    return [python or sys.executable, "-m", "pip", "install", "--target", target, "--constraint", constraints,
            "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
            "--progress-bar", "raw" if raw_progress else "off",
            *(build.index_args if own_indexes(env) else ()), *extra,
            *(packages(env, build.kind) if pkgs is None else pkgs)]
