"""Depth Pro's field-of-view estimate becomes the scene camera's field of view when the user
gave none and the photo has no EXIF focal length: a tiny random Depth Pro (the real
transformers model, with its FOV head) through transformers' own post-processing and
photo3d's, then the pipeline and the Blender camera."""
import math
import types

import cv2
import numpy as np
import pytest

from photo3d.inference import depth as depth_models, depth_hf, pipeline

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_depth_pro_output():
    from transformers import DepthProConfig, DepthProForDepthEstimation, Dinov2Config
    torch.manual_seed(0)

    def encoder():
        return Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            image_size=32, patch_size=8).to_dict()
    config = DepthProConfig(fusion_hidden_size=16, patch_size=32, intermediate_hook_ids=[1, 0],
                            intermediate_feature_dims=[16, 16], scaled_images_ratios=[0.5, 1],
                            scaled_images_overlap_ratios=[0.0, 0.25], scaled_images_feature_dims=[16, 16],
                            use_fov_model=True, num_fov_head_layers=1, image_model_config=encoder(),
                            patch_model_config=encoder(), fov_model_config=encoder())
    model = DepthProForDepthEstimation(config).eval()
    with torch.inference_mode():
        return model(pixel_values=torch.rand(1, 3, 64, 64) * 2 - 1)


def test_depth_pro_post_processing_gives_metric_depth_and_the_field_of_view(tiny_depth_pro_output, monkeypatch):
    out = tiny_depth_pro_output
    assert out.field_of_view is not None                      # the model's own FOV head
    # transformers' real post-processing (its image processor is marked as needing torchvision,
    # used there only for the name of an interpolation mode; this environment has none)
    from transformers.image_utils import PILImageResampling
    import importlib
    ipdp = importlib.import_module("transformers.models.depth_pro.image_processing_depth_pro")
    monkeypatch.setattr(ipdp, "requires_backends", lambda *a, **k: None)
    monkeypatch.setattr(ipdp, "pil_torch_interpolation_mapping",
                        {PILImageResampling.BILINEAR: types.SimpleNamespace(value="bilinear")}, raising=False)
    proc = ipdp.DepthProImageProcessor.__new__(ipdp.DepthProImageProcessor)
    proc.resample = PILImageResampling.BILINEAR
    post = proc.post_process_depth_estimation(out, target_sizes=[(30, 40)])[0]
    depth, extras = depth_hf.depth_from_post(post)
    assert depth.shape == (30, 40) and depth.dtype == np.float32 and (depth > 0).all()
    assert extras["hfov_deg"] == pytest.approx(float(out.field_of_view[0]), rel=1e-5)
    # a relative model (no field of view): inverse depth turned into z-depth, no estimate
    rel, extras = depth_hf.depth_from_post({"predicted_depth": torch.rand(30, 40) + 0.5})
    assert extras == {} and rel.shape == (30, 40) and (rel > 0).all()


def test_field_of_view_precedence():
    est = {"hfov_deg": 48.0}
    assert pipeline.field_of_view(70.0, 55.0, est) == (70.0, "user")
    assert pipeline.field_of_view(None, 55.0, est) == (55.0, "exif")
    assert pipeline.field_of_view(None, None, est) == (48.0, "model")
    assert pipeline.field_of_view(None, None, {"hfov_deg": 400.0}) == (150.0, "model")
    assert pipeline.field_of_view(None, None, {})[1] == "default"


@pytest.fixture
def fov_model(monkeypatch):
    """A metric model that estimates the field of view, as Depth Pro does."""
    def run(rgb):
        h, w = rgb.shape[:2]
        depth = np.full((h, w), 3.0, np.float32)
        depth[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = 1.5
        return depth, None, {"hfov_deg": 48.0}
    monkeypatch.setitem(depth_models.MODELS, "fake-depth-pro",
                        depth_models.DepthModel("fake-depth-pro", "fov", "test", 128, run, metric=True))
    return "fake-depth-pro"


def test_estimated_field_of_view_reaches_the_blender_camera(fov_model, tmp_path, blender):
    from photo3d.scene import build, camera
    photo = tmp_path / "no_exif.png"                       # PNG: no EXIF focal length
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8))
    r = pipeline.run(str(photo), pipeline.Settings(depth_model=fov_model, portrait=False))
    assert r.hfov_deg == pytest.approx(48.0) and r.hfov_source == "model" and r.metric
    scene = blender.context.scene
    build.build_scene(scene, r)
    cam = scene.camera
    assert scene.photo3d.hfov == pytest.approx(48.0)
    assert 40 < camera.hfov_of(cam.data) <= 48.0 + 1e-3      # narrowed just enough to stay inside the photo
    scene.photo3d.crop_to_photo = False                      # re-keys: now exactly the photo's
    scene.frame_set(1)
    assert camera.hfov_of(cam.data) == pytest.approx(48.0, abs=0.01)
    build.remove_photo(scene)
    # the user's --fov wins
    r = pipeline.run(str(photo), pipeline.Settings(depth_model=fov_model, portrait=False, hfov_deg=70.0))
    assert r.hfov_deg == 70.0 and r.hfov_source == "user"
