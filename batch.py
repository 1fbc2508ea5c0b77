"""``python -m photo3d batch``: many photos, one output folder each, on this machine or a Dask cluster.

Here the client: the photos and their folders' names, what is already made (``photo3d.json``),
the cluster, one task per photo (``batch_tasks``), the progress, ``batch.json`` and
``index.html`` (``batch_sheet``). A worker that dies mid-photo (killed, out of memory) has its
task rescheduled by the Dask scheduler on another worker; staging folders left behind are
removed at the end of the batch and at the start of the next.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import glob
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
import uuid

from . import __version__, settings
from .batch_sheet import index_html
from .batch_tasks import STAGING, assemble_split, is_done, prepare_split, read_record, render_part, run_job
from .inference.errors import InputError, Photo3DError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif")
RESERVED = ("batch.json", "index.html")
RETRIES = 2            # a task that raised (not a failed photo: those return) runs again


class BatchError(Photo3DError):
    pass


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``batch`` subcommand's own arguments (cli.py adds make's settings and --offline)."""
    bt = sub.add_parser("batch", help="make 3D photos of many photos, on this machine or a Dask cluster")
    bt.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="photos, folders (searched recursively for images) and globs ('trip/**/*.jpg')")
    bt.add_argument("--out", required=True, help="output folder: one folder per photo, batch.json, index.html")
    bt.add_argument("--no-render", action="store_true", help="write the scenes only")
    bt.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                    help="worker processes of the local cluster (default: half the CPU cores, at least one)")
    bt.add_argument("--scheduler", metavar="ADDRESS",
                    help="a running Dask scheduler (tcp://host:8786) whose workers have photo3d installed and "
                         "see --out and the photos at the same paths; without it, a local cluster")
    bt.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS",
                    help="how long to try to reach --scheduler (default: 10)")
    bt.add_argument("--force", action="store_true", help="make again photos already made with these settings")
    bt.add_argument("--frames-per-task", type=_positive_int, default=None, metavar="N",
                    help="split each photo's render into tasks of N frames (on as many workers) and encode them "
                         "into one video (default: each photo rendered by one task)")
    return bt


def _positive_int(text: str) -> int:
    from .cli import _positive_int as check
    return check(text)


# --- inputs, names, records ---------------------------------------------------------------

def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(path).startswith(".")


def _walk(folder: str, skip: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.join(root, d) != skip)
        found += [os.path.join(root, f) for f in sorted(files) if _is_image(f)]
    return found


def collect_inputs(inputs: list[str], out: str) -> list[str]:
    """Photo paths (absolute, first occurrence kept) from files, folders and globs; never
    anything inside ``out``. A named file is taken whatever its extension: if it is no image,
    it fails alone like any bad photo."""
    out = os.path.abspath(out)
    photos: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            photos += _walk(os.path.abspath(item), out)
        elif os.path.exists(item):
            photos.append(os.path.abspath(item))
        elif glob.has_magic(item):
            matched = sorted(glob.glob(item, recursive=True))
            if not matched:
                raise InputError(f"no file matches {item}")
            for m in matched:
                photos += _walk(os.path.abspath(m), out) if os.path.isdir(m) else \
                    [os.path.abspath(m)] if _is_image(m) else []
        else:
            raise InputError(f"no such photo or folder: {item}")
    seen, unique = set(), []
    for p in photos:
        key = os.path.normcase(os.path.realpath(p))
        if key not in seen and not (p + os.sep).startswith(out + os.sep):
            seen.add(key)
            unique.append(p)
    return unique


def assign_names(photos: list[str], out: str) -> dict[str, str]:
    """One output folder name per photo: its file name without the extension, ``-2``, ``-3``
    on collisions (compared without case, as on Windows and macOS). A photo that already has a
    folder from an earlier batch into ``out`` keeps it, so a resumed batch finds its work."""
    previous: dict[str, str] = {}
    taken = {n.lower() for n in RESERVED}
    if os.path.isdir(out):
        for entry in sorted(os.scandir(out), key=lambda e: e.name):
            taken.add(entry.name.lower())
            rec = read_record(entry.path) if entry.is_dir() else None
            if rec and rec.get("photo") in photos:
                previous.setdefault(rec["photo"], entry.name)
    names = {}
    for photo in photos:
        if photo in previous:
            names[photo] = previous[photo]
            continue
        stem = os.path.splitext(os.path.basename(photo))[0].lstrip(".") or "photo"
        name, k = stem, 1
        while name.lower() in taken:
            k += 1
            name = f"{stem}-{k}"
        taken.add(name.lower())
        names[photo] = name
    return names


def _jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def make_record(photo: str, opts: settings.Options, render: bool) -> dict:
    """What ``photo3d.json`` holds: the photo (path, size, time), the settings and their key.
    The key covers what changes the outputs: the photo's size and time, settings, rendering."""
    st = os.stat(photo)
    values = {k: _jsonable(v) for k, v in sorted(vars(opts).items())}
    keyed = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "render": render, "settings": values}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()
    return {"photo": photo, **keyed, "key": key, "photo3d": __version__}


def clean_staging(out: str):
    """Remove staging folders: of photos that failed, were interrupted or whose worker died."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(out):
            if entry.name.startswith(STAGING):
                shutil.rmtree(entry.path, ignore_errors=True)


# --- the cluster ------------------------------------------------------------------------------

@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int, timeout: float = 10.0):
    """A Client of the cluster at ``scheduler``, or of a local cluster of ``workers`` processes
    (one task at a time each: one Blender per process) listening on 127.0.0.1 only."""
    from distributed import Client, LocalCluster
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise BatchError(f"cannot reach the Dask scheduler at {scheduler} "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        try:
            yield client
        finally:
            client.close()
        return
    # Ctrl-C reaches every process of the terminal's group: on Linux and macOS the workers (and the
    # make children they start) inherit an ignored SIGINT and leave it to this process, which closes
    # them in order. Windows starts the workers afresh (no inheritance): there they stop on Ctrl-C
    # themselves, and this process still closes the cluster.
    ignore = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignore else None
    try:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", memory_limit=0, silence_logs=logging.CRITICAL)
    finally:
        if ignore:
            signal.signal(signal.SIGINT, previous)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


class _Progress:
    """A tqdm bar (count, failures, time left) on a terminal; one line per photo in a log."""

    def __init__(self, total: int, done_before: int):
        self.tty = sys.stderr.isatty()
        self.n, self.total, self.failed = done_before, total, 0
        if self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=done_before, unit="photo", desc="photo3d batch",
                            file=sys.stderr, dynamic_ncols=True)
            self.bar.set_postfix(failed=0)

    def update(self, r: dict):
        self.n += 1
        if r["status"] == "failed":
            self.failed += 1
        line = f"photo3d: [{self.n}/{self.total}] {r['folder']}: {r['status']}" + \
            (f": {r['reason']}" if r.get("reason") else f" in {r.get('seconds', 0):.1f} s")
        if self.tty:
            if r["status"] == "failed":
                self.bar.write(line, file=sys.stderr)
            self.bar.set_postfix(failed=self.failed)
            self.bar.update(1)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def close(self):
        if self.tty:
            self.bar.close()


def _disk_full(reason: str) -> bool:
    return "No space left" in reason or f"[Errno {errno.ENOSPC}]" in reason


def run_jobs(jobs: list[dict], client, progress: _Progress, results: list[dict], task=None) -> str | None:
    """Each job as a task, its result appended to ``results`` as it finishes (kept when
    interrupted). Stops early when the disk is full: returns why it stopped early, or None."""
    from distributed import as_completed
    task = task or run_job
    batch_id = uuid.uuid4().hex[:8]
    futures = {}
    for i, job in enumerate(jobs):
        key = f"photo3d-{batch_id}-{i}"
        if job.get("parts", 1) > 1:
            job = job | {"staging": os.path.join(job["out"], f"{STAGING}{job['name']}-{batch_id}")}
            prep = client.submit(prepare_split, job, key=key + "-scene", retries=RETRIES, pure=False)
            parts = [client.submit(render_part, prep, job, k, key=f"{key}-frames-{k}", retries=RETRIES, pure=False)
                     for k in range(job["parts"])]
            fut = client.submit(assemble_split, prep, parts, job, key=key, retries=RETRIES, pure=False)
        else:
            fut = client.submit(task, job, key=key, retries=RETRIES, pure=False)
        futures[fut] = job
    stopped = None
    for fut in as_completed(list(futures)):
        job = futures[fut]
        try:
            r = fut.result()
        except Exception as e:  # noqa: BLE001 - the task's own failures are results; this is Dask's
            name = type(e).__name__
            why = "its worker died each time it ran (out of memory?)" if name == "KilledWorker" else f"{name}: {e}"
            r = {"photo": job["photo"], "folder": job["name"], "status": "failed", "reason": why}
        results.append(r)
        progress.update(r)
        if r["status"] == "failed" and _disk_full(r.get("reason", "")):
            stopped = "disk full"
            client.cancel([f for f in futures if not f.done()])
            break
    return stopped


def _write_text(path: str, text: str):
    tmp = path + ".partial"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise BatchError(f"cannot write {path}: {e.strerror or e}") from None


def cmd_batch(args, task=None) -> int:
    from .cli import check_options
    t0 = time.monotonic()
    opts = settings.options_from_args(args)
    check_options(opts)
    if args.scheduler and args.workers:
        raise InputError("--workers sizes the local cluster; a --scheduler's cluster has its own workers")
    out = os.path.abspath(args.out)
    photos = collect_inputs(args.inputs, out)
    if not photos:
        raise InputError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in {' '.join(args.inputs)}")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise BatchError(f"cannot write to --out {out}: {e.strerror or e}") from None
    clean_staging(out)                  # what an interrupted earlier batch left
    names = assign_names(photos, out)
    render = not args.no_render
    parts = math.ceil(opts.frames / args.frames_per_task) if render and args.frames_per_task else 1
    entries, jobs, records = {}, [], {}
    for photo in photos:
        rec = records[photo] = make_record(photo, opts, render)
        name = names[photo]
        if not args.force and is_done(os.path.join(out, name), rec):
            entries[photo] = {"photo": photo, "folder": name, "status": "skipped"}
        else:
            entries[photo] = {"photo": photo, "folder": name, "status": "not made"}
            jobs.append({"photo": photo, "name": name, "out": out, "opts": vars(opts).copy(), "render": render,
                         "offline": bool(getattr(args, "offline", False)), "record": rec, "parts": parts})
    skipped = len(photos) - len(jobs)
    if skipped:
        print(f"photo3d: {skipped} of {len(photos)} photos already made with these settings (--force redoes them)",
              flush=True)
    # each photo's networks and renderer already use several cores: half as many workers keeps them busy
    workers = args.workers or max(1, (os.cpu_count() or 1) // 2)
    progress = _Progress(len(photos), skipped)
    stopped, results = None, []
    try:
        if jobs:
            with dask_client(args.scheduler, workers, args.scheduler_timeout) as client:
                stopped = run_jobs(jobs, client, progress, results, task)
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        progress.close()
        clean_staging(out)
    for r in results:
        entries[r["photo"]] = r
    for e in entries.values():         # finished while the batch was stopping: complete, so kept
        if e["status"] == "not made" and is_done(os.path.join(out, e["folder"]), records[e["photo"]]):
            e["status"] = "done"
    listed = list(entries.values())
    counts = {s: sum(e["status"] == s for e in listed) for s in ("done", "skipped", "failed", "not made")}
    summary = {"out": out, "photo3d": __version__, "scheduler": args.scheduler or f"local, {workers} workers",
               "render": render, "seconds": round(time.monotonic() - t0, 2), "stopped": stopped, "counts": counts,
               "settings": {k: _jsonable(v) for k, v in sorted(vars(opts).items())}, "photos": listed}
    _write_text(os.path.join(out, "batch.json"), json.dumps(summary, indent=1, default=str) + "\n")
    _write_text(os.path.join(out, "index.html"), index_html(out, listed))
    for e in listed:
        if e["status"] == "failed":
            print(f"photo3d: failed: {e['folder']} ({os.path.basename(e['photo'])}): {e['reason']}", flush=True)
    kept = counts["done"] + counts["skipped"]
    if stopped == "interrupted":
        sys.stderr.write(f"photo3d: error: interrupted: {kept} finished photos kept, {counts['not made']} not made "
                         "(run the same command again to resume)\n")
        return 130
    if stopped == "disk full":
        raise BatchError(f"the disk holding {out} is full: {kept} finished photos kept; free some space and run "
                         "the same command again to resume")
    print(f"photo3d: batch: {counts['done']} made, {counts['skipped']} already made, {counts['failed']} failed "
          f"in {time.monotonic() - t0:.1f} s; {os.path.join(out, 'index.html')}", flush=True)
    return 1 if counts["failed"] else 0
