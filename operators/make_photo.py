"""Make 3D Photo: pick an image, run the pipeline in the background, build the scene.

Interactive: ``invoke`` opens the file browser; ``execute`` starts the background job
and a modal timer, so Blender stays responsive; Esc or the panel's Cancel stops it and
the scene stays exactly as it was (nothing is built until the job is done). Headless
(no window: the ``bpy`` module, scripts), ``execute`` runs the job to the end itself.
"""
from __future__ import annotations

import os

import bpy
from bpy.props import StringProperty

from ..inference import pipeline
from ..inference.errors import Photo3DError
from ..scene import build
from ..settings import Options, pipeline_settings
from .job import CANCELLED, DONE, FAILED, PipelineJob

IMAGE_GLOB = "*.jpg;*.jpeg;*.png;*.tif;*.tiff;*.webp;*.bmp;*.gif;*.exr;*.jp2"
TIMER_STEP = 0.1

STAGE_TEXT = {
    "start": "Reading photo", "load": "Estimating depth", "depth": "Finding layers",
    "layers": "Inpainting background", "inpaint": "Building meshes", "mesh": "Building scene",
}


def _options(context) -> Options:
    """The scene's settings, the preferences' (where networks run); the frame rate is the scene's own."""
    from .. import preferences
    opts = Options.of(context.scene.photo3d)
    for name, value in preferences.values(context).items():
        setattr(opts, name, value)
    opts.fps = context.scene.render.fps
    return opts


def _set_status(context, text: str | None, progress: float = 0.0, running: bool = False):
    job_state = context.window_manager.photo3d_job
    job_state.running = running
    job_state.progress = progress
    job_state.status = text or ""
    if context.workspace is not None:
        context.workspace.status_text_set(text)
    if context.screen is not None:
        for area in context.screen.areas:
            area.tag_redraw()


def _finish_build(op, context, result) -> set[str]:
    try:
        build.build_scene(context.scene, result, _options(context))
    except Exception as e:  # noqa: BLE001 - never leave half a 3D Photo behind
        build.remove_photo(context.scene)
        op.report({"ERROR"}, f"3D Photo: building the scene failed: {type(e).__name__}: {e}")
        return {"CANCELLED"}
    context.scene.photo3d.source_photo = result.photo_path
    op.report({"INFO"}, f"3D Photo made from {os.path.basename(result.photo_path)}")
    around = build.objects_around_camera(context.scene)
    if around:
        op.report({"WARNING"}, f"3D Photo: {', '.join(repr(n) for n in around)} surrounds the camera and hides "
                               "the photo in renders: hide or move it")
    from ..inference import engine
    if engine.fallback_count() != getattr(op, "_fallbacks_before", engine.fallback_count()):
        # A GPU that could not run a network: the console is not where Blender users look.
        op.report({"WARNING"}, f"3D Photo: {engine.fallback_note()}")
    return {"FINISHED"}


def _tick(op, context) -> set[str]:
    """One main-thread step of a running job (the modal operator calls it on TIMER)."""
    job: PipelineJob = op._job
    wm = context.window_manager
    if wm.photo3d_job.cancel_requested and not job.cancel_requested:
        job.cancel()
    state = job.step()
    if state == DONE:
        _cleanup(op, context)
        try:
            return _finish_build(op, context, job.result)
        except Photo3DError as e:
            op.report({"ERROR"}, str(e))
            return {"CANCELLED"}
    if state in (FAILED, CANCELLED):
        # A cancel requested by the user is final even if the thread still finishes its stage.
        _cleanup(op, context)
        if state == FAILED:
            op.report({"ERROR"}, f"3D Photo failed: {job.error}")
        else:
            op.report({"WARNING"}, "3D Photo cancelled; the scene was not changed")
        return {"CANCELLED"}
    if job.cancel_requested:
        _cleanup(op, context)
        op.report({"WARNING"}, "3D Photo cancelled; the scene was not changed")
        return {"CANCELLED"}
    if job.detail:        # a model download (bytes per file and overall), depth tiles
        text, frac = f"3D Photo: {job.detail} (Esc to cancel)", job.detail_progress
    else:
        text, frac = f"3D Photo: {STAGE_TEXT.get(job.stage, job.stage)}... (Esc to cancel)", job.progress
    _set_status(context, text, frac, running=True)
    wm.progress_update(frac)
    return {"RUNNING_MODAL"}


def _cleanup(op, context):
    wm = context.window_manager
    if getattr(op, "_timer", None) is not None:
        wm.event_timer_remove(op._timer)
        op._timer = None
    wm.progress_end()
    wm.photo3d_job.cancel_requested = False
    _set_status(context, None)


class PHOTO3D_OT_make_photo(bpy.types.Operator):
    """Turn a photo into a layered 3D scene with an animated camera"""
    bl_idname = "photo3d.make_photo"
    bl_label = "Make 3D Photo"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Photo", subtype="FILE_PATH")  # type: ignore
    filter_glob: StringProperty(default=IMAGE_GLOB, options={"HIDDEN"})  # type: ignore

    _job: PipelineJob | None = None
    _timer = None
    _fallbacks_before = 0           # engine fallbacks noted before this run (see _finish_build)

    @classmethod
    def poll(cls, context):
        wm = context.window_manager
        return context.scene is not None and not wm.photo3d_job.running

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        path = bpy.path.abspath(self.filepath)
        if not path or not os.path.isfile(path):
            self.report({"ERROR"}, f"photo not found: {self.filepath or '(none chosen)'}")
            return {"CANCELLED"}
        settings = pipeline_settings(_options(context))
        from ..inference import engine
        self._fallbacks_before = engine.fallback_count()
        # Blender's "Allow Online Access" decides whether a model may be downloaded.
        from ..inference.depth import zoo
        zoo.set_offline(not getattr(bpy.app, "online_access", True))
        if bpy.app.background or context.window is None:
            # No event loop (the bpy module, blender -b): timers never fire, so run to the end here.
            try:
                result = pipeline.run(path, settings)
            except Photo3DError as e:
                self.report({"ERROR"}, str(e))
                return {"CANCELLED"}
            return _finish_build(self, context, result)
        wm = context.window_manager
        wm.photo3d_job.cancel_requested = False
        self._job = PipelineJob(path, settings).start()
        self._timer = wm.event_timer_add(TIMER_STEP, window=context.window)
        wm.progress_begin(0.0, 1.0)
        _set_status(context, "3D Photo: starting... (Esc to cancel)", 0.0, running=True)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._job.cancel()
            _cleanup(self, context)
            self.report({"WARNING"}, "3D Photo cancelled; the scene was not changed")
            return {"CANCELLED"}
        if event.type == "TIMER":
            return _tick(self, context)
        return {"PASS_THROUGH"}

    def cancel(self, context):  # Blender is closing the operator (e.g. file load)
        if self._job is not None:
            self._job.cancel()
        _cleanup(self, context)


class PHOTO3D_OT_cancel(bpy.types.Operator):
    """Stop making the 3D photo; the scene stays as it was"""
    bl_idname = "photo3d.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return context.window_manager.photo3d_job.running

    def execute(self, context):
        context.window_manager.photo3d_job.cancel_requested = True
        return {"FINISHED"}


class PHOTO3D_OT_remove_photo(bpy.types.Operator):
    """Delete the 3D Photo collection and everything photo3d created for it"""
    bl_idname = "photo3d.remove_photo"
    bl_label = "Remove 3D Photo"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.scene is not None and build.find_collection(context.scene) is not None

    def execute(self, context):
        build.remove_photo(context.scene)
        return {"FINISHED"}


class PHOTO3D_OT_reset_path(bpy.types.Operator):
    """Re-key the camera from the path settings, discarding manual edits"""
    bl_idname = "photo3d.reset_path"
    bl_label = "Reset Camera Path"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.scene is not None and build.find_role(context.scene, "camera") is not None

    def execute(self, context):
        from ..scene import camera
        camera.reanimate(context.scene)
        return {"FINISHED"}


classes = (PHOTO3D_OT_make_photo, PHOTO3D_OT_cancel, PHOTO3D_OT_remove_photo, PHOTO3D_OT_reset_path)
