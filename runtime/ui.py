"""The runtimes' status and buttons: in full in the extension's preferences (PyTorch; ONNX
Runtime GPU on Linux and Windows x64), one line and the install button in the sidebar panel
when the chosen model needs PyTorch."""
from __future__ import annotations

import os
import sys

from . import operators
from .builds import KINDS, ORT_GPU, TORCH, mb_text, offered
from .distributions import folder_mb, info, version_in
from .folder import removal_pending


def needs_runtime(settings) -> bool:
    """The panel's choices need PyTorch (a depth model that runs through it, not an ONNX one;
    the online people segmenter)."""
    from ..inference.depth import MODELS
    model = MODELS.get(settings.depth_model)
    return (model is not None and model.runtime == "torch") or \
        (settings.portrait and settings.segmenter != "builtin")


def _progress(layout, installer):
    installer.step()
    text = f"Installing {KINDS[installer.kind].name}: {installer.text}"
    if hasattr(layout, "progress"):
        layout.progress(factor=installer.fraction, text=text)
    else:  # Blender before 4.0 has no progress widget
        layout.label(text=text)
    layout.operator("photo3d.cancel_runtime_install", icon="CANCEL")


def draw_runtime(layout, context, prefs=None, compact: bool = False):
    """The runtimes' status and buttons (``compact``: the panel's version, PyTorch only)."""
    from ..inference.depth import zoo
    installer = operators.installing(None if compact else TORCH)
    col = layout.column(align=True)
    if installer is not None:
        _progress(col, installer)
        if not compact:
            draw_onnx_gpu(layout, context)
        return
    build = operators.chosen_build(context)
    if compact:
        if not zoo.available():
            col.label(text="This needs PyTorch, not installed", icon="ERROR")
            col.operator("photo3d.install_runtime", icon="IMPORT",
                         text=f"Install PyTorch ({build.size_text()})")
        _message(col)
        return
    target = operators.runtime_dir()
    now = info(target)
    pending = removal_pending(target)
    col.label(text="Depth models that need PyTorch (Depth Pro, DPT); the ONNX ones need none")
    if pending:
        col.label(text="PyTorch is removed when Blender restarts", icon="INFO")
    else:
        size = f" ({mb_text(folder_mb(target))})" if now.in_target and now.torch else ""
        col.label(text=now.text() + size, icon="CHECKMARK" if now.ready else "INFO")
    if sys.platform == "darwin":
        col.label(text="PyTorch from PyPI uses the Apple GPU (MPS) where there is one")
    elif prefs is not None:
        col.row().prop(prefs, "torch_build", expand=True)
    col.label(text=f"Download: about {build.size_text()}, into {target}")
    if operators.online_refusal():
        col.label(text="Needs Allow Online Access (Preferences > System > Network)", icon="ERROR")
    row = col.row()
    installed = now.in_target and now.torch and not pending
    row.operator("photo3d.install_runtime", icon="IMPORT",
                 text="Reinstall / Update PyTorch" if installed else "Install PyTorch & Transformers")
    if os.path.isdir(target) and not pending:
        row.operator("photo3d.remove_runtime", icon="TRASH")
    _message(col, TORCH)
    draw_onnx_gpu(layout, context)


def draw_onnx_gpu(layout, context):
    """ONNX Runtime GPU (CUDA): status, install, remove. Only where onnxruntime-gpu exists
    (Linux and Windows on x64); macOS's bundled onnxruntime has CoreML already."""
    if not offered(ORT_GPU):
        return
    from ..inference import engine
    col = layout.column(align=True)
    col.separator()
    col.label(text="ONNX Runtime GPU (CUDA): every network on an NVIDIA graphics card")
    installer = operators.installing(ORT_GPU)
    if installer is not None:
        _progress(col, installer)
        return
    target = operators.runtime_dir(ORT_GPU)
    pending = removal_pending(target)
    version = None if pending else version_in(target, "onnxruntime-gpu")
    if pending:
        col.label(text="ONNX Runtime GPU is removed when Blender restarts", icon="INFO")
    elif version:
        col.label(text=f"onnxruntime-gpu {version} installed ({mb_text(folder_mb(target))})", icon="CHECKMARK")
    else:
        bundled = "the CPU or DirectML" if sys.platform == "win32" else "the CPU"
        col.label(text=f"Not installed: the bundled ONNX Runtime runs on {bundled}", icon="INFO")
    build = operators.chosen_build(context, ORT_GPU)
    col.label(text=f"Download: about {build.size_text()} (CUDA 12 and cuDNN 9 included; needs an NVIDIA "
                   f"driver for CUDA 12), into {target}")
    if operators.online_refusal(ORT_GPU):
        col.label(text="Needs Allow Online Access (Preferences > System > Network)", icon="ERROR")
    row = col.row()
    op = row.operator("photo3d.install_runtime", icon="IMPORT",
                      text="Reinstall / Update ONNX Runtime GPU" if version else "Install ONNX Runtime GPU (CUDA)")
    op.kind = ORT_GPU
    if os.path.isdir(target) and not pending:
        op = row.operator("photo3d.remove_runtime", icon="TRASH", text="Remove ONNX Runtime GPU")
        op.kind = ORT_GPU
    note = engine.restart_note()
    if note:
        col.label(text=note[0].upper() + note[1:], icon="ERROR")
    _message(col, ORT_GPU)


def _message(layout, kind: str | None = None):
    """How the last install or removal (of ``kind``) ended."""
    if operators.state.message and (kind is None or operators.state.kind in (None, kind)):
        icon = {"ERROR": "ERROR", "WARNING": "CANCEL"}.get(operators.state.level, "INFO")
        layout.label(text=operators.state.message, icon=icon)
