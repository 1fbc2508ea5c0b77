"""Install PyTorch & Transformers, Cancel, Remove PyTorch: the operators and the state they share.

Interactive: pip runs in a background thread (``installer.Installer``); a modal timer steps it
and redraws the panel and the preferences, so Blender stays responsive (the Cancel button
stops it; Esc is left to whatever the user is doing meanwhile). If Blender drops the modal
handler (its window closed, a file loaded), an app timer carries on. Headless (no window: the
``bpy`` module, ``blender -b``) the install runs to the end in ``execute()``, since timers never
fire there. Once installed, the runtime is put on ``sys.path`` at once: the zoo's models work
without a restart.
"""
from __future__ import annotations

import os
import sys

import bpy

from .builds import ENV_PIP_ARGS, Build, builds, uses_network
from .distributions import info
from .folder import activate, deactivate, removal_pending, remove
from .installer import DONE, FAILED, RUNNING, Installer
from .paths import ROOT_PACKAGE, runtime_dir

TIMER_STEP = 0.25


class _State:
    installer: Installer | None = None        # the install in progress (one per Blender)
    message = ""                              # how the last one ended, for the UI
    level = "INFO"


state = _State()


def preferences(context):
    addon = context.preferences.addons.get(ROOT_PACKAGE)
    return addon.preferences if addon is not None else None


def chosen_build(context) -> Build:
    prefs = preferences(context)
    return builds()[prefs.torch_build if prefs is not None else "CPU"]


def online_refusal() -> str | None:
    """Why the install may not run now (Blender's Allow Online Access is off), or None."""
    if getattr(bpy.app, "online_access", True) or not uses_network():
        return None
    return ("Online access is off: turn on Preferences > System > Network > Allow Online Access to "
            f"download PyTorch (or point {ENV_PIP_ARGS} at a local wheel mirror with --no-index)")


def installing() -> Installer | None:
    return state.installer


def activate_existing() -> bool:
    """At register: an installed runtime goes on sys.path (and leftovers of an interrupted one go)."""
    return activate(runtime_dir())


def shutdown():
    """At unregister: stop an install, drop the runtime from sys.path."""
    if bpy.app.timers.is_registered(_poll):
        bpy.app.timers.unregister(_poll)
    if state.installer is not None:
        state.installer.cancel()
        state.installer.wait(10)
        state.installer = None
    deactivate(runtime_dir())


def _redraw():
    wm = getattr(bpy.context, "window_manager", None)
    for win in (wm.windows if wm is not None else ()):
        for area in win.screen.areas:
            area.tag_redraw()


def _finish(installer: Installer) -> tuple[str, str]:
    """What an ended install means: (report level, message); a good runtime goes on sys.path."""
    state.installer = None
    if installer.state == DONE:
        # Already imported (an update, or transformers found before torch): only a restart reloads it.
        restart = "torch" in sys.modules or "transformers" in sys.modules
        activate(installer.target)
        now = info(installer.target)
        what = now.text() if now.in_target and now.torch else ", ".join(installer.installed)
        level, msg = "INFO", f"Installed {what}" + (": restart Blender to use it" if restart else
                                                     ": the depth models that need it are ready")
    elif installer.state == FAILED:
        level, msg = "ERROR", f"Installing PyTorch failed: {installer.error}"
    else:
        level, msg = "WARNING", "Installing PyTorch cancelled; nothing was changed"
    state.message, state.level = msg, level
    _redraw()
    return level, msg


def _poll():
    """App timer that finishes an install whose modal handler Blender dropped."""
    installer = state.installer
    if installer is None:
        return None
    if installer.step() == RUNNING:
        _redraw()
        return TIMER_STEP
    print(f"3D Photo: {_finish(installer)[1]}")
    return None


class PHOTO3D_OT_install_runtime(bpy.types.Operator):
    """Download PyTorch and transformers into this extension's user folder, for the depth models that need them"""
    bl_idname = "photo3d.install_runtime"
    bl_label = "Install PyTorch & Transformers"

    _timer = None

    @classmethod
    def poll(cls, context):
        return state.installer is None

    def invoke(self, context, event):
        refusal = online_refusal()
        if refusal:
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        b = chosen_build(context)
        return context.window_manager.invoke_confirm(
            self, event, title="Install PyTorch & Transformers", confirm_text="Install",
            message=f"Download about {b.size_text()} ({b.label}) with pip? Blender stays usable meanwhile.")

    def execute(self, context):
        refusal = online_refusal()
        if refusal:
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        installer = Installer(runtime_dir(), chosen_build(context))
        state.installer, state.message = installer, ""
        if bpy.app.background or context.window is None:
            # No event loop (the bpy module, blender -b): timers never fire, so run to the end here.
            installer.run()
            return self._end(installer)
        installer.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_STEP, window=context.window)
        wm.modal_handler_add(self)
        _redraw()
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        installer = state.installer
        if installer is not None and installer.step() == RUNNING:
            _redraw()
            return {"PASS_THROUGH"}
        self._remove_timer(context)
        return self._end(installer) if installer is not None else {"CANCELLED"}

    def cancel(self, context):
        """Blender dropped the handler (window closed, file loaded): the install goes on."""
        self._remove_timer(context)
        if state.installer is not None and not bpy.app.timers.is_registered(_poll):
            bpy.app.timers.register(_poll, first_interval=TIMER_STEP)

    def _remove_timer(self, context):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None

    def _end(self, installer) -> set[str]:
        level, msg = _finish(installer)
        self.report({level}, msg)
        return {"FINISHED"} if installer.state == DONE else {"CANCELLED"}


class PHOTO3D_OT_cancel_runtime_install(bpy.types.Operator):
    """Stop installing PyTorch; nothing is changed"""
    bl_idname = "photo3d.cancel_runtime_install"
    bl_label = "Cancel Install"

    @classmethod
    def poll(cls, context):
        return state.installer is not None

    def execute(self, context):
        state.installer.cancel()
        return {"FINISHED"}


class PHOTO3D_OT_remove_runtime(bpy.types.Operator):
    """Delete the PyTorch and transformers that photo3d installed"""
    bl_idname = "photo3d.remove_runtime"
    bl_label = "Remove PyTorch"

    @classmethod
    def poll(cls, context):
        target = runtime_dir()
        return state.installer is None and os.path.isdir(target) and not removal_pending(target)

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event, title="Remove PyTorch", confirm_text="Remove",
                                                     message="Delete the PyTorch that photo3d installed?")

    def execute(self, context):
        target = runtime_dir()
        try:
            restart = remove(target)
        except OSError as e:
            level, msg = "ERROR", f"Removing PyTorch failed: {e.strerror or e} ({e.filename or target})"
        else:
            level = "INFO"
            msg = ("PyTorch is in use (Windows keeps its files open): restart Blender to finish removing it"
                   if removal_pending(target) else
                   "Removed PyTorch: restart Blender to unload it" if restart else
                   "Removed PyTorch: the depth models that need it are unavailable until it is installed again")
        state.message, state.level = msg, level
        _redraw()
        self.report({level}, msg)
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}


classes = (PHOTO3D_OT_install_runtime, PHOTO3D_OT_cancel_runtime_install, PHOTO3D_OT_remove_runtime)
