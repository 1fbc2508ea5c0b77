"""Install, Cancel, Remove for each runtime kind (PyTorch & Transformers; ONNX Runtime GPU):
the operators and the state they share. One install at a time, of either kind.

Interactive: pip runs in a background thread (``installer.Installer``); a modal timer steps it
and redraws the panel and the preferences, so Blender stays responsive (the Cancel button
stops it; Esc is left to whatever the user is doing meanwhile). If Blender drops the modal
handler (its window closed, a file loaded), an app timer carries on. Headless (no window: the
``bpy`` module, ``blender -b``) the install runs to the end in ``execute()``, since timers never
fire there. Once installed, PyTorch is put on ``sys.path`` at once: the zoo's models work
without a restart. ONNX Runtime GPU becomes the engine's ONNX Runtime, at once where none was
imported yet, else after a restart (Python cannot swap an imported extension module).
"""
from __future__ import annotations

import os
import sys

import bpy
from bpy.props import EnumProperty

from .builds import ENV_PIP_ARGS, KINDS, ORT_GPU, TORCH, Build, builds, offered, uses_network
from .distributions import info, version_in
from .folder import activate, deactivate, removal_pending, remove
from .installer import DONE, FAILED, RUNNING, Installer
from .paths import ROOT_PACKAGE, runtime_dir

KIND_ITEMS = [(k.key, k.name, "") for k in KINDS.values()]

TIMER_STEP = 0.25


class _State:
    installer: Installer | None = None        # the install in progress (one per Blender)
    message = ""                              # how the last one ended, for the UI
    level = "INFO"
    kind: str | None = None                   # the runtime the message is about


state = _State()


def preferences(context):
    addon = context.preferences.addons.get(ROOT_PACKAGE)
    return addon.preferences if addon is not None else None


def chosen_build(context, kind: str = TORCH) -> Build:
    if kind != TORCH:
        return builds(kind=kind)["GPU"]
    prefs = preferences(context)
    return builds()[prefs.torch_build if prefs is not None else "CPU"]


def online_refusal(kind: str = TORCH) -> str | None:
    """Why the install may not run now (Blender's Allow Online Access is off), or None."""
    if getattr(bpy.app, "online_access", True) or not uses_network():
        return None
    return ("Online access is off: turn on Preferences > System > Network > Allow Online Access to "
            f"download {KINDS[kind].name} (or point {ENV_PIP_ARGS} at a local wheel mirror with --no-index)")


def installing(kind: str | None = None) -> Installer | None:
    """The install in progress (of ``kind`` only, when named)."""
    i = state.installer
    return i if i is not None and (kind is None or i.kind == kind) else None


def installed(kind: str) -> bool:
    """photo3d's folder of ``kind`` is there (and not waiting to be removed at the next start)."""
    target = runtime_dir(kind)
    return os.path.isdir(target) and not removal_pending(target)


def activate_existing() -> bool:
    """At register: PyTorch's installed runtime goes back in use (and leftovers of interrupted
    work go); True when it did. ONNX Runtime GPU's went back first of all, before anything
    could import ONNX Runtime (``runtime.use_installed_onnxruntime``)."""
    return activate(runtime_dir())


def shutdown():
    """At unregister: stop an install, drop the runtime from sys.path."""
    if bpy.app.timers.is_registered(_poll):
        bpy.app.timers.unregister(_poll)
    if state.installer is not None:
        state.installer.cancel()
        state.installer.wait(10)
        state.installer = None
    for kind in KINDS:
        deactivate(runtime_dir(kind), kind)


def _redraw():
    wm = getattr(bpy.context, "window_manager", None)
    for win in (wm.windows if wm is not None else ()):
        for area in win.screen.areas:
            area.tag_redraw()


def _finish(installer: Installer) -> tuple[str, str]:
    """What an ended install means: (report level, message); a good runtime goes on sys.path."""
    state.installer = None
    name = KINDS[installer.kind].name
    if installer.state == DONE and installer.kind == ORT_GPU:
        activate(installer.target, ORT_GPU)
        from ..inference import engine
        version = version_in(installer.target, "onnxruntime-gpu")
        what = f"ONNX Runtime GPU {version}" if version else ", ".join(installer.installed)
        level, msg = "INFO", f"Installed {what}" + (": restart Blender to use it" if engine.restart_note() else
                                                     ": the networks run on CUDA from now on")
    elif installer.state == DONE:
        # Already imported (an update, or transformers found before torch): only a restart reloads it.
        restart = "torch" in sys.modules or "transformers" in sys.modules
        activate(installer.target)
        now = info(installer.target)
        what = now.text() if now.in_target and now.torch else ", ".join(installer.installed)
        level, msg = "INFO", f"Installed {what}" + (": restart Blender to use it" if restart else
                                                     ": the depth models that need it are ready")
    elif installer.state == FAILED:
        level, msg = "ERROR", f"Installing {name} failed: {installer.error}"
    else:
        level, msg = "WARNING", f"Installing {name} cancelled; nothing was changed"
    state.message, state.level, state.kind = msg, level, installer.kind
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

    kind: EnumProperty(name="Runtime", items=KIND_ITEMS, default=TORCH, options={"SKIP_SAVE"})  # type: ignore

    _timer = None

    @classmethod
    def poll(cls, context):
        return state.installer is None

    @classmethod
    def description(cls, context, properties):
        if properties.kind == ORT_GPU:
            return ("Download ONNX Runtime's CUDA build and NVIDIA's CUDA and cuDNN libraries into this "
                    "extension's user folder: every network runs on an NVIDIA GPU")
        return cls.__doc__

    def invoke(self, context, event):
        refusal = online_refusal(self.kind)
        if refusal:
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        b = chosen_build(context, self.kind)
        title = "Install PyTorch & Transformers" if self.kind == TORCH else f"Install {KINDS[self.kind].name}"
        return context.window_manager.invoke_confirm(
            self, event, title=title, confirm_text="Install",
            message=f"Download about {b.size_text()} ({b.label}) with pip? Blender stays usable meanwhile.")

    def execute(self, context):
        refusal = online_refusal(self.kind)
        if refusal:
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        if not offered(self.kind):
            self.report({"ERROR"}, f"{KINDS[self.kind].name} is only offered on Linux and Windows (x64)")
            return {"CANCELLED"}
        installer = Installer(runtime_dir(self.kind), chosen_build(context, self.kind))
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
    """Stop the install; nothing is changed"""
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

    kind: EnumProperty(name="Runtime", items=KIND_ITEMS, default=TORCH, options={"SKIP_SAVE"})  # type: ignore

    @classmethod
    def poll(cls, context):     # the kind is not known here: some runtime is there to remove
        return state.installer is None and any(installed(k) for k in KINDS)

    @classmethod
    def description(cls, context, properties):
        return f"Delete the {KINDS[properties.kind].name} that photo3d installed"

    def invoke(self, context, event):
        name = KINDS[self.kind].name
        return context.window_manager.invoke_confirm(self, event, title=f"Remove {name}", confirm_text="Remove",
                                                     message=f"Delete the {name} that photo3d installed?")

    def execute(self, context):
        target, name = runtime_dir(self.kind), KINDS[self.kind].name
        if not os.path.isdir(target) or removal_pending(target):
            self.report({"ERROR"}, f"{name} is not installed")
            return {"CANCELLED"}
        try:
            restart = remove(target, self.kind)
        except OSError as e:
            level, msg = "ERROR", f"Removing {name} failed: {e.strerror or e} ({e.filename or target})"
        else:
            level = "INFO"
            gone = ("the depth models that need it are unavailable until it is installed again" if self.kind == TORCH
                    else "the networks run on the bundled ONNX Runtime")
            msg = (f"{name} is in use (Windows keeps its files open): restart Blender to finish removing it"
                   if removal_pending(target) else
                   f"Removed {name}: restart Blender to unload it" if restart else
                   f"Removed {name}: {gone}")
        state.message, state.level, state.kind = msg, level, self.kind
        _redraw()
        self.report({level}, msg)
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}


classes = (PHOTO3D_OT_install_runtime, PHOTO3D_OT_cancel_runtime_install, PHOTO3D_OT_remove_runtime)
