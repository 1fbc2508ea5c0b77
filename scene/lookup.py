"""What photo3d made in a scene, found again: its marked datablocks, its collection and the
objects in it by role. A leaf module (no other scene module), so every builder can import it."""
from __future__ import annotations

import bpy

MARK = "photo3d"              # custom property on every datablock photo3d creates
COLLECTION = "3D Photo"       # the collection's name (Blender may add a suffix)
ROLE = "photo3d_role"         # custom property naming an object's part: root, camera, target, foreground...


def mark(id_data):
    id_data[MARK] = True
    return id_data


def find_collection(scene: bpy.types.Scene) -> bpy.types.Collection | None:
    for coll in scene.collection.children_recursive:
        if coll.get(MARK) and coll.name.startswith(COLLECTION):
            return coll
    return None


def find_role(scene: bpy.types.Scene, role: str) -> bpy.types.Object | None:
    coll = find_collection(scene)
    if coll is None:
        return None
    for ob in coll.all_objects:
        if ob.get(ROLE) == role:
            return ob
    return None


def options_of(scene: bpy.types.Scene, opts=None):
    """What a scene builder reads its settings from: ``opts`` (any object with the attribute
    names of ``scene.photo3d``, such as ``settings.Options``) when given, else the scene's own
    settings. What ``opts`` lacks (the state the build stored: field of view, depths, the
    light) comes from the scene."""
    if opts is None:
        return scene.photo3d
    base = getattr(scene, "photo3d", None)
    return opts if base is None else _Overlay(opts, base)


class _Overlay:
    def __init__(self, opts, base):
        self._opts, self._base = opts, base

    def __getattr__(self, name):
        return getattr(self._opts, name) if hasattr(self._opts, name) else getattr(self._base, name)
