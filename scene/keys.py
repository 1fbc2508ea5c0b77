"""Keyframes from arrays, the one place photo3d keys anything, in Blender 4.2 to 5.0 (5.0
moved an action's F-curves into channel bags, one per slot)."""
from __future__ import annotations

import numpy as np


def fcurves(id_data):
    """The F-curves of an ID's action."""
    ad = id_data.animation_data
    act = ad.action
    try:
        from bpy_extras import anim_utils
        bag = anim_utils.action_get_channelbag_for_slot(act, ad.action_slot)
        if bag is not None:
            return bag.fcurves
    except (ImportError, AttributeError):     # 4.2-4.3: no slots, the action's own F-curves
        pass
    return act.fcurves


def key_channels(id_data, data_path: str, frames: np.ndarray, values: np.ndarray):
    """Key every frame of ``values`` (F, C), or (F,) for a single channel, on ``data_path``
    of ``id_data``: linear keys, written in one array write per channel."""
    values = np.atleast_2d(values.T).T if values.ndim == 1 else values
    n_ch = values.shape[1]
    for c in range(n_ch):
        if n_ch == 1:
            id_data.keyframe_insert(data_path, frame=float(frames[0]))
        else:
            id_data.keyframe_insert(data_path, index=c, frame=float(frames[0]))
    curves = {(fc.data_path, fc.array_index): fc for fc in fcurves(id_data)}
    for c in range(n_ch):
        fc = curves[(data_path, c)]
        kp = fc.keyframe_points
        kp.clear()
        kp.add(len(frames))
        co = np.stack([frames, values[:, c]], -1).astype(np.float32)
        kp.foreach_set("co", co.ravel())
        kp.foreach_set("interpolation", np.full(len(frames), 1, np.int32))  # LINEAR: values are sampled per frame
        fc.update()


def key_setting(id_data, target, frames: np.ndarray, values: np.ndarray):
    """Key ``values`` on a setting inside ``id_data`` (a node tree): ``target`` is an input
    socket (its default value) or an (owner, property) pair, as ``nodes.setting`` returns."""
    if isinstance(target, tuple):
        owner, prop = target
        path = owner.path_from_id(prop)
    else:
        path = target.path_from_id("default_value")
    key_channels(id_data, path, frames, values)
