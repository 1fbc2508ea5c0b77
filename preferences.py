"""The extension's preferences: PyTorch for the depth models that need it (status, build, install, remove)."""
from __future__ import annotations

import os
import sys

import bpy
from bpy.props import EnumProperty

from . import runtime_install as rt
from .operators import runtime as runtime_ops

BUILD_ITEMS = [(b.key, f"{b.label} (about {b.size_text()})", b.description) for b in rt.builds().values()]


class Photo3DPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    torch_build: EnumProperty(name="PyTorch Build", items=BUILD_ITEMS, default="CPU",  # type: ignore
                              description="Which PyTorch to download")

    def draw(self, context):
        draw_runtime(self.layout, context, self)


def needs_runtime(settings) -> bool:
    """The panel's choices need PyTorch (a zoo depth model, the online people segmenter)."""
    from .inference.depth import MODELS
    model = MODELS.get(settings.depth_model)
    return (model is not None and model.is_cached is not None) or \
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
    """The runtime's status and buttons: in full in the preferences, one line and the
    install button in the panel (``compact``) when the chosen model needs PyTorch."""
    from .inference import depth_hf
    installer = runtime_ops.installing()
    col = layout.column(align=True)
    if installer is not None:
        _progress(col, installer)
        return
    build = runtime_ops.chosen_build(context)
    if compact:
        if not depth_hf.available():
            col.label(text="This needs PyTorch, not installed", icon="ERROR")
            col.operator("photo3d.install_runtime", icon="IMPORT",
                         text=f"Install PyTorch ({build.size_text()})")
        _message(col)
        return
    target = runtime_ops.runtime_dir()
    info = rt.info(target)
    col.label(text="Depth models that need PyTorch (Depth Anything V2, Depth Pro, DPT)")
    col.label(text=info.text(), icon="CHECKMARK" if info.ready else "INFO")
    if sys.platform == "darwin":
        col.label(text="PyTorch from PyPI uses the Apple GPU (MPS) where there is one")
    elif prefs is not None:
        col.row().prop(prefs, "torch_build", expand=True)
    col.label(text=f"Download: about {build.size_text()}, into {target}")
    if runtime_ops.online_refusal():
        col.label(text="Needs Allow Online Access (Preferences > System > Network)", icon="ERROR")
    row = col.row()
    installed = info.in_target and info.torch
    row.operator("photo3d.install_runtime", icon="IMPORT",
                 text="Reinstall / Update PyTorch" if installed else "Install PyTorch & Transformers")
    if os.path.isdir(target):
        row.operator("photo3d.remove_runtime", icon="TRASH")
    _message(col)


def _message(layout):
    """How the last install or removal ended."""
    if runtime_ops.state.message:
        icon = {"ERROR": "ERROR", "WARNING": "CANCEL"}.get(runtime_ops.state.level, "INFO")
        layout.label(text=runtime_ops.state.message, icon=icon)


def register():
    bpy.utils.register_class(Photo3DPreferences)


def unregister():
    bpy.utils.unregister_class(Photo3DPreferences)
