"""Reading photos: formats, bit depths, channels, EXIF orientation, and bad files."""
import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import png_header_only
from photo3d.inference import photo as photo_module
from photo3d.inference.errors import InputError
from photo3d.inference.photo import hfov_from_focal_35mm, inverse_to_depth, load_depth_file, load_photo


def _gradient(h=40, w=60):
    v, u = np.mgrid[0:h, 0:w]
    return np.stack([u * 255 // w, v * 255 // h, np.full_like(u, 128)], -1).astype(np.uint8)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif", ".webp", ".bmp"])
def test_formats_rgb(tmp_path, ext):
    rgb = _gradient()
    p = str(tmp_path / f"a{ext}")
    assert cv2.imwrite(p, rgb[:, :, ::-1])
    photo = load_photo(p)
    assert photo.rgb.shape == (40, 60, 3) and photo.rgb.dtype == np.float32
    assert np.abs(photo.rgb * 255 - rgb).mean() < 4          # RGB order, not BGR
    assert photo.alpha is None


def test_16bit_gray_and_rgba(tmp_path):
    g16 = (np.linspace(0, 65535, 40 * 60).reshape(40, 60)).astype(np.uint16)
    p = str(tmp_path / "g16.png")
    cv2.imwrite(p, g16)
    photo = load_photo(p)
    assert photo.rgb.shape == (40, 60, 3)
    assert abs(photo.rgb[-1, -1, 0] - 1.0) < 1e-4 and photo.rgb[0, 0, 0] == 0
    rgba = np.dstack([_gradient()[:, :, ::-1], np.full((40, 60), 128, np.uint8)])
    p = str(tmp_path / "rgba.png")
    cv2.imwrite(p, rgba)
    photo = load_photo(p)
    assert photo.alpha is not None and abs(float(photo.alpha.mean()) - 128 / 255) < 1e-3


def test_exif_orientation_and_focal_length(tmp_path):
    rgb = _gradient(40, 60)
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6                      # rotate 90 degrees clockwise to display
    exif.get_ifd(0x8769)[0xA405] = 26     # 26 mm equivalent: a phone's main camera
    p = str(tmp_path / "rot.jpg")
    im.save(p, exif=exif, quality=95)
    photo = load_photo(p)
    assert photo.rgb.shape == (60, 40, 3)  # upright: portrait
    # After a clockwise turn the original left column is the top row.
    assert np.abs(photo.rgb[0, :, 1] * 255 - rgb[::-1, 0, 1]).mean() < 6
    assert photo.hfov_from_exif == pytest.approx(hfov_from_focal_35mm(26, 40, 60))
    assert 40 < photo.hfov_from_exif < 70


@pytest.mark.parametrize("content,msg", [
    (b"this is not an image", "not an image"),
    (b"", "not an image"),
])
def test_not_an_image(tmp_path, content, msg):
    p = tmp_path / "fake.jpg"
    p.write_bytes(content)
    with pytest.raises(InputError, match=msg):
        load_photo(str(p))


def test_truncated_jpeg(tmp_path, portrait_path):
    data = open(portrait_path, "rb").read()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated|corrupt"):
        load_photo(str(p))


def test_tiny_and_missing(tmp_path):
    p = str(tmp_path / "one.png")
    cv2.imwrite(p, np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(InputError, match="too small"):
        load_photo(p)
    with pytest.raises(InputError, match="not found"):
        load_photo(str(tmp_path / "nope.jpg"))
    with pytest.raises(InputError, match="folder"):
        load_photo(str(tmp_path))


def test_depth_files(tmp_path):
    d = np.linspace(1, 5, 40 * 60, dtype=np.float32).reshape(40, 60)
    np.save(tmp_path / "d.npy", d)
    got, metric = load_depth_file(str(tmp_path / "d.npy"), (60, 40))
    assert metric and np.array_equal(got, d)
    with pytest.raises(InputError, match="60x40"):
        load_depth_file(str(tmp_path / "d.npy"), (61, 40))
    # Inverse-depth image: white = near.
    inv = np.zeros((40, 60), np.uint16)
    inv[:, :30] = 60000
    cv2.imwrite(str(tmp_path / "inv.png"), inv)
    got, metric = load_depth_file(str(tmp_path / "inv.png"), (60, 40))
    assert not metric and got[:, :30].mean() < got[:, 30:].mean()
    assert np.isfinite(got).all() and (got > 0).all()


def test_inverse_to_depth_constant():
    z = inverse_to_depth(np.full((8, 8), 0.5, np.float32))
    assert np.isfinite(z).all() and (z > 0).all()


def test_gif_still_animated_and_transparent(tmp_path):
    """OpenCV cannot read GIF: Pillow decodes it, and of an animation the first frame is used."""
    rgb = _gradient()
    Image.fromarray(rgb).save(tmp_path / "still.gif")
    photo = load_photo(str(tmp_path / "still.gif"))
    assert photo.rgb.shape == (40, 60, 3) and photo.alpha is None
    assert np.abs(photo.rgb * 255 - rgb).mean() < 8                 # RGB order; a 256-colour palette
    frames = [Image.fromarray(np.full((40, 60, 3), c, np.uint8)) for c in ((200, 30, 30), (30, 30, 200))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    photo = load_photo(str(tmp_path / "anim.gif"))
    assert np.allclose(photo.rgb[0, 0] * 255, (200, 30, 30), atol=2)      # the first frame, red
    pal = Image.fromarray(rgb).convert("P")
    pal.info["transparency"] = int(np.asarray(pal)[0, 0])
    pal.save(tmp_path / "clear.gif")
    photo = load_photo(str(tmp_path / "clear.gif"))
    assert photo.alpha is not None and photo.alpha[0, 0] == 0 and photo.alpha.max() == 1


def test_huge_photo_refused_from_its_header(tmp_path):
    p = tmp_path / "huge.png"
    png_header_only(p, 60000, 60000)
    with pytest.raises(InputError, match=r"photo is too large \(60000x60000, 3600 megapixels\); the limit is 200 "):
        load_photo(str(p))
    # Without Pillow's header, OpenCV's own limit (1 GP) is reported as a size, not an OpenCV error.
    with pytest.raises(InputError, match="too large .*the limit is 200 megapixels"):
        photo_module._imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_UNCHANGED, "photo")
    # Pillow refuses headers over 179 MP as decompression bombs; up to our limit they are read.
    png_header_only(p, 15000, 12700)                                # 190.5 MP
    assert photo_module._exif(str(p))[2] == (15000, 12700)
    assert Image.MAX_IMAGE_PIXELS is not None                       # Pillow's own limit is restored


def test_huge_depth_image_refused_from_its_header(tmp_path):
    p = tmp_path / "depth.png"
    png_header_only(p, 60000, 60000)
    with pytest.raises(InputError, match="depth depth.png is too large"):
        load_depth_file(str(p), (60, 40))


def _save_pickled(path, array):
    np.save(path, array, allow_pickle=True)


@pytest.mark.parametrize("array,msg", [
    (np.array([["a", "b"], ["c", "d"]]), r"holds text \(dtype <U1\); it must be a numeric array"),
    (np.array([[1 + 2j]]), "holds complex numbers"),
    (np.ones((2, 2), bool), "holds true/false values"),
    (np.zeros((2, 2), dtype=[("z", "f4")]), "holds records"),
    (np.array([{"z": 1}], dtype=object), "holds Python objects"),
    (np.full((40, 60), np.nan, np.float32), "no positive finite values"),
    (np.full((40, 60), np.inf), "no positive finite values"),
    (np.ones((40, 60, 3), np.float32), r"must be a 2-D array, got shape \(40, 60, 3\)"),
])
def test_depth_npy_must_be_numeric_2d(tmp_path, array, msg):
    p = tmp_path / "d.npy"
    _save_pickled(p, array)
    with pytest.raises(InputError, match=msg):
        load_depth_file(str(p), (60, 40))


def test_depth_npy_integer_and_half_precision(tmp_path):
    for dtype in (np.uint16, np.int32, np.float16, np.float64):
        np.save(tmp_path / "d.npy", np.full((40, 60), 3, dtype))
        d, metric = load_depth_file(str(tmp_path / "d.npy"), (60, 40))
        assert metric and d.dtype == np.float32 and (d == 3).all()
