"""The Dask tasks of ``batch`` (they run on the workers): one photo, or one photo's frames
split over several workers, each step's Blender work in a child process.

The child is ``python -m photo3d.batch_tasks`` reading its job on stdin: Blender's ``bpy`` is
one process-wide state that is not thread-safe, Dask runs tasks in a worker's thread, and a
Blender crash must fail one photo rather than kill the worker. The child writes into a staging
folder inside ``--out``; the finished folder (with ``photo3d.json``, the settings it was made
with) is moved into place in one rename, so an output folder is either complete or absent.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

from . import settings
from .batch_sheet import RECORD, write_thumbnails
from .inference.errors import Photo3DError

STAGING = ".photo3d-staging-"


def read_record(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, RECORD), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None



def is_done(folder: str, record: dict) -> bool:
    rec = read_record(folder)
    return bool(rec) and rec.get("key") == record["key"]



def _die_with_parent():     # Linux: the child goes when its worker goes (killed, or the cluster closed)
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def _reason(p: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in p.stderr.decode(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("photo3d: error:")]
    if errors:
        return errors[-1].removeprefix("photo3d: error:").strip()
    if p.returncode < 0:
        with contextlib.suppress(ValueError):
            return f"crashed ({signal.Signals(-p.returncode).name})"
    return lines[-1] if lines else f"exit status {p.returncode}"


class ChildFailed(Exception):
    pass


def _child(payload: dict):
    """``python -m photo3d.batch_tasks`` with ``payload`` on stdin; ChildFailed with its one-line reason."""
    p = subprocess.run([sys.executable, "-m", f"{__package__}.batch_tasks"], input=pickle.dumps(payload),
                       capture_output=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    if p.returncode != 0:
        raise ChildFailed(_reason(p))


def _finish(job: dict, folder: str):
    """Thumbnails and photo3d.json (written last) into ``folder``, then ``folder`` into place."""
    from .inference import files
    write_thumbnails(folder, job["photo"], job["render"])
    with open(os.path.join(folder, RECORD), "w", encoding="utf-8") as f:
        json.dump(job["record"], f, indent=1)
    files.replace(folder, os.path.join(job["out"], job["name"]))


def _failure(e: Exception) -> str:
    return f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.strerror else str(e)


def run_job(job: dict) -> dict:
    """Make one photo into ``out/name``: ``make`` in a child process into a staging folder,
    thumbnails and ``photo3d.json`` beside its outputs, then one rename into place."""
    t0 = time.monotonic()
    result = {"photo": job["photo"], "folder": job["name"], "worker": f"{socket.gethostname()}:{os.getpid()}"}
    staging = os.path.join(job["out"], f"{STAGING}{job['name']}-{uuid.uuid4().hex[:8]}")
    try:
        os.makedirs(staging)
        _child({k: job[k] for k in ("photo", "opts", "render", "offline")} | {"out": staging})
        _finish(job, staging)
        return result | {"status": "done", "seconds": time.monotonic() - t0}
    except (OSError, Photo3DError, ChildFailed) as e:
        return result | {"status": "failed", "reason": _failure(e), "seconds": time.monotonic() - t0}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# A photo whose frames several workers render: prepare (the scene, no render), render_part per
# share of the frames, assemble. They share a staging folder the client names; each step is safe
# to run again (a worker that died), and a failure passes along as the photo's result.

def _split_paths(job: dict) -> tuple[str, str, str]:
    staging = job["staging"]
    return staging, os.path.join(staging, "scene"), os.path.join(staging, "frames")


def prepare_split(job: dict) -> dict:
    t0 = time.monotonic()
    staging, scene_dir, _ = _split_paths(job)
    try:
        if not os.path.exists(os.path.join(scene_dir, "scene.blend")):
            os.makedirs(staging, exist_ok=True)
            _child({k: job[k] for k in ("photo", "opts", "offline")} | {"out": scene_dir, "render": False})
        return {"status": "ok", "seconds": time.monotonic() - t0}
    except (OSError, Photo3DError, ChildFailed) as e:
        return {"status": "failed", "reason": _failure(e)}


def render_part(prep: dict, job: dict, part: int) -> dict:
    if prep["status"] != "ok":
        return prep
    t0 = time.monotonic()
    _, scene_dir, frames_dir = _split_paths(job)
    try:
        _child({"mode": "frames", "blend": os.path.join(scene_dir, "scene.blend"), "frames_dir": frames_dir,
                "part": part, "parts": job["parts"]})
        return {"status": "ok", "seconds": time.monotonic() - t0}
    except (OSError, ChildFailed) as e:
        return {"status": "failed", "reason": _failure(e)}


def assemble_split(prep: dict, parts: list[dict], job: dict) -> dict:
    t0 = time.monotonic()
    result = {"photo": job["photo"], "folder": job["name"], "worker": f"{socket.gethostname()}:{os.getpid()}"}
    staging, scene_dir, frames_dir = _split_paths(job)
    seconds = sum(r.get("seconds", 0) for r in (prep, *parts))
    if is_done(os.path.join(job["out"], job["name"]), job["record"]):    # moved into place by an earlier run
        return result | {"status": "done", "seconds": seconds, "parts": len(parts)}
    try:
        bad = next((r for r in (prep, *parts) if r["status"] != "ok"), None)
        if bad:
            return result | {"status": "failed", "reason": bad["reason"]}
        _child({"mode": "assemble", "blend": os.path.join(scene_dir, "scene.blend"), "frames_dir": frames_dir,
                "video": os.path.join(scene_dir, "video")})
        _finish(job, scene_dir)
        return result | {"status": "done", "seconds": seconds + time.monotonic() - t0, "parts": len(parts)}
    except (OSError, Photo3DError, ChildFailed) as e:
        return result | {"status": "failed", "reason": _failure(e)}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _task_main():
    """The child process of ``run_job``: ``make`` for the pickled job on stdin."""
    job = pickle.load(sys.stdin.buffer)
    from . import cli
    cli._show_engine_notes()
    if job.get("offline"):
        from .inference.depth import zoo
        zoo.set_offline(True)
    signal.signal(signal.SIGTERM, cli._terminate)
    try:
        mode = job.get("mode", "make")
        if mode == "make":
            cli.make_one(job["photo"], job["out"], settings.Options(**job["opts"]), render=job["render"])
        else:
            from . import batch_frames
            if mode == "frames":
                batch_frames.render_part(job["blend"], job["frames_dir"], job["part"], job["parts"])
            else:
                batch_frames.assemble(job["blend"], job["frames_dir"], job["video"])
    except Photo3DError as e:
        sys.stderr.write(f"photo3d: error: {e}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("photo3d: error: interrupted\n")
        sys.exit(130)
    except MemoryError:
        sys.stderr.write("photo3d: error: out of memory (try a smaller photo)\n")
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - one line: the batch summary's reason
        sys.stderr.write(f"photo3d: error: unexpected {type(e).__name__}: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    try:
        _task_main()
        status = 0
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
    from .__main__ import _exit  # the bpy 4.2 exit crash after a glTF export
    _exit(status)
