"""The model zoo's real loading, pre- and post-processing code, offline: a tiny randomly
initialised Depth Anything model written with save_pretrained (no network, ever)."""
import os

import numpy as np
import pytest

from helpers import save_tiny_depth_anything
from photo3d.inference import depth as depth_models, engine, pipeline
from photo3d.inference.depth import zoo as depth_hf
from photo3d.inference.errors import InputError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = save_tiny_depth_anything(tmp_path_factory.mktemp("tiny-depth-anything"))
    yield str(folder)
    engine.release()


def test_a_model_folder_runs_through_the_real_code(tiny_model):
    rgb = np.random.default_rng(0).uniform(0, 1, (60, 90, 3)).astype(np.float32)
    depth, subject, extras = depth_models.estimate_with_info(tiny_model, rgb)
    assert depth.shape == (60, 90) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and (depth > 0).all() and subject is None and extras == {}
    assert any(k.startswith("hf:") for k in engine.loaded())               # loaded once, kept
    again, _, _ = depth_models.estimate_with_info(tiny_model, rgb)
    assert np.array_equal(depth, again)


def test_the_pipeline_takes_a_model_folder(tiny_model, small_portrait):
    r = pipeline.run(small_portrait, pipeline.Settings(depth_model=tiny_model, portrait=False))
    assert r.depth_model == tiny_model and r.foreground_mesh.n_vertices > 0


def test_offline_never_downloads(monkeypatch, tmp_path):
    monkeypatch.setenv("PHOTO3D_MODEL_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")           # belt and braces: no test may reach the network
    depth_hf.set_offline(True)
    try:
        assert not depth_hf.cached("dpt-hybrid-midas")
        with pytest.raises(InputError, match="not downloaded and online access is off"):
            depth_hf.local_folder("dpt-hybrid-midas")
    finally:
        depth_hf.set_offline(False)
    assert not os.path.exists(tmp_path / "empty-cache" / "models--Intel--dpt-hybrid-midas" / "snapshots")


def test_bad_folders_and_names_are_clear(tmp_path):
    with pytest.raises(InputError, match="not a model folder"):
        depth_hf.local_folder(str(tmp_path))
    with pytest.raises(InputError, match="unknown depth model"):
        depth_models.get_model("no-such-model")


def test_zoo_is_listed_with_licences():
    for name in ("depth-anything-v2-small", "depth-anything-v2-base", "depth-anything-v2-large", "depth-pro",
                 "dpt-hybrid-midas"):
        m = depth_models.get_model(name)
        assert m.size_mb > 0 and m.licence
    assert "non-commercial" in depth_models.get_model("depth-anything-v2-large").licence
    assert depth_models.get_model("depth-pro").metric


def test_engine_picks_a_device_and_precision():
    assert engine.pick_device() in ("cuda", "mps", "cpu")
    assert engine.pick_device("cpu") == "cpu"
    assert engine.pick_dtype("cpu") == torch.float32
    assert engine.out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert "smaller" in str(engine.oom_message("x", "cuda"))


@pytest.fixture(scope="module")
def tiny_segmenter(tmp_path_factory):
    from transformers import ConvNextConfig, SegformerImageProcessor, UperNetConfig, UperNetForSemanticSegmentation
    torch.manual_seed(0)
    backbone = ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                              out_features=["stage1", "stage2", "stage3", "stage4"])
    config = UperNetConfig(backbone_config=backbone, hidden_size=16, num_labels=150, use_auxiliary_head=False)
    folder = tmp_path_factory.mktemp("tiny-upernet")
    UperNetForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    yield str(folder)
    engine.release()


def test_a_segmentation_model_folder_finds_people_through_the_real_code(tiny_segmenter, small_portrait):
    from photo3d.inference import portrait
    rgb = np.random.default_rng(1).uniform(0, 1, (60, 90, 3)).astype(np.float32)
    p = depth_hf.person_probability(tiny_segmenter, rgb)
    assert p.shape == (60, 90) and p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
    m = portrait.person_mask(rgb, None, tiny_segmenter)
    assert m is None or (m.dtype == bool and m.shape == (60, 90))
    r = pipeline.run(small_portrait, pipeline.Settings(segmenter=tiny_segmenter))
    assert r.foreground_mesh.n_vertices > 0 and r.mask.any()


def test_offline_segmenter_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PHOTO3D_MODEL_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    depth_hf.set_offline(True)
    try:
        with pytest.raises(InputError, match="not downloaded and online access is off"):
            depth_hf.person_probability("upernet-convnext-small", np.zeros((8, 8, 3), np.float32))
    finally:
        depth_hf.set_offline(False)
