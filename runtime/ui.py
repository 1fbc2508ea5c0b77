"""The runtime's status and buttons: in full in the extension's preferences, one line and the
install button in the sidebar panel when the chosen model needs PyTorch."""
from __future__ import annotations

import os
import sys

from . import operators
from .distributions import info
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
    text = f"Installing PyTorch: {installer.text}"
    if hasattr(layout, "progress"):
        layout.progress(factor=installer.fraction, text=text)
    else:  # Blender before 4.0 has no progress widget
        layout.label(text=text)
    layout.operator("photo3d.cancel_runtime_install", icon="CANCEL")


def draw_runtime(layout, context, prefs=None, compact: bool = False):
    """The runtime's status and buttons (``compact``: the panel's version)."""
    from ..inference.depth import zoo
    installer = operators.installing()
    col = layout.column(align=True)
    if installer is not None:
        _progress(col, installer)
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
        col.label(text=now.text(), icon="CHECKMARK" if now.ready else "INFO")
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
    _message(col)


def _message(layout):
    """How the last install or removal ended."""
    if operators.state.message:
        icon = {"ERROR": "ERROR", "WARNING": "CANCEL"}.get(operators.state.level, "INFO")
        layout.label(text=operators.state.message, icon=icon)
