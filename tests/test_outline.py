"""A subject's outline: depth settled on either side of it, the mask grown over the edge it
fell short of, and what that does to the layers of a real portrait."""
import cv2
import numpy as np
import pytest
from scipy import ndimage

from photo3d.inference import layers, masks, outline, pipeline, portrait

WALL, SUBJECT = 10.0, 2.0


def _blurred_disc(size=200, radius=40, box=False, fragment=False):
    """A wall (z 10) with a disc (z 2) in front; the disparity ramps up over 10 px outside
    the disc and sinks over 3 px inside it, as a depth model's blur does. ``box``: a box
    of its own (z 3) touching the disc and reaching well beyond the ramp; ``fragment``: a
    small piece at an in-between depth inside the ramp."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    subject = r <= radius
    d_out = np.clip(r - radius, 0, None)
    d_in = np.clip(radius - r, 0, None)
    disp = np.where(subject, 1 / SUBJECT - (1 / SUBJECT - 0.3) * np.clip(1 - d_in / 3, 0, 1),
                    1 / WALL + 0.15 * np.clip(1 - d_out / 10, 0, 1) ** 2)
    depth = (1 / disp).astype(np.float32)
    if box:
        depth[90:110, size // 2 + radius + 1:size - 20] = 3.0
    if fragment:
        depth[size // 2 - radius - 8:size // 2 - radius - 4, 98:102] = 5.0
    return depth, subject


def _cut_pixels(depth):
    ch, cv = layers.occlusion_edges(depth)
    cut = np.zeros(depth.shape, bool)
    cut[:, :-1] |= ch
    cut[:, 1:] |= ch
    cut[:-1] |= cv
    cut[1:] |= cv
    return cut


def test_settle_takes_the_ramp_off_the_wall_and_the_rim_off_the_subject():
    depth, subject = _blurred_disc(fragment=True)
    near_wall = ~subject & masks.grow(subject, 14)
    assert (1 / depth[near_wall]).max() > 2 / WALL                      # the ramp is there...
    assert _cut_pixels(depth)[~subject & ~masks.grow(subject, 1)].any()  # ...and the fragment is cut
    out, behind = outline.settle(depth, subject, 12, 3)
    assert behind.any() and not (behind & subject).any()
    assert (1 / out[~subject]).max() < 1.05 / WALL                      # the wall runs to the outline
    assert (1 / out[subject]).min() > 0.95 / SUBJECT                    # the rim is the subject's
    # The only occlusion edge left is the outline itself.
    cut = _cut_pixels(out)
    assert not cut[~masks.grow(subject, 1) | masks.shrink(subject, 1)].any()
    assert cut[masks.grow(subject, 1) & ~subject].mean() > 0.9


def test_settle_keeps_things_of_their_own():
    depth, subject = _blurred_disc(box=True)
    out, behind = outline.settle(depth, subject, 12, 3)
    assert (out[90:110, 141:180] == 3.0).all() and not behind[90:110, 141:180].any()   # the box beside the disc
    assert outline.settle(depth, np.zeros_like(subject), 12, 3)[0] is depth   # no subject, no change


def test_nearest_agrees_with_the_exact_transform():
    rng = np.random.default_rng(4)
    region = rng.uniform(size=(120, 160)) > 0.995
    iv, iu = masks.nearest(region)
    assert region[iv, iu].all()
    ev, eu = ndimage.distance_transform_edt(~region, return_distances=False, return_indices=True)
    yy, xx = np.mgrid[:120, :160]
    ours, exact = np.hypot(iv - yy, iu - xx), np.hypot(ev - yy, eu - xx)
    assert (ours >= exact - 1e-9).all() and (ours - exact <= 0.1 * exact + 1.0).all()


def _ring_photo(shortfall=6):
    """A pale wall, a dark ring (r 40) with a 1 px soft edge, a red patch beside it; the
    mask falls ``shortfall`` px short of the ring."""
    yy, xx = np.mgrid[:200, :200]
    r = np.hypot(yy - 100, xx - 100)
    a = np.clip(40.5 - r, 0, 1)[:, :, None]
    rgb = a * np.array([0.40, 0.36, 0.42]) + (1 - a) * np.array([0.86, 0.84, 0.85])
    rgb[95:105, 141:150] = (0.8, 0.1, 0.1)                            # something else, within reach
    return rgb.astype(np.float32), r <= 40 - shortfall, r


def test_mask_grows_over_the_edge_it_fell_short_of():
    rgb, mask, r = _ring_photo()
    depth = np.where(mask, SUBJECT, WALL).astype(np.float32)
    new_depth, grown = outline.grow_to_edge(rgb, depth, mask, 8)
    assert grown[r <= 39.5].mean() > 0.98                               # the whole ring...
    assert not grown[r > 41].any()                                      # ...and not the wall
    assert not grown[95:105, 143:150].any()                             # nor the red patch
    assert (new_depth[grown] == SUBJECT).all()
    assert (new_depth[~grown] == depth[~grown]).all()
    # The strands' matte alone does not reach that far.
    _, small = portrait.extend_to_strands(rgb, depth, mask)
    assert small[r <= 39.5].mean() < 0.9


def test_portrait_wall_is_not_cut_beside_the_person(portrait_path):
    """The bundled model's depth rises towards the astronaut over ~10 px of wall; cut,
    those strips floated between the layers (purple strokes round the helmet ring at the
    dolly zoom's end). A third of the wall pixels just outside the outline touched a cut
    before the outline was settled."""
    r = pipeline.run(portrait_path)
    d = cv2.distanceTransform((~r.mask).astype(np.uint8), cv2.DIST_L2, 5)
    beside = ~r.mask & (d > 1.5) & (d <= 4)
    # (Lower down, the model's subject takes in the helmet on the table; right, a patch of
    # the rocket; left, the flag, a near piece of its own whose smeared edge is cut.)
    beside[300:] = False
    beside[:, 350:] = False
    beside[:, :100] = False
    assert beside.sum() > 500
    assert _cut_pixels(r.depth)[beside].mean() < 0.1          # (0.05 now, 0.37 before)


@pytest.mark.parametrize("shortfall", [0, 5])
def test_grown_mask_leaves_a_plain_wall_plain(shortfall):
    """A mask that is exact or short: the wall beyond the ring never joins the subject."""
    rgb, mask, r = _ring_photo(shortfall)
    _, grown = outline.grow_to_edge(rgb, np.full(mask.shape, WALL, np.float32), mask, 8)
    assert not grown[r > 41].any()


def test_settle_keeps_what_looks_like_the_subject():
    """A depth model's subject can miss a part of what it stands for (a pagoda's roof
    wing): coloured like the subject, not like the wall, it keeps its depth."""
    depth, subject = _blurred_disc()
    rgb = np.empty(depth.shape + (3,), np.float32)
    rgb[...] = (0.85, 0.85, 0.9)                                        # a pale wall
    rgb[subject] = (0.2, 0.5, 0.3)                                      # a green roof
    wing = np.zeros_like(subject)
    wing[96:104, 141:149] = True                                        # beside it, in the ramp
    rgb[wing] = (0.22, 0.48, 0.3)
    out, _ = outline.settle(depth, subject, 12, 3, rgb)
    assert (out[wing] == depth[wing]).all()
    plain, _ = outline.settle(depth, subject, 12, 3)
    assert (depth[wing] < 0.5 * WALL).any() and (plain[wing] > 0.95 * WALL).all()   # without the photo, pushed back
    wall = ~subject & ~masks.grow(wing, 24)
    assert np.allclose(out[wall], plain[wall], rtol=0.02)


def _disc(size, cx, cy, radius):
    yy, xx = np.mgrid[:size, :size]
    return np.hypot(yy - cy, xx - cx) <= radius


def test_the_outline_is_a_persons_round_them_and_the_subjects_beyond():
    size = 200
    cup = _disc(size, 100, 100, 60)
    # The segmenter took the cup's right half for a person: the rest of the cup keeps its outline.
    person = cup & (np.mgrid[:size, :size][1] > 110)
    got = outline.outline_mask(cup, person, 12)
    assert got[cup].mean() > 0.99 and not (got & ~cup).any()
    # Round a real person the model's subject is only a blurred halo (and a fleck of clutter):
    # the person's mask is the outline.
    person = _disc(size, 100, 100, 50)
    subject = masks.grow(person, 6)
    subject[10:14, 10:14] = True
    assert np.array_equal(outline.outline_mask(subject, person, 12), person)
    assert outline.outline_mask(subject, None, 12) is subject


def test_the_layer_behind_a_subject_holds_none_of_its_blurred_edge(tmp_path):
    """A white cup on a brown table, its edge blurred over a few pixels as a photo's is: the
    layer behind it (what the camera sees when the cup moves aside) has no white ring where
    the cup is cut from the table."""
    size = 240
    rng = np.random.default_rng(3)
    table = np.clip(np.float32([0.45, 0.25, 0.12]) + rng.normal(0, 0.02, (size, size, 3)), 0, 1)
    cup = _disc(size, 120, 110, 55)
    edge = cv2.GaussianBlur(cup.astype(np.float32), (0, 0), 1.2)[..., None]
    photo = (table * (1 - edge) + np.float32([0.97, 0.95, 0.92]) * edge)
    path = tmp_path / "cup.png"
    cv2.imwrite(str(path), (photo[..., ::-1] * 255).round().astype(np.uint8))
    s = pipeline.Settings(depth_model="classical", mesh_long_side=size, texture_long_side=size, inpainter="")
    r = pipeline.run(str(path), s)
    near = r.mask
    assert near[cup].mean() > 0.9, "the classical model finds the cup"
    ring = masks.grow(near, 4) & ~near
    ring[110:] = False                  # its top half: where it stands against the table behind
    luma = r.background[ring].mean(1)
    assert luma.max() < 0.5, f"the layer behind keeps the cup's white edge (brightest {luma.max():.2f})"


def test_a_piece_of_a_facade_is_no_subject_and_an_object_is():
    # A small model marked the top corner of a building's facade as its subject: the same
    # fine texture runs on across that outline. A red box on the wall stands out.
    h, w = 120, 160
    yy, xx = np.mgrid[:h, :w]
    rgb = np.full((h, w, 3), 0.45, np.float32)
    rgb += np.random.default_rng(0).normal(0, 0.04, (h, w, 1)).astype(np.float32)
    piece = (yy < 40) & (xx > 100)
    box = (yy > 60) & (yy < 100) & (xx > 20) & (xx < 60)
    rgb[box] = (0.8, 0.15, 0.1)
    out = outline.distinct_parts(piece | box, rgb)
    assert out[box].all() and not out[piece].any()
    # A person the segmenter found keeps whatever the model marked on them.
    assert outline.distinct_parts(piece, rgb, keep=piece & (xx > 140))[piece].all()
    assert outline.distinct_parts(np.zeros((h, w), bool), rgb).sum() == 0
