"""Depth Pro's field-of-view estimate becomes the scene camera's field of view when the user
gave none and the photo has no EXIF focal length: a tiny random Depth Pro (the real
transformers model, with its FOV head) through transformers' own post-processing and
photo3d's, then the pipeline and the Blender camera. photo3d pre- and post-processes Depth
Pro itself (transformers' processors need torchvision): checked here to compute what
transformers' processor computes, and to run with torchvision absent."""
import importlib
import json
import os
import shutil
import sys
import types

import cv2
import numpy as np
import pytest

from photo3d.inference import depth as depth_models, pipeline
from photo3d.inference.depth import zoo as depth_hf

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def tiny_depth_pro_model():
    """A tiny random Depth Pro (64 x 64 input) with its field-of-view head, the FOV's bias
    moved to about 60 degrees (random weights give near 0, which no camera has) and its inverse
    depth to about 1 (random weights give zeros: depth clamped to 1e4 beside millimetres)."""
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
    with torch.no_grad():
        model.fov_model.head.layers[-1].bias.add_(50.0)
        model.head.layers[-2].weight.mul_(0.005)                 # inverse depth about 1, never 0:
        model.head.layers[-2].bias.add_(1.0)                    # a scene, not 7 decades of depth
    return model


def shim_transformers_processor(monkeypatch):
    """transformers' real DepthProImageProcessor (slow) made to run without torchvision: it is
    marked as needing it, and uses it only for the name of an interpolation mode."""
    from transformers.image_utils import PILImageResampling
    ipdp = importlib.import_module("transformers.models.depth_pro.image_processing_depth_pro")
    monkeypatch.setattr(ipdp, "requires_backends", lambda *a, **k: None)
    monkeypatch.setattr(ipdp, "pil_torch_interpolation_mapping",
                        {PILImageResampling.BILINEAR: types.SimpleNamespace(value="bilinear")}, raising=False)
    return ipdp.DepthProImageProcessor


@pytest.fixture(scope="module")
def tiny_depth_pro_folder(tmp_path_factory):
    """The tiny Depth Pro and a preprocessor config written by transformers' own processor
    (non-default mean and std, so that they are read, not assumed), with save_pretrained."""
    from photo3d.inference import engine
    folder = tmp_path_factory.mktemp("tiny-depth-pro")
    tiny_depth_pro_model().save_pretrained(folder)
    with pytest.MonkeyPatch.context() as mp:
        shim_transformers_processor(mp)(size={"height": 64, "width": 64}, image_mean=[0.485, 0.456, 0.406],
                                        image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    yield str(folder)
    engine.release()


@pytest.fixture(scope="module")
def tiny_depth_pro_output():
    model = tiny_depth_pro_model()
    with torch.inference_mode():
        return model(pixel_values=torch.rand(1, 3, 64, 64) * 2 - 1)


def test_depth_pro_post_processing_gives_metric_depth_and_the_field_of_view(tiny_depth_pro_output, monkeypatch):
    out = tiny_depth_pro_output
    assert out.field_of_view is not None                      # the model's own FOV head
    # transformers' real post-processing, and photo3d's own
    proc = shim_transformers_processor(monkeypatch)()
    post = proc.post_process_depth_estimation(out, target_sizes=[(30, 40)])[0]
    depth, extras = depth_hf.depth_from_post(post)
    assert depth.shape == (30, 40) and depth.dtype == np.float32 and (depth > 0).all()
    assert extras["hfov_deg"] == pytest.approx(float(out.field_of_view[0]), rel=1e-5)
    # a relative model (no field of view): inverse depth turned into z-depth, no estimate
    rel, extras = depth_hf.depth_from_post({"predicted_depth": torch.rand(30, 40) + 0.5})
    assert extras == {} and rel.shape == (30, 40) and (rel > 0).all()


def test_photo3d_processes_depth_pro_as_transformers_does(tiny_depth_pro_folder, monkeypatch, tmp_path):
    folder = tiny_depth_pro_folder
    theirs = shim_transformers_processor(monkeypatch).from_pretrained(folder)
    ours = depth_hf.DepthProProcessor(folder)
    assert ours.size == (64, 64) and np.allclose(ours.std, [0.229, 0.224, 0.225])   # from the saved config
    img = np.random.default_rng(0).integers(0, 256, (45, 70, 3), np.uint8)            # not the model's shape
    pv_theirs = theirs(images=img, return_tensors="pt")["pixel_values"]
    pv_ours = ours(images=img, return_tensors="pt")["pixel_values"]
    assert pv_ours.shape == pv_theirs.shape == (1, 3, 64, 64) and pv_ours.dtype == torch.float32
    assert torch.allclose(pv_ours, pv_theirs, rtol=0, atol=1e-5)
    from transformers import AutoModelForDepthEstimation
    model = AutoModelForDepthEstimation.from_pretrained(folder).eval()
    with torch.inference_mode():
        out = model(pixel_values=pv_theirs)
    assert 30 < float(out.field_of_view[0]) < 90
    for size in [(45, 70), (90, 60)]:
        a = theirs.post_process_depth_estimation(out, target_sizes=[size])[0]
        b = ours.post_process_depth_estimation(out, target_sizes=[size])[0]
        assert b["predicted_depth"].shape == a["predicted_depth"].shape == size
        assert torch.allclose(b["predicted_depth"], a["predicted_depth"], rtol=1e-4, atol=0)
        assert float(b["field_of_view"]) == pytest.approx(float(a["field_of_view"]), rel=1e-4)
        assert float(b["focal_length"]) == pytest.approx(float(a["focal_length"]), rel=1e-4)
        da, ea = depth_hf.depth_from_post(a)
        db, eb = depth_hf.depth_from_post(b)
        assert np.allclose(db, da, rtol=1e-4, atol=0) and eb["hfov_deg"] == pytest.approx(ea["hfov_deg"], rel=1e-4)
    # no target size: the model's inverse depth inverted, as transformers' does
    a = theirs.post_process_depth_estimation(out)[0]
    b = ours.post_process_depth_estimation(out)[0]
    assert b["focal_length"] is None and torch.allclose(b["predicted_depth"], a["predicted_depth"], rtol=1e-4)
    # a folder without a preprocessor config: the model's own input size, transformers' defaults
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(os.path.join(folder, "config.json"), bare / "config.json")
    default = depth_hf.DepthProProcessor(str(bare))
    assert default.size == (64, 64) and np.allclose(default.mean, 0.5) and default.mode == "bilinear"


def test_depth_pro_runs_without_torchvision(tiny_depth_pro_folder, small_portrait, monkeypatch):
    """The whole Depth Pro path with torchvision unavailable (transformers told so, the module
    hidden), its field of view through to pipeline.field_of_view."""
    import transformers.utils
    import transformers.utils.import_utils as iu

    from photo3d.inference import engine
    monkeypatch.setitem(sys.modules, "torchvision", None)              # import torchvision fails
    for mod in (iu, transformers.utils):
        monkeypatch.setattr(mod, "is_torchvision_available", lambda: False, raising=False)
    monkeypatch.setattr(iu, "_torchvision_available", False, raising=False)
    engine.release()                                                    # load afresh, under the patches
    folder = tiny_depth_pro_folder
    with open(os.path.join(folder, "config.json")) as f:
        assert json.load(f)["model_type"] == "depth_pro"
    rgb = np.random.default_rng(2).uniform(0, 1, (48, 80, 3)).astype(np.float32)
    depth, subject, extras = depth_models.estimate_with_info(folder, rgb)
    assert depth.shape == (48, 80) and depth.dtype == np.float32 and (depth > 0).all() and subject is None
    def not_loaded():
        raise AssertionError("the model was not kept loaded")
    processor = engine.get("hf:" + os.path.abspath(folder), not_loaded)[0]
    assert isinstance(processor, depth_hf.DepthProProcessor)          # photo3d's, not transformers'
    # the model's own estimate, computed here from the model itself
    from transformers import AutoModelForDepthEstimation
    model = AutoModelForDepthEstimation.from_pretrained(folder).eval()
    img = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    with torch.inference_mode():
        fov = float(model(**depth_hf.DepthProProcessor(folder)(images=img)).field_of_view[0])
    assert 30 < fov < 90 and extras["hfov_deg"] == pytest.approx(fov, rel=1e-4)
    assert pipeline.field_of_view(None, None, extras) == (pytest.approx(fov, rel=1e-4), "model")
    r = pipeline.run(small_portrait, pipeline.Settings(depth_model=folder, portrait=False))   # PNG: no EXIF
    assert r.hfov_source == "model" and 30 < r.hfov_deg < 90
    assert r.metric and depth_models.get_model(folder).metric     # a local Depth Pro is metric as the zoo's
    assert "torchvision" not in {m.split(".")[0] for m, v in sys.modules.items() if v is not None}
    engine.release()


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
