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
            # The user's scene: its samples and output settings are theirs again afterwards.
            with render.restored(*render.quality_fields(scene), *render.output_fields(scene)):
                render.set_quality(scene, opts.quality, render.needs_blur_samples(scene.photo3d))
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
