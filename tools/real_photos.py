"""Real photos in the team's own checks: a tear measure and a contact sheet.

    PYTHONPATH=<folder holding photo3d> .venv/bin/python tools/real_photos.py \\
        [--sheet docs/real_photos.jpg] [--size 256] [--only coffee,china] [--depth-model NAME]

The photos ship inside packages the project already uses, so nothing is downloaded:
scikit-image's ``skimage.data`` (astronaut, coffee, chelsea, rocket, camera, the left
photo of the Motorcycle stereo pair), matplotlib's sample data (grace_hopper.jpg) and
scikit-learn's sample images (china.jpg, flower.jpg), and views of a shore, a street, a
tree, a yard, a misty field, a park at night and slim trunks cut from the photographic
HDRIs inside the bpy wheel (``HDRI_VIEWS``). A
package that is missing only drops its photos.

For each photo the pipeline runs with the default settings and the photo layer's mesh is
measured (``tear_measure``):

* pieces: connected parts of the photo layer (triangles sharing a vertex); ``small``
  those covering less than SMALL_PIECE of the frame as the source camera sees it (in
  mesh pixels), which float free when the camera moves: ``crumbs`` under CRUMB_PX,
  ``blobs`` the rest;
* stretched: triangles whose corners' depths differ by more than 1.3x and 2x (a rubber
  sheet over a depth step that was not cut), as a share of the frame's area.

It prints a Markdown table. With ``--sheet`` it also renders (Cycles, emission only, few
samples) each photo's default path (auto) at its most revealing frame, both ends of the
orbit and the dolly zoom's most revealing frame, beside the photo, its depth and its
confidence, into one JPEG for looking at: torn rims, doubled edges, floating blobs.
"""
import argparse
import contextlib
import os
import pickle
import sys
import tempfile
import time

import cv2
import numpy as np

SMALL_PIECE = 0.005          # share of the frame
CRUMB_PX = 50                # mesh pixels: pieces smaller than this are crumbs, larger small ones blobs
STRETCH = (1.3, 2.0)         # corner depth ratios
# (column label, preset, which frame): "reveal" = the frame the reveal estimate picks,
# "opposite" = the frame farthest from it along the path.
RENDERS = (("auto (default)", "auto", "reveal"), ("orbit end", "orbit", "reveal"),
           ("orbit other end", "orbit", "opposite"), ("dolly-zoom end", "dolly-zoom", "reveal"))


# (photo name, HDRI, degrees above and right of its sun: see tools/hdri_photo.py)
HDRI_VIEWS = (("shore", "sunset", 15.0, 10.0), ("street", "city", 40.0, 20.0), ("tree", "forest", 5.0, 0.0),
              ("yard", "courtyard", 5.0, 0.0), ("field", "sunrise", 10.0, 0.0), ("night", "night", 10.0, 0.0),
              ("trunks", "forest", 5.0, 120.0))


def real_photos() -> dict[str, np.ndarray]:
    """name -> RGB uint8 photo, from the packages that are installed."""
    photos = {}
    try:
        import skimage.data as sd
        for name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
            img = getattr(sd, name)()
            photos[name] = np.dstack([img] * 3) if img.ndim == 2 else img[..., :3]
        photos["motorcycle"] = sd.stereo_motorcycle()[0]
    except ImportError:
        print("real_photos: scikit-image missing: its photos are left out", file=sys.stderr)
    try:
        from matplotlib import cbook
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            buf = np.frombuffer(f.read(), np.uint8)
        photos["grace_hopper"] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    except ImportError:
        print("real_photos: matplotlib missing: grace_hopper left out", file=sys.stderr)
    try:
        from sklearn.datasets import load_sample_images
        data = load_sample_images()
        for path, img in zip(data.filenames, data.images):
            photos[os.path.splitext(os.path.basename(path))[0]] = img
    except ImportError:
        print("real_photos: scikit-learn missing: china and flower left out", file=sys.stderr)
    # Outdoor scenes the packages lack (a shore, a street, a tree, a yard): views cut from the
    # photographic HDRIs inside the bpy wheel. Soft (1K panoramas), but real photographs.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from hdri_photo import hdri_crop
    for name, hdri, above, right in HDRI_VIEWS:
        photos[name] = hdri_crop(hdri, (512, 384), 60.0, above, right)[..., ::-1]
    return photos


def run_photo(name: str, rgb: np.ndarray, tmp: str, depth_model: str | None = None, cache: str | None = None):
    """The pipeline's result for one photo at the default settings (written into ``tmp`` as
    NAME.png); with ``cache``, kept there as NAME.pkl and reused when present."""
    from photo3d.inference import pipeline
    cached = cache and os.path.join(cache, name + ".pkl")
    if cached and os.path.exists(cached):
        with open(cached, "rb") as f:
            return pickle.load(f)
    path = os.path.join(tmp, name + ".png")
    cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]))
    result = pipeline.run(path, pipeline.Settings(depth_model=depth_model))
    if cached:
        os.makedirs(cache, exist_ok=True)
        with open(cached, "wb") as f:
            pickle.dump(result, f)
    return result


def tear_measure(mesh, hfov_deg: float, size: tuple[int, int], depth: np.ndarray | None = None) -> dict:
    """Pieces and stretched triangles of a mesh (meshing.MeshArrays, camera frame) seen
    from the source camera; ``size``: the mesh grid's (w, h), whose pixels areas count in.
    With ``depth`` (the photo layer's, at the mesh grid), blobs are told apart: ``floating``
    ones stand nearer than what surrounds them (they hang in front when the camera moves),
    the others are windows onto something farther (the floor between a wheel's spokes)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from photo3d.inference.mesh import focal_px
    w, h = size
    p, t = mesh.positions.astype(np.float64), mesh.triangles.astype(np.int64)
    f = focal_px(w, hfov_deg)
    z = -p[:, 2]
    uv = np.stack([p[:, 0] / z * f, -p[:, 1] / z * f], 1)        # image-plane pixels
    a, b, c = uv[t[:, 0]], uv[t[:, 1]], uv[t[:, 2]]
    area = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    frame = float(w * h)
    n = len(p)
    edges = np.concatenate([t[:, [0, 1]], t[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    n_comp, label = connected_components(graph, directed=False)
    comp = label[t[:, 0]]
    comp_area = np.bincount(comp, weights=area, minlength=n_comp)
    comp_tris = np.bincount(comp, minlength=n_comp)
    used = comp_tris > 0
    small = used & (comp_area < SMALL_PIECE * frame)
    zc = z[t]
    ratio = zc.max(1) / np.maximum(zc.min(1), 1e-12)
    out = {"triangles": len(t), "pieces": int(used.sum()), "small_pieces": int(small.sum()),
           "crumbs": int((small & (comp_area < CRUMB_PX)).sum()), "blobs": int((small & (comp_area >= CRUMB_PX)).sum()),
           "small_area_pct": 100 * float(comp_area[small].sum()) / frame}
    for r in STRETCH:
        out[f"stretched_{r:g}_pct"] = 100 * float(area[ratio > r].sum()) / frame
        out[f"stretched_{r:g}_n"] = int((ratio > r).sum())
    if depth is not None:
        out["floating"] = sum(_floats(uv[np.unique(t[comp == i])] + (w / 2, h / 2), z[np.unique(t[comp == i])], depth)
                              for i in np.nonzero(small & (comp_area >= CRUMB_PX))[0])
    return out


def _floats(px: np.ndarray, z: np.ndarray, depth: np.ndarray) -> bool:
    """Whether a piece (its vertices' image positions and depths) stands nearer, by 5 %, than
    the photo layer in a ring round it."""
    h, w = depth.shape
    mask = np.zeros((h, w), np.uint8)
    xy = np.clip(np.round(px).astype(int), 0, (w - 1, h - 1))
    mask[xy[:, 1], xy[:, 0]] = 1
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    ring = (cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0) & (mask == 0)
    return bool(ring.any() and np.median(z) < np.median(depth[ring]) / 1.05)


def _label(img, lines):
    for i, text in enumerate(lines):
        for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(img, text, (4, 14 + 14 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, thick, cv2.LINE_AA)
    return img


def _grey_tile(a, size):
    img = cv2.resize(np.clip(a * 255, 0, 255).astype(np.uint8), size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


@contextlib.contextmanager
def _quiet():
    """Blender's render progress lines (written by C to the process's stdout) go nowhere."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(null)
        os.close(saved)


def scene_for_stills(result, size, frames, samples):
    """A fresh scene of ``result`` set up to render single PNG stills with Cycles; (scene,
    its stored edge samples)."""
    import bpy

    from photo3d.scene import build, camera, render
    from photo3d.settings import Options
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    build.build_scene(sc, result, Options(path="circle", frames=frames, engine="cycles", size=size, samples=samples))
    sc.cycles.max_bounces = 0
    sc.render.use_persistent_data = True
    render.set_png_output(sc, "")
    sc.render.use_file_extension = False
    return sc, camera.edge_samples_of(build.find_collection(sc))


def write_sheet(rows, path: str, tool: str, t0: float):
    """Rows of tiles (BGR) stacked into one JPEG at ``path``."""
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], 0)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cv2.imwrite(path, sheet, [cv2.IMWRITE_JPEG_QUALITY, 62])
    print(f"\n{tool}: {path} ({len(rows)} photos) in {time.time() - t0:.0f} s", flush=True)


def tile_size(result, long_side: int) -> tuple[int, int]:
    """The sheet tiles' (w, h) for a result: ``long_side`` on the long side, even sides."""
    w, h = result.size
    s = long_side / max(w, h)
    return int(round(w * s / 2)) * 2, int(round(h * s / 2)) * 2


def finish(sheet_rows, sheet: str | None, tool: str, t0: float):
    """Write the sheet (when asked) and leave: bpy 4.5 can hang at interpreter exit (BLENDER-NOTES)."""
    if sheet and sheet_rows:
        write_sheet(sheet_rows, sheet, tool, t0)
    sys.stdout.flush()
    os._exit(0)


def render_still(sc, frame: int, path: str) -> np.ndarray:
    """Frame ``frame`` (0-based) of ``sc`` rendered to ``path``; the image (BGR)."""
    import bpy
    sc.frame_set(sc.frame_start + frame)
    sc.render.filepath = path
    with _quiet():
        bpy.ops.render.render(write_still=True)
    return cv2.imread(path)


def sheet_arguments(ap, size: int):
    """The options every real-photo sheet takes."""
    ap.add_argument("--size", type=int, default=size, help="long side of each tile")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--only", help="comma list of photo names")
    ap.add_argument("--depth-model", default=None)


def _renders(result, size, frames, samples, tmp):
    """The RENDERS frames of ``result`` (BGR uint8), each with its label lines."""

    from photo3d.scene import camera
    sc, edge_samples = scene_for_stills(result, size, frames, samples)
    out = []
    for label, preset, which in RENDERS:
        sc.photo3d.path = preset
        plan = camera.plan_path(sc.photo3d, sc.render, edge_samples)
        frame = plan.reveal_frame or 0
        if which == "opposite":
            pos = plan.path.matrices[:, :3, 3]
            frame = int(np.argmax(np.linalg.norm(pos - pos[frame], axis=1)))
        image = render_still(sc, frame, os.path.join(tmp, f"{preset}_{which}.png"))
        lines = [f"{label} f{frame + 1}"]
        if which == "reveal" and plan.reveal is not None:
            lines[0] += f" {100 * plan.reveal:.1f}%"
        out.append(_label(image, lines))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sheet", help="write the contact sheet here (JPEG); without it, only the table")
    sheet_arguments(ap, 256)
    a = ap.parse_args()

    photos = real_photos()
    if a.only:
        photos = {k: v for k, v in photos.items() if k in a.only.split(",")}
    tmp = tempfile.mkdtemp(prefix="photo3d_real_")
    t0 = time.time()
    rows, sheet_rows = [], []
    if a.sheet:
        import photo3d
        photo3d.register()
    try:
        for name, rgb in photos.items():
            result = run_photo(name, rgb, tmp, a.depth_model)
            hm, wm = result.depth.shape
            m = tear_measure(result.foreground_mesh, result.hfov_deg, (wm, hm), result.depth)
            m["confidence"] = float(result.confidence.mean())
            rows.append((name, f"{rgb.shape[1]}x{rgb.shape[0]}", m))
            print(f"real_photos: {name}: {m}", file=sys.stderr, flush=True)
            if a.sheet:
                size = tile_size(result, a.size)
                photo = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), size, interpolation=cv2.INTER_AREA)
                inv = 1.0 / result.depth
                lo, hi = np.percentile(inv, [1, 99])
                tiles = [_label(photo, [name, f"{m['crumbs']} crumbs, {m['blobs']} blobs",
                                        f"stretched>2x {m['stretched_2_pct']:.2f}%"]),
                         _label(_grey_tile((inv - lo) / max(hi - lo, 1e-9), size), ["depth (white = near)"]),
                         _label(_grey_tile(result.confidence, size), [f"confidence, mean {m['confidence']:.2f}"])]
                tiles += _renders(result, size, a.frames, a.samples, tmp)
                row = np.concatenate(tiles, 1)
                sheet_rows.append(row)
    finally:
        if a.sheet:
            photo3d.unregister()

    model = a.depth_model or "default"
    print(f"\nDepth: {model}. Photo layer: pieces, small ones (under {100 * SMALL_PIECE:g} % of the frame: "
          f"crumbs under {CRUMB_PX} px, blobs larger, floating: blobs nearer than what is round them; their "
          "area, % of the frame), stretched triangles "
          "(corner depths over 1.3x / 2x: count, % of the frame).\n")
    print("| photo | size | pieces | crumbs | blobs | floating | small area % | stretched >1.3x | % | stretched >2x "
          "| % | mean confidence |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, size, m in rows:
        print(f"| {name} | {size} | {m['pieces']} | {m['crumbs']} | {m['blobs']} | {m['floating']} "
              f"| {m['small_area_pct']:.2f} "
              f"| {m['stretched_1.3_n']} | {m['stretched_1.3_pct']:.2f} | {m['stretched_2_n']} "
              f"| {m['stretched_2_pct']:.2f} | {m['confidence']:.2f} |")
    finish(sheet_rows, a.sheet, "real_photos", t0)


if __name__ == "__main__":
    sys.exit(main())
