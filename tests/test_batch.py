"""`python -m photo3d batch`: inputs and names, a real two-worker Dask cluster on 127.0.0.1,
a bad photo among good ones, resuming, a worker killed mid-photo, an unreachable scheduler."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from helpers import box_scene, run_cli

FAST = ("--depth-model", "classical", "--frames", "2")
RENDER = ("--size", "64x48", "--samples", "1", "--engine", "cycles", "--path", "swing")


def _photos(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        _, rgb = box_scene()
        rgb = np.roll(rgb, 7 * k, axis=1)             # each photo its own
        cv2.imwrite(str(folder / name), rgb)
    return folder


def _summary(out):
    return json.loads((out / "batch.json").read_text())


def _one_error_line(err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("photo3d: error:"), err
    return lines[0]


def _parse(*argv):
    from photo3d import cli
    return cli.build_parser().parse_args(["batch", *map(str, argv)])


def test_inputs_and_names(tmp_path):
    from photo3d import batch
    src = _photos(tmp_path / "in", ["beach.jpg", "Beach.png", "x.txt.png"])
    _photos(src / "sub", ["beach.jpg", "a.tif"])
    (src / "notes.txt").write_text("no photo")
    (src / ".hidden").mkdir()
    _photos(src / ".hidden", ["h.png"])
    out = src / "out"                                       # inside an input folder: never an input
    _photos(out / "old", ["o.png"])
    photos = batch.collect_inputs([str(src), str(src / "beach.jpg"), str(tmp_path / "in" / "sub" / "*.tif")],
                                  str(out))
    rel = [os.path.relpath(p, src) for p in photos]
    sub = os.path.join("sub", "")
    assert rel == ["Beach.png", "beach.jpg", "x.txt.png", sub + "a.tif", sub + "beach.jpg"]
    names = batch.assign_names(photos, str(out))
    assert list(names.values()) == ["Beach", "beach-2", "x.txt", "a", "beach-3"]
    # an earlier batch's folder keeps its photo, whatever the order now
    (out / "shore").mkdir()
    (out / "shore" / "photo3d.json").write_text(json.dumps({"photo": photos[4]}))
    assert batch.assign_names(photos, str(out))[photos[4]] == "shore"
    with pytest.raises(batch.InputError, match="no file matches"):
        batch.collect_inputs([str(src / "*.heic")], str(out))


def test_two_workers_bad_photo_and_resume(tmp_path):
    src = _photos(tmp_path / "in", ["a.png", "b.png", "c.png"])
    (src / "bad.jpg").write_text("not an image")
    out = tmp_path / "out"
    rc, so, se = run_cli("batch", src, "--out", out, "--workers", 2, "--no-render", *FAST, timeout=300)
    assert rc == 1, se                                        # one failed: non-zero
    s = _summary(out)
    assert s["counts"] == {"done": 3, "skipped": 0, "failed": 1, "not made": 0}
    bad = next(p for p in s["photos"] if p["status"] == "failed")
    assert bad["folder"] == "bad" and "not an image" in bad["reason"] and "\n" not in bad["reason"]
    assert "photo3d: failed: bad (bad.jpg): cannot read bad.jpg" in so
    assert sorted(os.listdir(out)) == ["a", "b", "batch.json", "c", "index.html"]     # no staging, no bad/
    for name in "abc":
        files = set(os.listdir(out / name))
        assert {"scene.blend", "depth.npy", "photo3d.json", "thumbs"} <= files
        assert sorted(os.listdir(out / name / "thumbs")) == ["depth.jpg", "photo.jpg"]
    page = (out / "index.html").read_text()
    assert 'src="a/thumbs/photo.jpg"' in page and 'href="b/scene.blend"' in page and "not an image" in page

    # resumed: nothing redone; a changed photo is redone alone
    os.utime(src / "b.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    rc, so, se = run_cli("batch", src / "a.png", src / "b.png", src / "c.png", "--out", out, "--workers", 2,
                         "--no-render", *FAST, timeout=300)
    assert rc == 0, se
    s = _summary(out)
    assert s["counts"] == {"done": 1, "skipped": 2, "failed": 0, "not made": 0}
    assert [p["folder"] for p in s["photos"] if p["status"] == "done"] == ["b"]
    assert "2 of 3 photos already made" in so


@pytest.mark.slow
def test_worker_killed_mid_photo_is_redone_elsewhere(tmp_path):
    """The first run of b's task leaves a half-written staging folder and kills its own worker
    process; the scheduler reruns it on a worker; every photo is made once, nothing half-written."""
    from photo3d import batch
    src = _photos(tmp_path / "in", ["a.png", "b.png", "c.png"])
    out = tmp_path / "out"
    marker = str(tmp_path / "killed-once")

    def kill_once(job):
        import os
        import signal

        from photo3d import batch_tasks
        if job["name"] == "b" and not os.path.exists(marker):
            half = os.path.join(job["out"], batch_tasks.STAGING + "b-dead")
            os.makedirs(half)
            open(os.path.join(half, "depth.npy"), "w").close()
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return batch_tasks.run_job(job)

    args = _parse(src, "--out", out, "--workers", 2, *FAST, *RENDER)
    assert batch.cmd_batch(args, task=kill_once) == 0
    assert os.path.exists(marker)
    s = _summary(out)
    assert s["counts"]["done"] == 3 and [p["folder"] for p in s["photos"]] == ["a", "b", "c"]
    assert sorted(os.listdir(out)) == ["a", "b", "batch.json", "c", "index.html"]
    for name in "abc":
        assert {"video.mp4", "scene.blend", "photo3d.json"} <= set(os.listdir(out / name))
        assert sorted(os.listdir(out / name / "thumbs")) == ["first.jpg", "moved.jpg"]
    assert 'src="b/thumbs/moved.jpg"' in (out / "index.html").read_text()


def test_disk_full_stops_the_batch_with_one_line(tmp_path):
    from photo3d import batch
    src = _photos(tmp_path / "in", ["a.png", "b.png", "c.png", "d.png"])
    out = tmp_path / "out"

    def disk_full(job):
        if job["name"] == "a":
            from photo3d import batch_tasks
            return batch_tasks.run_job(job)
        return {"photo": job["photo"], "folder": job["name"], "status": "failed",
                "reason": "unexpected OSError: [Errno 28] No space left on device"}

    args = _parse(src, "--out", out, "--workers", 1, "--no-render", *FAST)
    with pytest.raises(batch.BatchError, match="is full: .* finished photos kept"):
        batch.cmd_batch(args, task=disk_full)
    s = _summary(out)
    assert s["stopped"] == "disk full" and s["counts"]["failed"] >= 1
    assert not [n for n in os.listdir(out) if n.startswith(batch.STAGING)]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scheduler_running_and_unreachable(tmp_path):
    from distributed import LocalCluster
    src = _photos(tmp_path / "in", ["a.png"])
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      scheduler_port=0, memory_limit=0) as cluster:
        rc, so, se = run_cli("batch", src, "--out", tmp_path / "out", "--scheduler", cluster.scheduler_address,
                             "--no-render", *FAST, timeout=120)
    assert rc == 0, se
    assert _summary(tmp_path / "out")["counts"]["done"] == 1
    address = f"tcp://127.0.0.1:{_free_port()}"
    rc, so, se = run_cli("batch", src, "--out", tmp_path / "o2", "--scheduler", address, "--scheduler-timeout", 2,
                         timeout=60)
    assert rc == 2 and f"cannot reach the Dask scheduler at {address}" in _one_error_line(se)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="a terminal's process group")
def test_ctrl_c_keeps_finished_photos_and_removes_the_rest(tmp_path):
    src = _photos(tmp_path / "in", [f"p{k}.png" for k in range(6)])
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "photo3d", "batch", str(src), "--out", str(out), "--workers", "1",
                          "--no-render", *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "p0" / "photo3d.json").exists():
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGINT)           # as a terminal's Ctrl-C: every process of the group
        so, se = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, se
    lines = se.strip().splitlines()                # progress lines, then one error line; no worker noise
    assert all(ln.startswith("photo3d: ") for ln in lines), se
    assert lines[-1].startswith("photo3d: error: interrupted: ") and lines[-1].endswith("again to resume)")
    s = _summary(out)
    assert s["stopped"] == "interrupted" and s["counts"]["done"] >= 1 and s["counts"]["not made"] >= 1
    made = {e["folder"] for e in s["photos"] if e["status"] == "done"}
    left = set(os.listdir(out)) - {"batch.json", "index.html"}
    assert left == made                                      # finished kept whole, nothing half-written
    for name in made:
        assert (out / name / "photo3d.json").exists()


def _decoded(video):
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return np.array(frames)
        frames.append(frame)


@pytest.mark.slow
def test_split_frames_video_equals_the_single_machine_one(tmp_path):
    src = _photos(tmp_path / "in", ["a.png"])
    opts = ("--depth-model", "classical", "--frames", "6", *RENDER)
    rc, so, se = run_cli("make", src / "a.png", "--out", tmp_path / "one", *opts, timeout=300)
    assert rc == 0, se
    out = tmp_path / "out"
    rc, so, se = run_cli("batch", src, "--out", out, "--workers", 2, "--frames-per-task", 2, *opts, timeout=300)
    assert rc == 0, se
    entry = _summary(out)["photos"][0]
    assert entry["status"] == "done" and entry["parts"] == 3
    one, split = tmp_path / "one" / "video.mp4", out / "a" / "video.mp4"
    a, b = _decoded(one), _decoded(split)
    assert a.shape == b.shape == (6, 48, 64, 3) and np.array_equal(a, b)
    # the same bytes but for the creation time Blender writes into the file's metadata
    diff = np.flatnonzero(np.fromfile(one, np.uint8) != np.fromfile(split, np.uint8))
    assert one.stat().st_size == split.stat().st_size and len(diff) <= 8
    assert sorted(os.listdir(out)) == ["a", "batch.json", "index.html"]
