"""What the pipeline reads from the photo's light, without Blender: the far region's colour
(the fog's) and a light source it shows (the light shafts')."""
import cv2
import numpy as np
import pytest

from helpers import box_scene
from photo3d.inference import lighting


def _sun(h=60, w=80):
    """A sun on a bright sky (far, at 6) over a near strip (3): sRGB floats and depth."""
    depth = np.full((h, w), 6.0, np.float32)
    depth[48:, :] = 3.0
    rgb = np.full((h, w, 3), 205, np.uint8)
    cv2.circle(rgb, (52, 14), 7, (255, 255, 255), -1)
    rgb[48:] = 90
    return rgb.astype(np.float32) / 255, depth


def test_far_colour_is_the_far_region_in_linear_rgb():
    depth, bgr = box_scene()
    texture = np.ascontiguousarray(bgr[:, :, ::-1], np.float32) / 255        # the wall: sRGB (200, 90, 40)
    colour = lighting.photo_far_colour(cv2.resize(texture, (160, 120)), depth)
    assert colour == pytest.approx((0.578, 0.102, 0.021), abs=0.01)


def test_finds_the_sun_as_a_point_in_the_camera_frame():
    texture, depth = _sun()
    x, y, z = lighting.find_light_source(texture, depth, 60.0)
    assert z == pytest.approx(-6.0)
    # its centre's pixel (52, 14) projects back to where it was found
    f = 0.5 * 80 / np.tan(np.radians(30.0))
    assert (x / -z * f + 40 - 0.5, -y / -z * f + 30 - 0.5) == pytest.approx((52, 14), abs=0.5)


def test_no_light_source_without_a_bright_blob_far_away():
    texture, depth = _sun()
    assert lighting.find_light_source(np.full_like(texture, 0.4), depth, 60.0) is None
    near = np.full_like(depth, 6.0)
    near[:30] = 2.0                                   # the sun's half of the frame is the near half now
    assert lighting.find_light_source(texture, near, 60.0) is None


def test_the_pipeline_carries_both(box_result):
    assert box_result.far_colour == pytest.approx(lighting.photo_far_colour(box_result.texture, box_result.depth))
    assert box_result.light_source is None                                    # the box shows no light
