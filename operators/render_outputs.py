"""Render: write the Output section's files (video.mp4, video.gif, ...) next to the .blend
or into the chosen folder. It blocks like Blender's own Render Animation, and runs the
same headless (scripts, the ``bpy`` module)."""
from __future__ import annotations

import os
import shutil
import tempfile

import bpy

from ..inference import files
from ..inference.errors import Photo3DError
from ..scene import build, outputs, render
from ..settings import Options


def output_folder(context) -> str | None:
    """The chosen folder, else the .blend's; None when neither is known."""
    s = context.scene.photo3d
    if s.output_folder:
        return os.path.abspath(bpy.path.abspath(s.output_folder))
    if bpy.data.filepath:
        return os.path.dirname(bpy.data.filepath)
    return None


def _engine_name(scene) -> str:
    e = scene.render.engine
    return "cycles" if e == "CYCLES" else "workbench" if e == "BLENDER_WORKBENCH" else "eevee"


class _QualitySamples:
    """The Quality setting's samples for the scene's engine while rendering; the user's after."""

    def __init__(self, scene, quality: str):
        self.scene, self.quality = scene, quality
        eng = _engine_name(scene)
        self.target = {"cycles": (scene.cycles, "samples"), "eevee": (scene.eevee, "taa_render_samples")}.get(eng)
        self.value = render.samples_for(eng, quality, blurred=render.needs_blur_samples(scene.photo3d))

    def __enter__(self):
        if self.target:
            self.old = getattr(*self.target)
            setattr(*self.target, self.value)

    def __exit__(self, *exc):
        if self.target:
            setattr(*self.target, self.old)


class PHOTO3D_OT_render_outputs(bpy.types.Operator):
    """Render the 3D photo's animation into the chosen files (Output section)"""
    bl_idname = "photo3d.render_outputs"
    bl_label = "Render"

    @classmethod
    def poll(cls, context):
        return build.find_role(context.scene, "camera") is not None

    def execute(self, context):
        scene = context.scene
        opts = Options.of(scene.photo3d)
        folder = output_folder(context)
        if folder is None:
            self.report({"ERROR"}, "Save the .blend file or choose an output folder first")
            return {"CANCELLED"}
        if not opts.outputs:
            self.report({"ERROR"}, "Choose at least one output")
            return {"CANCELLED"}
        lines = []
        try:
            os.makedirs(folder, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=".photo3d-partial-", dir=folder)
        except OSError as e:
            self.report({"ERROR"}, f"Cannot write to {folder}: {e.strerror or e}")
            return {"CANCELLED"}
        try:
            with _QualitySamples(scene, opts.quality):
                written = outputs.write_outputs(scene, staging, opts.outputs, report=lines.append)
            for path in written.values():
                files.replace(path, os.path.join(folder, os.path.basename(path)))
        except (Photo3DError, OSError, RuntimeError) as e:
            self.report({"ERROR"}, f"3D Photo render failed: {e}")
            return {"CANCELLED"}
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.report({"INFO"}, f"3D Photo: {'; '.join(lines)} in {folder}")
        return {"FINISHED"}


classes = (PHOTO3D_OT_render_outputs,)
