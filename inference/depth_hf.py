"""Downloadable depth models through Hugging Face ``transformers`` (the model zoo).

Each model is fetched on first use into the Hugging Face cache (or ``PHOTO3D_MODEL_DIR``),
never when offline: ``set_offline(True)`` (Blender's "Allow Online Access" off, or the
CLI's ``--offline``) turns a missing model into a clear message instead of a download.
A local folder written by ``save_pretrained`` works as a model too (``--depth-model PATH``).
``huggingface_hub`` downloads into temporary files and renames them when complete, so an
interrupted download leaves no broken cache entry, and a later run resumes it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import engine
from .errors import InputError


@dataclass(frozen=True)
class ZooModel:
    name: str
    repo: str
    licence: str
    size_mb: int
    summary: str


ZOO = {m.name: m for m in (
    ZooModel("depth-anything-v2-small", "depth-anything/Depth-Anything-V2-Small-hf", "Apache-2.0", 99,
             "Depth Anything V2 Small: sharp, robust relative depth; the recommended online model"),
    ZooModel("depth-anything-v2-base", "depth-anything/Depth-Anything-V2-Base-hf",
             "CC-BY-NC-4.0 (non-commercial)", 390, "Depth Anything V2 Base: finer detail, slower"),
    ZooModel("depth-anything-v2-large", "depth-anything/Depth-Anything-V2-Large-hf",
             "CC-BY-NC-4.0 (non-commercial)", 1340, "Depth Anything V2 Large: the most detail; needs a GPU to be quick"),
    ZooModel("depth-pro", "apple/DepthPro-hf", "Apple ML research licence (non-commercial)", 1900,
             "Apple Depth Pro: metric depth and the photo's field of view"),
    ZooModel("dpt-hybrid-midas", "Intel/dpt-hybrid-midas", "Apache-2.0", 490,
             "MiDaS v3 DPT-Hybrid: the classic relative depth model"),
)}

# Person segmentation, online (inference/portrait.py uses MediaPipe's offline network otherwise).
SEGMENTERS = {m.name: m for m in (
    ZooModel("upernet-convnext-small", "openmmlab/upernet-convnext-small", "MIT", 330,
             "UperNet + ConvNeXt-S on ADE20K: people with arms, hands and what they hold"),
)}

_offline = [os.environ.get("PHOTO3D_OFFLINE", "") not in ("", "0")]


def set_offline(value: bool):
    _offline[0] = bool(value)


def offline() -> bool:
    return _offline[0]


def cache_dir() -> str | None:
    return os.environ.get("PHOTO3D_MODEL_DIR") or None


def available() -> bool:
    """PyTorch and transformers are installed (the zoo needs them; photo3d otherwise not)."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return engine.torch_available()


def cached(name: str) -> bool:
    if os.path.isdir(name):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    path = try_to_load_from_cache({**ZOO, **SEGMENTERS}[name].repo, "config.json", cache_dir=cache_dir())
    return isinstance(path, str)


def local_folder(name: str) -> str:
    """The model's files on disk: a local folder as is, a zoo model from the cache,
    downloading it first when online."""
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "config.json")):
            raise InputError(f"{name}: not a model folder (no config.json; write one with save_pretrained)")
        return name
    zoo = {**ZOO, **SEGMENTERS}
    if name not in zoo:
        raise InputError(f"unknown model {name!r}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import LocalEntryNotFoundError
    m = zoo[name]
    patterns = ["*.json", "*.safetensors", "*.txt"]
    try:
        return snapshot_download(m.repo, cache_dir=cache_dir(), allow_patterns=patterns, local_files_only=offline())
    except LocalEntryNotFoundError:
        raise InputError(f"model {name} ({m.size_mb} MB) is not downloaded and online access is off: "
                         "turn on Preferences > System > Allow Online Access in Blender (or run the CLI "
                         "without --offline) once, or pick the bundled model") from None
    except OSError as e:   # no network, disk full, ...
        raise InputError(f"downloading model {name} failed: {e}") from None


def _load(folder: str):
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation
    device = engine.pick_device()
    dtype = engine.pick_dtype(device)
    processor = AutoImageProcessor.from_pretrained(folder)
    model = AutoModelForDepthEstimation.from_pretrained(folder, torch_dtype=dtype).to(device).eval()
    return processor, model, device, dtype


def run(name: str, rgb: np.ndarray) -> tuple[np.ndarray, None, dict]:
    """(z-depth, no subject, extras) for float RGB in [0, 1]; extras may hold ``hfov_deg``
    (Depth Pro's estimate of the photo's field of view)."""
    if not available():
        raise InputError(f"depth model {name} needs PyTorch and transformers: pip install torch transformers "
                         "(or pick the bundled model)")
    import torch
    from .depth_net import inverse_depth_to_z
    folder = local_folder(name)
    processor, model, device, dtype = engine.get("hf:" + os.path.abspath(folder) if os.path.isdir(name)
                                                 else "hf:" + name, lambda: _load(folder))
    engine.set_threads()
    h, w = rgb.shape[:2]
    img = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    try:
        inputs = processor(images=img, return_tensors="pt")
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        with torch.inference_mode():
            out = model(**inputs)
    except RuntimeError as e:
        if engine.out_of_memory(e):
            engine.release()
            raise engine.oom_message(name, device) from None
        raise
    post = processor.post_process_depth_estimation(out, target_sizes=[(h, w)])[0]
    pred = post["predicted_depth"].float().cpu().numpy().astype(np.float32)
    extras = {}
    if "field_of_view" in post and post["field_of_view"] is not None:     # Depth Pro: metric depth
        extras["hfov_deg"] = float(post["field_of_view"])
        depth = np.clip(np.nan_to_num(pred, nan=1e3), 1e-3, 1e4).astype(np.float32)
    else:
        depth = inverse_depth_to_z(pred)      # relative inverse depth, as photo3d's own net
    return depth, None, extras


def _load_segmenter(folder: str):
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation
    device = engine.pick_device()
    processor = AutoImageProcessor.from_pretrained(folder)
    model = AutoModelForSemanticSegmentation.from_pretrained(folder).to(device).eval()
    return processor, model, device


def person_probability(name: str, rgb: np.ndarray) -> np.ndarray:
    """Probability of "person" per pixel (float32, ``rgb``'s size) from a segmentation
    model of the zoo or a model folder; ADE20K's class 12 when no label says "person"."""
    if not available():
        raise InputError(f"segmentation model {name} needs PyTorch and transformers (pip install torch "
                         "transformers), or use the built-in person segmentation")
    import torch
    folder = local_folder(name)
    processor, model, device = engine.get("seg:" + os.path.abspath(folder), lambda: _load_segmenter(folder))
    engine.set_threads()
    h, w = rgb.shape[:2]
    img = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    inputs = {k: v.to(device) for k, v in processor(images=img, return_tensors="pt").items()}
    with torch.inference_mode():
        logits = model(**inputs).logits.float()
    labels = {i: str(v).lower() for i, v in model.config.id2label.items()}
    person = next((i for i, v in labels.items() if v == "person" or v.startswith("person")), 12)
    logits = torch.nn.functional.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return torch.softmax(logits, 1)[0, person].cpu().numpy().astype(np.float32)
