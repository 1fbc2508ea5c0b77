"""Splash points on the reconstructed ground, without Blender."""
import numpy as np

from photo3d.inference.ground import sample_ground


def _floor_and_wall():
    """Two triangles of floor (y = -1, from z = -2 to -4) and two of a wall at z = -4."""
    positions = np.array([[-1, -1, -2], [1, -1, -2], [1, -1, -4], [-1, -1, -4],
                          [-1, 1, -4], [1, 1, -4]], np.float32)
    triangles = np.array([[0, 1, 2], [0, 2, 3], [3, 2, 5], [3, 5, 4]], np.int32)
    tri = positions[triangles]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(normal, axis=1)
    normal = normal / np.linalg.norm(normal, axis=1, keepdims=True)
    return normal, tri.mean(1), area, positions, triangles


def test_points_land_on_the_floor_only_inside_its_triangles_and_repeat_with_the_seed():
    normal, centre, area, positions, triangles = _floor_and_wall()
    pts = sample_ground(normal, centre, area, 200, 3, positions, triangles)
    assert pts.shape == (200, 3) and pts.dtype == np.float32
    assert np.allclose(pts[:, 1], -1) and (pts[:, 2] <= -2).all() and (pts[:, 2] >= -4).all()
    assert (np.abs(pts[:, 0]) <= 1).all()
    # per area of the image: the floor's near half (nearer the camera) gets more points
    assert (pts[:, 2] > -3).mean() > 0.5
    assert np.array_equal(pts, sample_ground(normal, centre, area, 200, 3, positions, triangles))
    at_centres = sample_ground(normal, centre, area, 50, 3)
    assert {tuple(p) for p in at_centres} <= {tuple(c) for c in centre[:2].astype(np.float32)}


def test_no_ground_no_points():
    normal, centre, area, positions, triangles = _floor_and_wall()
    wall = slice(2, 4)
    assert sample_ground(normal[wall], centre[wall], area[wall], 10).shape == (0, 3)
    assert sample_ground(normal, centre, area, 0).shape == (0, 3)
