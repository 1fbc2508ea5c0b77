"""The headless command line: ``python -m photo3d make|batch|depth|bench|models``.

Outputs appear in ``--out`` only when everything succeeded: they are written into a
hidden staging folder inside it and moved into place at the end. Any failure prints
one line on stderr and exits non-zero.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from . import settings
from .inference import depth as depth_models, engine
from .inference.errors import InputError, Photo3DError


class CLIError(Photo3DError):
    pass


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {v}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every other failure
        sys.stderr.write(f"photo3d: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m photo3d", description="Turn one photo into a 3D photo with Blender.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    m = sub.add_parser("make", help="make a 3D photo: scene.blend, depth, mask, background, video")
    m.add_argument("photo")
    m.add_argument("--out", required=True, help="output folder (created if missing)")
    m.add_argument("--depth", help=".npy z-depth (scene units), or an inverse-depth image (white = near)")
    m.add_argument("--no-render", action="store_true", help="write the scene only")

    d = sub.add_parser("depth", help="estimate depth only")
    d.add_argument("photo")
    d.add_argument("--out", required=True, help="output .npy (float32 z-depth at the photo's resolution); "
                   "the depth's confidence is written beside it as NAME.confidence.png (white = sure)")

    b = sub.add_parser("bench", help="time each stage on a photo")
    b.add_argument("photo")
    b.add_argument("--depth", help="use this depth instead of a model")
    b.add_argument("--mesh-long-side", type=_positive_int, default=1024)

    sub.add_parser("models", help="list the depth models")
    from . import batch
    bt = batch.add_parser(sub)
    for name, sp in (("make", m), ("depth", d), ("bench", b), ("make", bt)):
        sp.add_argument("--offline", action="store_true",
                        help="never download a model (a missing one is an error)")
        settings.add_arguments(sp, name)     # every setting the command takes, declared in settings.py
    return p


class _NoteHandler(logging.Handler):
    """The engine's notes (a GPU that could not run a model, so the CPU did) as
    ``photo3d:`` lines among the progress lines, on whatever stdout is now."""

    def emit(self, record):
        sys.stdout.write(f"photo3d: {self.format(record)}\n")
        sys.stdout.flush()


def _show_engine_notes():
    logger = logging.getLogger(engine.__name__)
    if not any(isinstance(h, _NoteHandler) for h in logger.handlers):
        logger.addHandler(_NoteHandler())
        logger.propagate = False


def _terminate(signum, frame):
    raise KeyboardInterrupt  # unwinds through the clean-up of partial outputs


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):   # Windows pipes use a code page: no print may fail on a path
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    _show_engine_notes()
    if getattr(args, "offline", False):
        from .inference.depth import zoo
        zoo.set_offline(True)
    import signal
    signal.signal(signal.SIGTERM, _terminate)
    try:
        from .batch import cmd_batch
        return {"make": cmd_make, "depth": cmd_depth, "bench": cmd_bench, "models": cmd_models,
                "batch": cmd_batch}[args.command](args)
    except Photo3DError as e:
        sys.stderr.write(f"photo3d: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("photo3d: error: interrupted\n")
        return 130
    except BrokenPipeError:         # the reader went away (`models | head`): nothing more to say
        sys.stdout = open(os.devnull, "w")      # noqa: SIM115 - flushing at exit must not fail again
        return 0
    except MemoryError:
        sys.stderr.write("photo3d: error: out of memory (try a smaller photo)\n")
        return 1
    except Exception as e:  # noqa: BLE001 - one line for users, the traceback on request
        if os.environ.get("PHOTO3D_DEBUG"):
            import traceback
            traceback.print_exc()
        sys.stderr.write(f"photo3d: error: unexpected {type(e).__name__}: {e}\n")
        return 1


# --- make ------------------------------------------------------------------------------

def _prepare_out(out: str) -> tuple[str, str, bool]:
    """Create ``out`` if needed and a staging folder inside it; (out, staging, created)."""
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} exists and is not a folder")
    created = not os.path.exists(out)
    try:
        os.makedirs(out, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".photo3d-partial-", dir=out)
    except OSError as e:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise CLIError(f"cannot write to --out {out}: {e.strerror or e}") from None
    return out, staging, created


def _progress(stage: str, frac: float):
    print(f"photo3d: {stage} done ({frac:.0%})" if stage != "start" else "photo3d: started", flush=True)


def _tile_progress(i: int, n: int):
    print(f"photo3d: depth tiles: {i} of {n} model runs done", flush=True)


class DownloadPrinter:
    """Model download progress as lines on stderr: bytes of the file and of all files, at
    most one line a second (and each file's end)."""

    def __init__(self, stream=None, interval: float = 1.0):
        self.stream, self.interval = stream, interval
        self.last_time, self.last_key = 0.0, None

    def __call__(self, st):
        now = time.monotonic()
        key = (st.model, st.files_done)
        if key == self.last_key and now - self.last_time < self.interval:
            return
        self.last_time, self.last_key = now, key
        mb = 1e6
        if st.finished:
            line = f"photo3d: downloaded {st.model}: {st.files} files, {st.total / mb:.1f} MB"
        else:
            line = (f"photo3d: downloading {st.model}: {st.file} {st.file_done / mb:.1f}/{st.file_total / mb:.1f} MB, "
                    f"all {st.done / mb:.1f}/{st.total / mb:.1f} MB ({st.fraction:.0%}), "
                    f"file {st.files_done + 1} of {st.files}")
        stream = self.stream or sys.stderr
        stream.write(line + "\n")
        stream.flush()


def check_options(opts: settings.Options):
    """What make refuses before any work (``batch`` checks it once for all photos)."""
    if opts.fov and not 1.0 <= opts.fov <= 170.0:
        raise InputError(f"--fov {opts.fov:g} is out of range (1-170 degrees; 0: automatic)")


def cmd_make(args) -> int:
    photo = os.path.abspath(args.photo)
    if not os.path.exists(photo):
        raise InputError(f"photo not found: {args.photo}")
    opts = settings.options_from_args(args)
    check_options(opts)
    make_one(photo, args.out, opts, depth=args.depth, render=not args.no_render)
    return 0


def make_one(photo: str, out: str, opts: settings.Options, depth: str | None = None, render: bool = True) -> str:
    """One photo's outputs into ``out``: all of them, or (on any failure) none."""
    from .inference import files, pipeline
    out, staging, created = _prepare_out(out)
    ok = False
    try:
        result = pipeline.run(photo, settings.pipeline_settings(opts, depth_file=depth), progress=_progress,
                              on_download=DownloadPrinter(), on_tile=_tile_progress)
        if result.tiles is not None:
            tw, th = result.tiles.out_size
            print(f"photo3d: depth merged from {result.tiles.count} tiles and the whole photo at {tw}x{th}",
                  flush=True)
        if result.hfov_source == "model":
            print(f"photo3d: field of view {result.hfov_deg:.1f} degrees, estimated by {result.depth_model} "
                  "(no --fov, no EXIF focal length)", flush=True)
        write_arrays(result, staging)
        _make_scene(result, opts, staging, render_video=render)
        for name in sorted(os.listdir(staging)):
            files.replace(os.path.join(staging, name), os.path.join(out, name))
        ok = True
        print(f"photo3d: wrote {out}", flush=True)
        return out
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not ok and created:
            shutil.rmtree(out, ignore_errors=True)


def write_arrays(result, folder: str):
    """depth.npy, depth.png, mask.png, background.png, confidence.png: the contract's image outputs."""
    from .inference import files, pipeline
    from .inference.photo import resize
    w, h = result.size
    depth = pipeline.depth_at_photo_resolution(result)
    np.save(os.path.join(folder, "depth.npy"), depth.astype(np.float32))
    inv = 1.0 / depth
    lo, hi = float(inv.min()), float(inv.max())
    vis = np.zeros_like(inv) if hi - lo < 1e-12 else (inv - lo) / (hi - lo)
    files.write_image(os.path.join(folder, "depth.png"), np.round(vis * 65535).astype(np.uint16))
    mask = resize(result.mask.astype(np.uint8) * 255, (w, h), nearest=True)
    files.write_image(os.path.join(folder, "mask.png"), mask)
    bg = np.clip(np.round(result.background * 255), 0, 255).astype(np.uint8)[:, :, ::-1]
    files.write_image(os.path.join(folder, "background.png"), bg)
    if result.confidence is not None:
        from .inference.depth.confidence import to_image
        files.write_image(os.path.join(folder, "confidence.png"), to_image(result.confidence, (w, h)))


def _make_scene(result, opts: settings.Options, folder: str, render_video: bool):
    import bpy

    from . import properties
    from .scene import build, render
    bpy.ops.wm.read_factory_settings(use_empty=True)
    properties.register()
    try:
        scene = bpy.context.scene
        scene.name = "3D Photo"
        build.build_scene(scene, result, opts)
        s = scene.photo3d
        s.source_photo = result.photo_path
        if result.faces:
            print(f"photo3d: shaped {result.faces} face(s) with a fitted face mesh", flush=True)
        if opts.path == "auto":
            print(f"photo3d: automatic path: direction {math.degrees(s.auto_direction):.0f} degrees, "
                  f"amplitude {s.auto_amplitude:.2f}", flush=True)
        if s.reveal >= 0:
            print(f"photo3d: the camera path reveals up to {s.reveal:.1f} % of the frame", flush=True)
        has_video = render.ffmpeg_available()
        if has_video:
            render.set_video_output(scene, "//video")
        else:
            render.set_png_output(scene, "//frames/frame_")
        bpy.ops.wm.save_as_mainfile(filepath=os.path.join(folder, "scene.blend"), compress=True)
        if render_video:
            _render_outputs(scene, opts, folder, has_video)
        else:
            from .scene import outputs
            exports = [n for n in opts.outputs if n in outputs.EXPORTS]
            if exports:
                outputs.write_outputs(scene, folder, exports, report=lambda line: print(f"photo3d: {line}", flush=True))
    finally:
        properties.unregister()


def _render_outputs(scene, opts: settings.Options, folder: str, has_video: bool):
    """Render the frames once and write each of ``opts.outputs`` from them."""
    from .scene import outputs
    names = list(opts.outputs)
    frames_dir = ""
    if "mp4" in names and not has_video:
        print("photo3d: this Blender build has no FFmpeg: writing a PNG sequence into frames/ instead of video.mp4",
              flush=True)
        names.remove("mp4")
        frames_dir = os.path.join(folder, "frames")
    note = outputs.loop_note(opts, names)
    if note:
        print(f"photo3d: note: {note}", flush=True)

    def rendered(n, dt):
        print(f"photo3d: rendered {n} frames in {dt:.1f} s ({dt / n:.2f} s/frame)", flush=True)

    if names:
        outputs.write_outputs(scene, folder, names, frames_dir=frames_dir,
                              report=lambda line: print(f"photo3d: {line}", flush=True), on_frames=rendered)
    elif frames_dir:
        outputs.Render(scene, folder, frames_dir, rendered).frames()


# --- depth, bench, models ------------------------------------------------------------

# The depth stage's resolution with tiles: the outline, priors and edges work on whole frames,
# and at 24 MP that is seconds and gigabytes each; the result is upsampled along the photo's edges.
DEPTH_TILES_LONG_SIDE = 2048


def depth_confidence_path(out: str) -> str:
    """Where ``depth --out NAME.npy`` puts the depth's confidence: NAME.confidence.png beside it."""
    stem = out[:-4] if out.lower().endswith(".npy") else out
    return stem + ".confidence.png"


def cmd_depth(args) -> int:
    from .inference import files, pipeline
    from .inference.depth.confidence import to_image
    from .inference.photo import load_photo, resize, working_size
    opts = settings.options_from_args(args)
    engine.set_device(opts.device)
    model = depth_models.get_model(opts.depth_model)
    photo = load_photo(os.path.abspath(args.photo))
    w, h = photo.size
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        raise CLIError(f"--out {out} is a folder; give a file name ending in .npy")
    if not os.path.isdir(os.path.dirname(out) or "."):
        raise CLIError(f"the folder of --out {out} does not exist")
    # The depth stage of `make` (model, portrait, outline, priors, edges), so that this is the
    # depth a 3D photo is built from; tiles, when asked, bring it to up to DEPTH_TILES_LONG_SIDE.
    tiles = settings.tiles_count(opts.depth_tiles)
    side = min(max(w, h), DEPTH_TILES_LONG_SIDE) if tiles else pipeline.Settings.mesh_long_side
    ps = dataclasses.replace(settings.pipeline_settings(opts, mesh_long_side=side), inpainter=None)   # not used
    pipeline.fetch_models(ps, DownloadPrinter())
    texture = resize(photo.rgb, working_size(w, h, ps.texture_long_side))
    mesh_size = working_size(w, h, ps.mesh_long_side)
    dep = pipeline.depth_stage(photo, texture, mesh_size, ps, pipeline.Clock(None, None), _tile_progress)
    d = pipeline.resize_depth(dep.depth, (w, h), photo.rgb)
    conf_out = depth_confidence_path(out)
    conf = to_image(dep.confidence, (w, h))
    tmp, conf_tmp = out + ".partial.npy", conf_out + ".partial.png"
    try:
        np.save(tmp, d.astype(np.float32))
        files.write_image(conf_tmp, conf)
        files.replace(tmp, out)
        files.replace(conf_tmp, conf_out)
    except OSError as e:
        raise CLIError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        for f in (tmp, conf_tmp):
            if os.path.exists(f):
                os.remove(f)
    print(f"photo3d: wrote {out} and {os.path.basename(conf_out)} ({w}x{h}, model {model.name})")
    return 0


def cmd_bench(args) -> int:
    from .inference import pipeline
    t0 = time.perf_counter()
    opts = settings.options_from_args(args)
    ps = settings.pipeline_settings(opts, depth_file=args.depth, mesh_long_side=args.mesh_long_side)
    engine.clear_runs()
    result = pipeline.run(os.path.abspath(args.photo), ps, on_download=DownloadPrinter())
    rows = list(result.timings.items())
    t = time.perf_counter()
    import bpy

    from .scene import build
    rows.append(("import bpy", time.perf_counter() - t))
    t = time.perf_counter()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    build.build_scene(bpy.context.scene, result, opts)
    rows.append(("scene build", time.perf_counter() - t))
    from .inference.memory import peak_rss_mb
    peak = dict(result.peak_rss_mb)
    peak["import bpy"] = peak["scene build"] = peak_rss_mb()
    w, h = result.size
    print(f"# {os.path.basename(args.photo)} {w}x{h}, depth {result.depth_model}, "
          f"mesh {result.depth.shape[1]}x{result.depth.shape[0]}, "
          f"vertices fg {result.foreground_mesh.n_vertices} bg {result.background_mesh.n_vertices}")
    for line in model_lines(result.depth_model, engine.runs()):
        print(line)
    for name, sec in rows:
        print(f"{name:<12} {sec:8.3f} s   peak {peak.get(name, 0):7.0f} MB")
        if name == "depth":   # its parts, as comment lines (the stage lines stay one per stage)
            for part, psec in result.details.items():
                if part != "depth: tiling":
                    print(f"#   {part:<20} {psec:8.3f} s")
            if result.tiles is not None:     # its own line: the price of the detail (part of depth)
                tp = result.tiles
                print(f"{'tiling':<12} {result.details['depth: tiling']:8.3f} s   peak {peak.get('tiling', 0):7.0f} MB"
                      f"   # {tp.count} tiles ({tp.grid[0]}x{tp.grid[1]}) + whole photo, depth "
                      f"{tp.out_size[0]}x{tp.out_size[1]}, part of depth")
    print(f"total {time.perf_counter() - t0:.3f} s")
    return 0


def model_lines(depth_model: str, runs: list) -> list[str]:
    """``bench``'s comment lines: each network that ran, with its engine, provider and precision."""
    lines = []
    if depth_model == "file":
        lines.append("# depth model: none (--depth file)")
    elif not any(r.role == "depth model" for r in runs):
        m = depth_models.MODELS.get(depth_model)
        what = {"onnx": "onnxruntime", "torch": "torch"}.get(m.runtime, "") if m else ""
        lines.append(f"# depth model: {depth_model}" + (f" via {what}" if what else " (no network)"))
    for r in runs:
        name = depth_model if r.role == "depth model" else r.name
        lines.append(f"# {r.role}: {name} via {r.engine} {r.provider} {r.precision}")
    return lines


def cmd_models(args) -> int:
    """One line per model: its download size (of the precision a run uses), that precision,
    whether it is on disk (and what else it needs), its licence and what it is good at."""
    from .inference.depth import onnx_models, zoo
    runtime = None
    print(f"# {engine.onnx_summary()}")
    print("name\tsize\tstatus\tengine\tprecision\tlicence\twhat it is good at")
    for m in depth_models.MODELS.values():
        default = " (default)" if m.name == depth_models.DEFAULT_MODEL else ""
        if m.is_cached is None:
            status = "built in"
        else:
            status = "cached" if m.cached() else "not downloaded"
            if m.runtime == "onnx":
                others = [p for p in onnx_models.cached_precisions(m.name) if p != m.precision()]
                if others:
                    status += f" ({', '.join(others)} cached)"
                status += ", ONNX Runtime"
            elif m.runtime == "torch":
                runtime = zoo.available() if runtime is None else runtime
                status += ", PyTorch" if runtime else ", needs PyTorch + transformers"
        if m.runtime == "onnx":
            spec = onnx_models.SPECS[m.name]
            precision = m.precision() + "".join(f", {p} {spec.files[p].size_mb:.0f} MB" for p in spec.files
                                                if p != m.precision())
        elif m.precision is not None:
            precision = m.precision()
        else:
            precision = "auto" if m.runtime == "torch" else "-"
        how = {"onnx": "onnxruntime", "torch": "torch"}.get(m.runtime, "onnxruntime" if m.precision else "-")
        size = f"{m.size_mb:.0f} MB" if m.size_mb else "-"
        print(f"{m.name}{default}\t{size}\t{status}\t{how}\t{precision}\t{m.licence}\t{m.summary}")
    return 0
