"""Look Around: tilt the 3D photo with the mouse, like tilting a phone over it.

The mouse's position in the viewport moves the 3D Photo camera sideways while its look-at
constraint keeps it on the subject; the viewport looks through that camera. I keys the
pose at the current frame, Enter or a click keeps the pose, Esc or right-click restores
the camera and the view as they were.
"""
from __future__ import annotations

import bpy
from mathutils import Vector

from ..inference import camera_path
from ..scene import build

HELP = "Look Around: move the mouse to tilt  \u00b7  I: key this pose  \u00b7  Enter/click: keep  \u00b7  Esc: restore"


class LookAround:
    """The operator's state and actions, apart from event handling (so scripts and tests
    can drive it too)."""

    def __init__(self, scene: bpy.types.Scene):
        self.scene = scene
        self.cam = build.find_role(scene, "camera")
        if self.cam is None:
            raise LookupError("no 3D Photo camera in this scene")
        s = scene.photo3d
        self.extent = camera_path.SceneExtent(s.subject_depth, s.near_depth, s.far_depth)
        self.amplitude = s.amplitude
        self.start = self.cam.location.copy()
        self.keyed = 0

    def move(self, nx: float, ny: float):
        """Pose for the mouse at (nx, ny) in [-1, 1]^2 of the view (right, up)."""
        self.cam.location = Vector(camera_path.tilt_offset(nx, ny, self.extent, self.amplitude).tolist())

    def key(self, frame: int | None = None):
        """Key the current pose (location: the look-at target keeps the aim)."""
        frame = self.scene.frame_current if frame is None else frame
        self.cam.keyframe_insert("location", frame=frame)
        self.keyed += 1

    def restore(self):
        """Back to where the camera was (its animation, when it has one, takes over again)."""
        self.cam.location = self.start
        self.scene.frame_set(self.scene.frame_current)


class PHOTO3D_OT_look_around(bpy.types.Operator):
    """Tilt the 3D photo with the mouse, like tilting a phone; I keys the pose, Esc restores"""
    bl_idname = "photo3d.look_around"
    bl_label = "Look Around"
    bl_options = {"REGISTER", "UNDO", "BLOCKING"}   # no GRAB_CURSOR: a wrapping cursor would jump the tilt

    @classmethod
    def poll(cls, context):
        return (context.scene is not None and context.area is not None and context.area.type == "VIEW_3D"
                and build.find_role(context.scene, "camera") is not None)

    def invoke(self, context, event):
        self.state = LookAround(context.scene)
        rv3d = context.region_data
        self.view = rv3d.view_perspective if rv3d is not None else None
        if rv3d is not None:
            context.scene.camera = self.state.cam
            rv3d.view_perspective = "CAMERA"
        context.area.header_text_set(HELP)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _end(self, context, restore: bool):
        if restore:
            self.state.restore()
            if context.region_data is not None and self.view is not None:
                context.region_data.view_perspective = self.view
        context.area.header_text_set(None)
        context.area.tag_redraw()

    def modal(self, context, event):
        if event.type == "MOUSEMOVE":
            region = context.region
            nx = 2.0 * event.mouse_region_x / max(1, region.width) - 1.0
            ny = 2.0 * event.mouse_region_y / max(1, region.height) - 1.0
            self.state.move(nx, ny)
            context.area.tag_redraw()
        elif event.type == "I" and event.value == "PRESS":
            self.state.key()
            self.report({"INFO"}, f"Keyed the camera at frame {context.scene.frame_current}")
        elif event.type in {"RET", "NUMPAD_ENTER", "LEFTMOUSE"} and event.value == "PRESS":
            self._end(context, restore=False)
            return {"FINISHED"}
        elif event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            self._end(context, restore=True)
            return {"CANCELLED"}
        return {"RUNNING_MODAL"}


classes = (PHOTO3D_OT_look_around,)
