"""Model downloads, offline: the Hub's metadata call and ``hf_hub_download`` are replaced by
fakes that serve a tiny randomly initialised model and draw their progress bars exactly
as huggingface_hub's own downloads do (``file_download._get_progress_bar_context``, with
an ``.incomplete`` file renamed when whole). Checked: bytes per file and overall reach the
caller, the CLI and the Make 3D Photo job's status line; an interrupted, failing, corrupt
or cancelled download is never taken as cached, and the next run resumes it."""
import errno
import hashlib
import io
import os
import threading
import types

import numpy as np
import pytest

import hub as fakehub
from helpers import save_tiny_depth_anything
from photo3d.inference import depth as depth_models, engine, pipeline
from photo3d.inference.depth import zoo as depth_hf
from photo3d.inference.errors import Cancelled, InputError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
huggingface_hub = pytest.importorskip("huggingface_hub")

# A model that runs through PyTorch (the Depth Anything V2 ones are ONNX now); the tiny
# Depth Anything files stand in for its repository: transformers loads either the same way.
NAME = "dpt-hybrid-midas"
REPO = depth_hf.ZOO[NAME].repo
SHA, CHUNK = fakehub.SHA, fakehub.CHUNK


@pytest.fixture(scope="module")
def repo_files(tmp_path_factory):
    """The files of a tiny Depth Anything repository, by name (bytes)."""
    folder = save_tiny_depth_anything(tmp_path_factory.mktemp("tiny-repo"))
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    files["README.md"] = b"not wanted: only configs and weights are fetched"
    return files


@pytest.fixture
def hub(repo_files, tmp_path, monkeypatch):
    fake = fakehub.FakeHub({REPO: dict(repo_files)}, tmp_path / "models")
    fake.files = fake.repos[REPO]            # the tests change what the Hub serves
    fakehub.install(monkeypatch, fake)
    depth_hf.set_offline(False)
    yield fake
    depth_hf.set_offline(False)
    engine.release()


def _base(hub):
    return os.path.join(hub.cache, "models--" + REPO.replace("/", "--"))


def test_download_reports_bytes_per_file_and_overall(hub, repo_files):
    seen = []
    folder = depth_hf.local_folder(NAME, seen.append)
    wanted = sorted(n for n in repo_files if n != "README.md")
    assert sorted(hub.downloads) == wanted                          # only configs and weights
    assert depth_hf.cached(NAME) and depth_hf.complete_snapshot(REPO) == folder
    total = sum(len(repo_files[n]) for n in wanted)
    assert all(s.total == total and s.files == len(wanted) for s in seen)
    dones = [s.done for s in seen]
    assert dones == sorted(dones) and seen[-1].done == total and seen[-1].finished
    weights = [s for s in seen if s.file == "model.safetensors"]
    assert weights[-1].file_done == weights[-1].file_total == len(repo_files["model.safetensors"])
    assert len({s.file_done for s in weights}) > 3                  # byte by byte, not file by file
    assert "MB" in weights[1].text() and NAME in weights[1].text()
    # The download is the model: it loads and runs through the real transformers code.
    depth, _, _ = depth_models.estimate_with_info(NAME, np.random.default_rng(0).uniform(0, 1, (40, 60, 3)))
    assert depth.shape == (40, 60) and np.isfinite(depth).all()
    # Offline now works from the cache; a second call downloads nothing.
    depth_hf.set_offline(True)
    hub.downloads.clear()
    assert depth_hf.local_folder(NAME) == folder and hub.downloads == []


def test_interrupted_download_is_not_cached_and_resumes(hub, repo_files):
    import requests
    size = len(repo_files["model.safetensors"])
    hub.fail = ("model.safetensors", size // 2, requests.ConnectionError("connection reset by peer"))
    with pytest.raises(InputError, match=rf"downloading model {NAME} failed.*resume"):
        depth_hf.local_folder(NAME)
    base = _base(hub)
    # A partial snapshot: config.json is there, the weights are not, and nothing claims otherwise.
    assert os.path.isfile(os.path.join(base, "snapshots", SHA, "config.json"))
    assert not depth_hf.cached(NAME) and depth_hf.complete_snapshot(REPO) is None
    assert not os.path.exists(os.path.join(base, depth_hf.MANIFEST))
    assert not os.path.exists(os.path.join(base, "refs", "main"))
    parts = [p for p in os.listdir(os.path.join(base, "blobs")) if p.endswith(".incomplete")]
    assert len(parts) == 1 and 0 < os.path.getsize(os.path.join(base, "blobs", parts[0])) < size
    depth_hf.set_offline(True)                              # offline: a clear message, not a broken load
    with pytest.raises(InputError, match="not downloaded and online access is off"):
        depth_hf.local_folder(NAME)
    depth_hf.set_offline(False)
    hub.fail, hub.bars, seen = None, [], []
    folder = depth_hf.local_folder(NAME, seen.append)       # the next run resumes where it stopped
    resumed = -(-(size // 2) // CHUNK) * CHUNK                  # the bytes written before it broke
    assert hub.bars[0] == ("model.safetensors", resumed)        # config.json is not fetched again
    assert [f for f, _ in hub.bars] == ["model.safetensors", "preprocessor_config.json"]
    first = next(s for s in seen if s.file == "model.safetensors" and s.file_done)
    assert first.file_done >= resumed
    assert depth_hf.cached(NAME) and os.path.isfile(os.path.join(folder, "model.safetensors"))
    assert open(os.path.join(folder, "model.safetensors"), "rb").read() == repo_files["model.safetensors"]


def test_corrupt_file_is_removed_and_not_cached(hub, repo_files):
    good = hub.files["model.safetensors"]
    real_info = hub.model_info

    def lying_info(repo_id, **kw):     # the Hub's checksum is of other bytes than those served
        info = real_info(repo_id, **kw)
        hub.files["model.safetensors"] = good[:-4] + b"oops"
        return info
    hub.model_info = lying_info
    with pytest.raises(InputError, match="does not match the Hub's checksum"):
        depth_hf.local_folder(NAME)
    assert not depth_hf.cached(NAME)
    assert not os.path.lexists(os.path.join(_base(hub), "snapshots", SHA, "model.safetensors"))
    assert not any(p for p in os.listdir(os.path.join(_base(hub), "blobs"))
                   if hashlib.sha256(good[:-4] + b"oops").hexdigest() in p)


def test_disk_full_frees_the_partial_file(hub, repo_files):
    hub.fail = ("model.safetensors", CHUNK * 2, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(InputError, match="disk is full.*PHOTO3D_MODEL_DIR"):
        depth_hf.local_folder(NAME)
    assert not depth_hf.cached(NAME)
    assert not [p for p in os.listdir(os.path.join(_base(hub), "blobs")) if p.endswith(".incomplete")]


def test_no_network_is_a_clear_error(hub, monkeypatch):
    import requests

    def down(self, repo_id, **kw):
        raise requests.ConnectionError("Failed to resolve 'huggingface.co'")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", down)
    with pytest.raises(InputError, match="cannot reach the Hugging Face Hub"):
        depth_hf.local_folder(NAME)
    assert not depth_hf.cached(NAME)


def test_cancel_stops_the_download_resumably(hub, repo_files):
    def cancel_half_way(status):
        if status.file == "model.safetensors" and status.file_done > status.file_total // 2:
            raise Cancelled()
    with pytest.raises(Cancelled):
        depth_hf.local_folder(NAME, cancel_half_way)
    assert not depth_hf.cached(NAME)
    assert [p for p in os.listdir(os.path.join(_base(hub), "blobs")) if p.endswith(".incomplete")]
    depth_hf.local_folder(NAME)
    assert depth_hf.cached(NAME)


def test_a_snapshot_from_other_tools_counts_only_when_its_weights_are_there(hub, repo_files):
    base = _base(hub)
    snap = os.path.join(base, "snapshots", SHA)
    os.makedirs(snap)
    os.makedirs(os.path.join(base, "refs"))
    open(os.path.join(base, "refs", "main"), "w").write(SHA)
    open(os.path.join(snap, "config.json"), "wb").write(repo_files["config.json"])
    assert not depth_hf.cached(NAME)                         # config without weights: partial
    open(os.path.join(snap, "model.safetensors"), "wb").write(repo_files["model.safetensors"])
    assert depth_hf.cached(NAME)


def test_cli_prints_download_lines_on_stderr(hub):
    from photo3d import cli
    out = io.StringIO()
    depth_hf.local_folder(NAME, cli.DownloadPrinter(out, interval=0.0))
    lines = out.getvalue().splitlines()
    assert lines and all(ln.startswith("photo3d: download") for ln in lines)
    assert any("model.safetensors" in ln and "MB" in ln and "%" in ln for ln in lines)
    assert lines[-1].startswith(f"photo3d: downloaded {NAME}")


def test_pipeline_downloads_before_depth_and_reports(hub, small_portrait):
    seen = []
    r = pipeline.run(small_portrait, pipeline.Settings(depth_model=NAME, portrait=False), on_download=seen.append)
    assert seen and seen[-1].finished and r.depth_model == NAME and "depth: download" in r.details
    seen.clear()
    pipeline.run(small_portrait, pipeline.Settings(depth_model=NAME, portrait=False), on_download=seen.append)
    assert seen == []                                       # cached: no second download


def test_download_progress_reaches_the_job_status_line(hub, small_portrait, blender):
    """The Make 3D Photo job, stepped like Blender's modal timer: half-way through the
    weights the panel's status says how many MB of which file, and the bar follows."""
    import bpy

    from photo3d.operators import make_photo
    from photo3d.operators.job import DONE, PipelineJob
    hub.gate = threading.Event()
    job = PipelineJob(small_portrait, pipeline.Settings(depth_model=NAME, portrait=False)).start()
    reports = []
    op = types.SimpleNamespace(_job=job, _timer=None, report=lambda kind, msg: reports.append((kind, msg)))
    try:
        for _ in range(600):
            make_photo._tick(op, bpy.context)
            if job.download is not None and job.download.file == "model.safetensors" and job.download.file_done:
                break
            job._thread.join(0.05)
        status = bpy.context.window_manager.photo3d_job
        assert status.running and f"Downloading {NAME}" in status.status and "MB" in status.status
        assert "model.safetensors" in status.status
        assert 0 < status.progress < 1 and abs(status.progress - job.download.fraction) < 1e-6
    finally:
        hub.gate.set()
    timer = types.SimpleNamespace(type="TIMER", value="NOTHING")
    for _ in range(3000):
        ret = make_photo.PHOTO3D_OT_make_photo.modal(op, bpy.context, timer)
        if ret != {"RUNNING_MODAL"}:
            break
        job._thread.join(0.02)
    assert ret == {"FINISHED"} and job.state == DONE and job.download.finished
    assert depth_hf.cached(NAME)
    from photo3d.scene import build
    build.remove_photo(bpy.context.scene)
