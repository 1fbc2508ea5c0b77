"""Runtimes on demand, each of its kind (``builds.KINDS``) in its own folder:

- PyTorch and transformers, for the depth models without an ONNX export. The extension ships
  no PyTorch (far too big to bundle): ``torch``, ``transformers``, ``huggingface_hub`` and
  ``safetensors`` are installed with ``python -m pip install --target`` into a private folder
  (Blender: the extension's user folder; elsewhere ``PHOTO3D_RUNTIME_DIR`` or
  ``~/.cache/photo3d/runtime/site-packages``) that is *appended* to ``sys.path``, so nothing in
  it shadows what Blender ships;
- ONNX Runtime GPU (CUDA; Linux and Windows on x64): ``onnxruntime-gpu[cuda,cudnn]`` with
  NVIDIA's libraries, into ``onnxruntime-gpu`` beside it (``PHOTO3D_ONNXRUNTIME_DIR``), never
  on ``sys.path``: the engine imports that onnxruntime from its folder instead of the bundled
  CPU/DirectML one (``engine.use_onnxruntime_dir``), which stays untouched.

- ``builds``: the kinds, PyTorch's CPU and GPU builds and pip's command line: "CPU" (PyTorch's CPU index on
  Linux and Windows, a few hundred MB) or "GPU" (CUDA: PyPI's torch on Linux, PyTorch's CUDA
  index on Windows; GBs); on macOS PyPI's torch already uses the Apple GPU (MPS).
  ``PHOTO3D_PIP_ARGS`` adds pip arguments (a studio's wheel mirror: ``--no-index
  --find-links /mirror``; an ``--index-url`` or ``--no-index`` there replaces the build's
  indexes), ``PHOTO3D_RUNTIME_PACKAGES`` replaces the package list;
- ``installer``: one install, staged and moved into place whole; ``pip_output`` reads pip;
- ``folder``: on and off ``sys.path``, removal, leftovers; ``distributions``: what is there;
  ``paths``: where it lives; ``files``: moves and deletes that also work on Windows;
- ``operators`` and ``ui`` (bpy): the buttons, loaded only by ``register()``.

The names below are the bpy-free API, for the CLI, scripts and tests.
"""
from .builds import (
    ENV_ORT_PACKAGES,
    ENV_PACKAGES,
    ENV_PIP_ARGS,
    KINDS,
    ORT_GPU,
    ORT_GPU_PACKAGES,
    PACKAGES,
    PYPI,
    TORCH,
    TORCH_CPU_INDEX,
    TORCH_CUDA_INDEX,
    Build,
    Kind,
    builds,
    constraints_text,
    extra_pip_args,
    kind_of,
    offered,
    own_indexes,
    packages,
    pip_command,
    uses_network,
)
from .distributions import RuntimeInfo, drop_distribution, folder_mb, info, version_in
from .folder import activate, cleanup, deactivate, loaded_from, removal_pending, remove
from .installer import CANCELLED, DONE, FAILED, NEVER_KEEP, RUNNING, Installer
from .paths import ENV_DIR, default_dir, runtime_dir
from .pip_output import PipOutput

__all__ = ["ENV_ORT_PACKAGES", "ENV_PACKAGES", "ENV_PIP_ARGS", "KINDS", "ORT_GPU", "ORT_GPU_PACKAGES", "PACKAGES",
           "PYPI", "TORCH", "TORCH_CPU_INDEX", "TORCH_CUDA_INDEX", "Build", "Kind", "builds", "constraints_text",
           "extra_pip_args", "kind_of", "offered", "own_indexes", "packages", "pip_command",
           "uses_network", "RuntimeInfo", "drop_distribution", "folder_mb", "info", "version_in", "activate",
           "cleanup", "deactivate",
           "loaded_from", "removal_pending", "remove", "CANCELLED", "DONE", "FAILED", "NEVER_KEEP", "RUNNING",
           "Installer", "ENV_DIR", "default_dir", "runtime_dir", "PipOutput", "use_installed_onnxruntime",
           "register", "unregister"]


def use_installed_onnxruntime() -> bool:
    """ONNX Runtime GPU, where an earlier session installed it, as the engine's ONNX Runtime.
    Called first in the extension's ``register()``: the panel's model list asks ONNX Runtime
    for its best provider as soon as it is drawn, and an imported one stays until Blender
    restarts."""
    return offered(ORT_GPU) and activate(runtime_dir(ORT_GPU), ORT_GPU)


def register():
    """The operators, and the runtimes an earlier session installed back in use (PyTorch on
    sys.path, ONNX Runtime GPU as the engine's ONNX Runtime)."""
    import bpy

    from . import operators
    for c in operators.classes:
        bpy.utils.register_class(c)
    operators.activate_existing()


def unregister():
    """An install in progress stopped, the runtimes out of use, the operators gone."""
    import bpy

    from . import operators
    operators.shutdown()
    for c in reversed(operators.classes):
        bpy.utils.unregister_class(c)
