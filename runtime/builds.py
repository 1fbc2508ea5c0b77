"""What gets installed, from where: the CPU and GPU builds of PyTorch, the package list, and
pip's command line (with the settings a studio can change through the environment)."""
from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass

PACKAGES = ("torch>=2.2", "transformers>=4.50,<5", "huggingface_hub", "safetensors")
ENV_PIP_ARGS = "PHOTO3D_PIP_ARGS"
ENV_PACKAGES = "PHOTO3D_RUNTIME_PACKAGES"
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

    def size_text(self) -> str:
        return mb_text(self.download_mb)


def builds(platform: str = sys.platform) -> dict[str, Build]:
    """The two choices, as they are on ``platform`` (``sys.platform``)."""
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


def packages(env=None) -> list[str]:
    text = (os.environ if env is None else env).get(ENV_PACKAGES, "").strip()
    return text.split() if text else list(PACKAGES)


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
    """``python -m pip install --target ...`` for the chosen build and packages: an argument
    list, never a shell line (paths with spaces need no quoting)."""
    extra = extra_pip_args(env)
    return [python or sys.executable, "-m", "pip", "install", "--target", target, "--constraint", constraints,
            "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
            "--progress-bar", "raw" if raw_progress else "off",
            *(build.index_args if own_indexes(env) else ()), *extra,
            *(packages(env) if pkgs is None else pkgs)]
