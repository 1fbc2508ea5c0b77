"""Downloadable depth models through Hugging Face ``transformers`` (the model zoo), and the
download machinery every downloadable model shares (the ONNX ones in ``onnx_models.py`` too).

Each model is fetched on first use into the Hugging Face cache (or ``PHOTO3D_MODEL_DIR``),
never when offline: ``set_offline(True)`` (Blender's "Allow Online Access" off, or the
CLI's ``--offline``) turns a missing model into a clear message instead of a download.
A local folder written by ``save_pretrained`` works as a model too (``--depth-model PATH``).
Downloads go through ``huggingface_hub`` (``hf_hub_download`` per file, into ``.incomplete``
files renamed when whole, resumed by the next run), report bytes per file and overall,
are checked against the Hub's checksums, and only then get a ``photo3d-complete.json``
manifest: a snapshot without it (interrupted, failed) is never taken as cached. What one
download takes from a repository is a :class:`Fetch`: the transformers models take configs
and safetensors; an ONNX model takes one precision's ``.onnx`` file and its configs, with a
manifest of its own per file so that two precisions of one repository are cached apart.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import engine, files
from ..errors import Cancelled, InputError


@dataclass(frozen=True)
class ZooModel:
    name: str
    repo: str
    licence: str
    size_mb: int
    summary: str
    files: tuple[str, ...] = ()      # exactly these files (an ONNX model); () = PATTERNS, with a config.json

    @property
    def fetch(self) -> Fetch:
        if self.files:        # exactly these files, whole when each is there
            return Fetch(self.repo, self.files, self.files, MANIFEST, self.size_mb, loose=self.files)
        return Fetch(self.repo, tuple(PATTERNS), ("config.json",), MANIFEST, self.size_mb)


# Only models without a verified ONNX export stay here: Depth Anything V2 runs as ONNX
# (onnx_models.py), with no PyTorch.
ZOO = {m.name: m for m in (
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


def entry(name: str) -> ZooModel:
    """A downloadable model of any kind by name: depth, person segmentation, inpainting."""
    from ..inpaint_net import INPAINTERS
    models = {**ZOO, **SEGMENTERS, **INPAINTERS}
    if name not in models:
        raise InputError(f"unknown model {name!r}")
    return models[name]


_offline = [os.environ.get("PHOTO3D_OFFLINE", "") not in ("", "0")]


def set_offline(value: bool):
    _offline[0] = bool(value)


def offline() -> bool:
    return _offline[0]


def cache_dir() -> str | None:
    return os.environ.get("PHOTO3D_MODEL_DIR") or None


# Where the user gets them: the extension installs them on request (runtime/).
INSTALL_HINT = ("in Blender, click Install PyTorch & Transformers in the 3D Photo panel or the extension's "
                "preferences; elsewhere pip install torch transformers")


def available() -> bool:
    """PyTorch and transformers are installed (the zoo needs them; photo3d otherwise not).
    Looked up, not imported: the panel and ``models`` ask this to label the PyTorch models,
    and importing them would load PyTorch (seconds, hundreds of MB) for nothing."""
    import importlib.util
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("transformers", "torch"))
    except (ImportError, ValueError):
        return False


# --- downloading --------------------------------------------------------------------------
# What a transformers model needs from its repository (configs, weights, vocabularies).
PATTERNS = ["*.json", "*.safetensors", "*.txt"]
# Written into the model's cache folder only once every file is there and checked: a
# snapshot without it is a partial download and never counts as cached.
MANIFEST = "photo3d-complete.json"


@dataclass(frozen=True)
class Fetch:
    """What one download takes from a Hub repository: the files matching ``patterns``
    (``huggingface_hub``'s allow patterns), of which ``required`` must exist, marked whole
    by the manifest file ``manifest`` in the repository's cache folder. ``loose``: the files
    that make a snapshot other tools downloaded (no manifest) usable; None: a transformers
    model's config and weights."""
    repo: str
    patterns: tuple[str, ...]
    required: tuple[str, ...]
    manifest: str = MANIFEST
    size_mb: float = 0.0
    loose: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DownloadStatus:
    """Where a model download stands (bytes), sent to ``report`` callbacks."""
    model: str
    file: str                 # the file being fetched
    file_done: int
    file_total: int
    done: int                 # all files
    total: int
    files_done: int
    files: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def finished(self) -> bool:
        return self.files_done >= self.files

    def text(self) -> str:
        mb = 1e6
        if self.finished:
            return f"Downloaded {self.model} ({self.total / mb:.0f} MB)"
        return (f"Downloading {self.model}: {self.done / mb:.1f} / {self.total / mb:.1f} MB "
                f"({self.fraction:.0%}; {self.file} {self.file_done / mb:.1f} / {self.file_total / mb:.1f} MB, "
                f"file {self.files_done + 1} of {self.files})")


DownloadFn = Callable[[DownloadStatus], None]


def _cache_root() -> str:
    if cache_dir():
        return cache_dir()
    try:
        from huggingface_hub import constants
        return constants.HF_HUB_CACHE
    except ImportError:        # huggingface_hub's own default: a cached model runs without it
        home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
        return os.environ.get("HF_HUB_CACHE") or os.path.join(home, "hub")


def repo_dir(repo: str) -> str:
    """The model's folder in the Hugging Face cache (``models--org--name``, as
    ``huggingface_hub.file_download.repo_folder_name`` names it)."""
    return os.path.join(_cache_root(), "models--" + repo.replace("/", "--"))


def _weights_complete(folder: str) -> bool:
    """A snapshot someone else downloaded (no manifest): config and all weights present."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        return False
    if os.path.isfile(os.path.join(folder, "model.safetensors")):
        return True
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.isfile(index):
        return False
    try:
        with open(index, encoding="utf-8") as f:
            shards = set(json.load(f)["weight_map"].values())
    except (OSError, ValueError, KeyError):
        return False
    return all(os.path.isfile(os.path.join(folder, s)) for s in shards)


def complete_snapshot(repo: str, manifest: str = MANIFEST, required: tuple[str, ...] | None = None) -> str | None:
    """The folder of a complete, checked download of ``repo`` (its ``manifest`` names every
    file and its size), or None (never downloaded, only partly, or a file since damaged).
    A snapshot other tools fetched (no manifest) counts when its ``required`` files are
    there (None: a transformers model's config and weights). Needs no network."""
    base = repo_dir(repo)
    try:
        with open(os.path.join(base, manifest), encoding="utf-8") as f:
            record = json.load(f)
        folder = os.path.join(base, "snapshots", record["sha"])
        ok = all(os.path.isfile(os.path.join(folder, n)) and os.path.getsize(os.path.join(folder, n)) == size
                 for n, size in record["files"].items())
        return folder if ok else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    try:                     # fetched by other tools (transformers, huggingface-cli): check its files
        with open(os.path.join(base, "refs", "main"), encoding="utf-8") as f:
            folder = os.path.join(base, "snapshots", f.read().strip())
    except OSError:
        return None
    if required is None:
        return folder if _weights_complete(folder) else None
    return folder if all(os.path.isfile(os.path.join(folder, r)) for r in required) else None


def fetch_complete(fetch: Fetch) -> str | None:
    return complete_snapshot(fetch.repo, fetch.manifest, fetch.loose)


def forget(fetch: Fetch, folder: str | None = None):
    """Stop counting a download as whole (a file in it turned out damaged): its manifest and,
    in the snapshot ``folder``, its required files go; the next online run fetches them again."""
    paths = [os.path.join(repo_dir(fetch.repo), fetch.manifest)]
    paths += [os.path.join(folder, r) for r in fetch.required] if folder else []
    for p in paths:
        try:
            _remove(p)
        except OSError:
            pass


def cached(name: str) -> bool:
    """On disk and complete (a partial download is not cached)."""
    if os.path.isdir(name):
        return True
    return fetch_complete(entry(name).fetch) is not None


def local_folder(name: str, report: DownloadFn | None = None) -> str:
    """The model's files on disk: a local folder as is, a zoo model from the cache,
    downloading it first when online (``report`` hears how far the download is)."""
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "config.json")):
            raise InputError(f"{name}: not a model folder (no config.json; write one with save_pretrained)")
        return name
    return local_files(name, entry(name).fetch, report)


def offline_error(name: str, size_mb: float) -> InputError:
    return InputError(f"model {name} ({size_mb:.0f} MB) is not downloaded and online access is off: "
                      "turn on Preferences > System > Allow Online Access in Blender (or run the CLI "
                      "without --offline) once, or pick the bundled model")


def local_files(name: str, fetch: Fetch, report: DownloadFn | None = None) -> str:
    """The snapshot folder holding ``fetch``'s files: from the cache, or downloaded first
    when online access is allowed (a clear error when it is not)."""
    folder = fetch_complete(fetch)
    if folder is not None:
        return folder
    if offline():
        raise offline_error(name, fetch.size_mb)
    return download_files(name, fetch, report)

class _Progress:
    """Adds up the hub's per-file byte counts into one status for ``report``."""

    def __init__(self, model: str, sizes: dict[str, int], report: DownloadFn | None):
        self.model, self.sizes, self.report = model, sizes, report
        self.total = sum(sizes.values())
        self.finished_bytes = 0           # files done
        self.files_done = 0
        self.file, self.file_done, self.in_file = "", 0, False
        self.lock = threading.Lock()
        progress = self

        class Bar:
            """What the hub's download code calls as a ``tqdm`` progress bar."""

            def __init__(self, *args, total=None, initial=0, desc=None, **kwargs):
                self.total, self.n, self.desc = total, int(initial or 0), desc
                progress._bytes(self.n)

            def update(self, n=1):
                if n:
                    self.n += int(n)
                    progress._bytes(self.n)
                return True

            def close(self):
                pass

            def refresh(self, *a, **k):
                pass

            def reset(self, total=None):
                self.n, self.total = 0, total
                progress._bytes(0)

            def set_description(self, desc=None, refresh=True):
                self.desc = desc

            def set_postfix(self, *a, **k):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        self.tqdm_class = Bar

    def status(self) -> DownloadStatus:
        total_file = self.sizes.get(self.file, 0)
        done = min(self.file_done, total_file) if total_file else self.file_done
        return DownloadStatus(self.model, self.file, done, total_file,
                              self.finished_bytes + (done if self.in_file else 0),
                              self.total, self.files_done, len(self.sizes))

    def _send(self):
        if self.report is not None:
            self.report(self.status())

    def begin(self, file: str):
        with self.lock:
            self.file, self.file_done, self.in_file = file, 0, True
        self._send()

    def _bytes(self, n: int):
        with self.lock:
            self.file_done = n
        self._send()            # may raise (Cancelled): the hub stops and keeps the partial file

    def end(self, file: str):
        with self.lock:
            self.finished_bytes += self.sizes.get(file, 0)
            self.files_done += 1
            self.file_done, self.in_file = self.sizes.get(file, 0), False
        self._send()


_route = threading.local()
_router_lock = threading.Lock()


def _install_progress_router():
    """Send the hub's per-file byte progress bars to this thread's ``_Progress``.

    ``hf_hub_download`` takes no progress class before huggingface_hub 1.0; every download
    it makes draws its bar through ``file_download._get_progress_bar_context``. Wrapped once
    here: in a thread that is downloading a photo3d model the bar is ours, anywhere else the
    hub's own. Without that hook the status still advances file by file."""
    import huggingface_hub.file_download as fd
    with _router_lock:
        original = getattr(fd, "_get_progress_bar_context", None)
        if original is None or getattr(original, "photo3d_router", False):
            return

        def routed(*args, **kwargs):
            progress = getattr(_route, "progress", None)
            if progress is None or kwargs.get("_tqdm_bar") is not None:
                return original(*args, **kwargs)
            return contextlib.closing(progress.tqdm_class(total=kwargs.get("total"),
                                                          initial=kwargs.get("initial", 0),
                                                          desc=kwargs.get("desc")))

        routed.photo3d_router = True
        fd._get_progress_bar_context = routed


def _hash_ok(path: str, sibling) -> bool:
    """The file matches the Hub's checksum: SHA-256 for LFS files, the git blob id otherwise."""
    lfs = getattr(sibling, "lfs", None)
    want = getattr(lfs, "sha256", None) or (lfs.get("sha256") if isinstance(lfs, dict) else None)
    if want:
        h = hashlib.sha256()
    elif getattr(sibling, "blob_id", None):
        want = sibling.blob_id
        h = hashlib.sha1()
        h.update(b"blob %d\0" % os.path.getsize(path))
    else:
        return True
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest() == want


def _drop_partials(base: str):
    for part in glob.glob(os.path.join(base, "blobs", "*.incomplete")):
        try:
            os.remove(part)
        except OSError:
            pass

def _remove(path: str):
    for p in (os.path.realpath(path), path):
        if os.path.lexists(p):
            os.remove(p)


def download(name: str, report: DownloadFn | None = None) -> str:
    """Fetch a zoo model into the cache (see :func:`download_files`)."""
    return download_files(name, entry(name).fetch, report)


def download_files(name: str, fetch: Fetch, report: DownloadFn | None = None) -> str:
    """Fetch ``fetch``'s files into the cache with the hub's resumable downloads, reporting
    bytes per file and overall; check every file against the Hub's checksums, then mark the
    snapshot complete. An interrupted or failed download is never taken as cached: it is
    resumed by the next run (disk full: its partial files are removed). A file already in
    the cache whose size or checksum is wrong (damaged since) is removed and fetched again."""
    try:
        import huggingface_hub
        from huggingface_hub.utils import filter_repo_objects
    except ImportError:
        raise InputError(f"downloading model {name} needs the huggingface_hub package (pip install "
                         "huggingface_hub; in Blender it comes with the extension)") from None
    base = repo_dir(fetch.repo)
    hint = "run again to resume it"
    try:
        info = huggingface_hub.HfApi().model_info(fetch.repo, files_metadata=True)
    except Exception as e:  # noqa: BLE001 - no network, proxy, Hub down: all the same to the user
        raise InputError(f"downloading model {name} failed: cannot reach the Hugging Face Hub "
                         f"({type(e).__name__}); check the connection, or pick the bundled model") from None
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    files = list(filter_repo_objects(sorted(siblings), allow_patterns=list(fetch.patterns)))
    missing = [r for r in fetch.required if r not in files]
    if missing:
        raise InputError(f"downloading model {name} failed: {fetch.repo} has no {', '.join(missing)}")
    progress = _Progress(name, {f: int(siblings[f].size or 0) for f in files}, report)
    _install_progress_router()
    import inspect
    takes_bar = "tqdm_class" in inspect.signature(huggingface_hub.hf_hub_download).parameters
    folder = os.path.join(base, "snapshots", info.sha)
    _route.progress = progress
    try:
        for f in files:
            progress.begin(f)
            extra = {"tqdm_class": progress.tqdm_class} if takes_bar else {}
            local = os.path.join(folder, f)
            size = siblings[f].size
            if os.path.exists(local) and size is not None and os.path.getsize(local) != size:
                _remove(local)                 # truncated or overwritten since: the hub would keep it
            had = os.path.exists(local)
            for attempt in range(2):
                path = huggingface_hub.hf_hub_download(fetch.repo, f, revision=info.sha, cache_dir=cache_dir(),
                                                       **extra)
                if _hash_ok(path, siblings[f]):
                    break
                _remove(path)
                if not had or attempt:         # a fresh download that is wrong: the Hub or the line
                    raise InputError(f"downloading model {name} failed: {f} does not match the Hub's checksum "
                                     f"(removed; {hint})")
            progress.end(f)
        files_sizes = {f: os.path.getsize(os.path.join(folder, f)) for f in files}
        os.makedirs(os.path.join(base, "refs"), exist_ok=True)
        _write_atomic(os.path.join(base, "refs", "main"), info.sha)
        _write_atomic(os.path.join(base, fetch.manifest), json.dumps({"repo": fetch.repo, "sha": info.sha,
                                                                      "files": files_sizes}, indent=1))
    except (InputError, Cancelled):
        raise
    except OSError as e:
        if e.errno == errno.ENOSPC:
            _drop_partials(base)
            raise InputError(f"downloading model {name} failed: the disk is full ({fetch.size_mb:.0f} MB needed "
                             f"in {_cache_root()}; set PHOTO3D_MODEL_DIR to put models elsewhere)") from None
        raise InputError(f"downloading model {name} failed: {e.strerror or e}; {hint}") from None
    except Exception as e:  # noqa: BLE001 - connection dropped, Hub errors: resumable
        raise InputError(f"downloading model {name} failed ({type(e).__name__}: {e}); {hint}") from None
    finally:
        _route.progress = None
    return folder


def _write_atomic(path: str, text: str):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    files.replace(tmp, path)


def _model_type(folder: str) -> str:
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            return str(json.load(f).get("model_type", ""))
    except (OSError, ValueError, AttributeError):
        return ""


# PIL resampling codes (what preprocessor_config.json's "resample" holds) -> torch's modes
_TORCH_MODES = {0: "nearest", 2: "bilinear", 3: "bicubic"}


class DepthProProcessor:
    """What transformers' ``DepthProImageProcessor`` (and its fast twin) compute, in NumPy and
    torch only: those are marked as needing ``torchvision``, which Blender's Python (or a CPU
    torch build without a matching torchvision) may not have. The values come from the
    model's own ``preprocessor_config.json`` (size, resample, rescale factor, mean, std),
    transformers' defaults where it leaves one out.

    Pre-processing, as transformers': rescale (x/255), normalise ((x - mean) / std), then
    resize to the model's size (torch's interpolation, no antialiasing). Post-processing:
    the model's field of view (degrees, horizontal) gives the focal length in pixels of the
    photo, f = W/2 / tan(fov/2); the model's canonical inverse depth times W/f is metric
    inverse depth, resized to the photo's size and inverted (clamped to 1e-4..1e4) to depth."""

    def __init__(self, folder: str):
        from transformers.image_utils import IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD
        cfg = {}
        path = os.path.join(folder, "preprocessor_config.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                cfg = json.load(f)
        size = cfg.get("size")
        if size is None:        # the model's own: its patch at the smallest scale covers the image
            with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
                mc = json.load(f)
            side = int(round(mc["patch_size"] / min(mc["scaled_images_ratios"])))
            size = {"height": side, "width": side}
        if isinstance(size, (int, float)):
            size = {"height": int(size), "width": int(size)}
        if not {"height", "width"} <= set(size):
            raise InputError(f"{folder}: Depth Pro needs a size with height and width, not {size}")
        self.size = (int(size["height"]), int(size["width"]))
        resample = int(cfg.get("resample", 2))
        if resample not in _TORCH_MODES:
            raise InputError(f"{folder}: resampling filter {resample} is not one torch interpolates with")
        self.mode = _TORCH_MODES[resample]
        self.do_resize = bool(cfg.get("do_resize", True))
        self.do_rescale = bool(cfg.get("do_rescale", True))
        self.rescale_factor = float(cfg.get("rescale_factor", 1 / 255))
        self.do_normalize = bool(cfg.get("do_normalize", True))
        mean = cfg.get("image_mean", IMAGENET_STANDARD_MEAN)
        std = cfg.get("image_std", IMAGENET_STANDARD_STD)
        self.mean = np.broadcast_to(np.asarray(mean, np.float32).reshape(-1), 3).copy()
        self.std = np.broadcast_to(np.asarray(std, np.float32).reshape(-1), 3).copy()

    def __call__(self, images: np.ndarray, return_tensors: str = "pt") -> dict:
        """``{"pixel_values": (1, 3, H, W) float32}`` for one uint8 RGB image (h, w, 3)."""
        import torch
        img = np.asarray(images)
        x = img.astype(np.float64) * self.rescale_factor if self.do_rescale else img
        x = x.astype(np.float32)
        if self.do_normalize:
            x = (x - self.mean) / self.std
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        if self.do_resize:
            t = torch.nn.functional.interpolate(t, size=self.size, mode=self.mode)
        return {"pixel_values": t.contiguous()}

    def post_process_depth_estimation(self, outputs, target_sizes=None) -> list[dict]:
        """One dict per image: ``predicted_depth`` (metric z-depth, float32, the target size),
        ``field_of_view`` (degrees) and ``focal_length`` (pixels; None without a target size)."""
        import torch
        inverse = outputs.predicted_depth.float()
        fovs = getattr(outputs, "field_of_view", None)
        results = []
        for i in range(len(inverse)):
            inv = inverse[i]
            fov = None if fovs is None else fovs[i].float()
            focal = None
            if target_sizes is not None:
                h, w = (int(v) for v in target_sizes[i])
                if fov is not None:
                    focal = 0.5 * w / torch.tan(0.5 * torch.deg2rad(fov))
                    inv = inv * w / focal
                inv = torch.nn.functional.interpolate(inv[None, None], size=(h, w), mode=self.mode)[0, 0]
            results.append({"predicted_depth": 1.0 / torch.clamp(inv, min=1e-4, max=1e4),
                            "field_of_view": fov, "focal_length": focal})
        return results


def _load(folder: str):
    from transformers import AutoModelForDepthEstimation
    device = engine.pick_device()
    dtype = engine.pick_dtype(device)
    if _model_type(folder) == "depth_pro":     # transformers' processor would need torchvision
        processor = DepthProProcessor(folder)
    else:
        from transformers import AutoImageProcessor
        try:
            processor = AutoImageProcessor.from_pretrained(folder)
        except ImportError as e:
            missing = "torchvision" if "torchvision" in str(e).lower() else "a package it imports"
            raise InputError(f"this depth model needs {missing}: pip install {missing.split()[0]} "
                             "(into Blender's Python for the extension)") from None
    model = AutoModelForDepthEstimation.from_pretrained(folder, torch_dtype=dtype).to(device).eval()
    return processor, model, device, dtype


def run(name: str, rgb: np.ndarray) -> tuple[np.ndarray, None, dict]:
    """(z-depth, no subject, extras) for float RGB in [0, 1]; extras may hold ``hfov_deg``
    (Depth Pro's estimate of the photo's field of view)."""
    if not available():
        raise InputError(f"depth model {name} needs PyTorch and transformers: {INSTALL_HINT} "
                         "(or pick the bundled model)")
    import torch
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
    depth, extras = depth_from_post(post)
    return depth, None, extras


def depth_from_post(post: dict) -> tuple[np.ndarray, dict]:
    """(z-depth, extras) from one image's ``post_process_depth_estimation`` result. With a
    ``field_of_view`` (Depth Pro): metric depth, and extras' ``hfov_deg`` (the horizontal
    field of view in degrees, which the pipeline uses when the user and the EXIF give none).
    Otherwise relative inverse depth, turned into z-depth as photo3d's own net's."""
    from .net import inverse_depth_to_z
    pred = post["predicted_depth"].float().cpu().numpy().astype(np.float32)
    fov = post.get("field_of_view")
    if fov is not None:
        hfov = float(fov.float().reshape(-1)[0]) if hasattr(fov, "reshape") else float(fov)
        extras = {"hfov_deg": hfov} if np.isfinite(hfov) and 0 < hfov < 180 else {}
        return np.clip(np.nan_to_num(pred, nan=1e3, posinf=1e4), 1e-3, 1e4).astype(np.float32), extras
    return inverse_depth_to_z(pred), {}


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
        raise InputError(f"segmentation model {name} needs PyTorch and transformers ({INSTALL_HINT}), "
                         "or use the built-in person segmentation")
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
