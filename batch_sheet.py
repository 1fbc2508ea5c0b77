"""The pictures of a batch: each photo's thumbnails (on the worker) and ``index.html``, the contact sheet."""
from __future__ import annotations

import html
import os
from urllib.parse import quote

THUMB_SIDE = 320
RECORD = "photo3d.json"


def _thumb(img, side: int = THUMB_SIDE):
    import cv2
    h, w = img.shape[:2]
    s = side / max(h, w)
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) \
        if s < 1 else img


def _frames(folder: str):
    """The rendered frames (BGR), from video.mp4 or the PNG sequence of a build without FFmpeg."""
    import cv2

    from .inference import files
    video = os.path.join(folder, "video.mp4")
    if os.path.exists(video):
        cap = cv2.VideoCapture(video)
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()
    seq = os.path.join(folder, "frames")
    for name in sorted(os.listdir(seq)) if os.path.isdir(seq) else ():
        yield cv2.imdecode(files.read_bytes(os.path.join(seq, name)), cv2.IMREAD_COLOR)


def write_thumbnails(folder: str, photo: str, render: bool):
    """thumbs/first.jpg and thumbs/moved.jpg (the frame furthest from the first) of a render,
    or thumbs/photo.jpg and thumbs/depth.jpg without one: the contact sheet's pictures."""
    import cv2
    import numpy as np

    from .inference import files
    thumbs = os.path.join(folder, "thumbs")
    os.makedirs(thumbs, exist_ok=True)
    pictures = {}
    if render:
        first = moved = None
        best = -1.0
        for frame in _frames(folder):
            small = _thumb(frame).astype(np.float32)
            if first is None:
                first = small
            diff = float(np.abs(small - first).mean())
            if diff > best:
                best, moved = diff, small
        if first is not None:
            pictures = {"first": first, "moved": moved}
    if not pictures:
        from .inference.photo import load_photo
        rgb = load_photo(photo).rgb
        path = os.path.join(folder, "depth.png")     # bytes: OpenCV cannot open non-ASCII paths on Windows
        depth = cv2.imdecode(files.read_bytes(path), cv2.IMREAD_UNCHANGED) if os.path.exists(path) else None
        pictures = {"photo": np.round(_thumb(rgb[:, :, ::-1]) * 255)}
        if depth is not None:
            pictures["depth"] = _thumb(depth.astype(np.float32) / 257.0)
    for name, img in pictures.items():
        files.write_image(os.path.join(thumbs, f"{name}.jpg"), np.clip(img, 0, 255).astype(np.uint8))


def index_html(out: str, entries: list[dict]) -> str:
    """index.html: per photo its two thumbnails and links to its outputs; failures with their reason."""
    cards = []
    for e in entries:
        name = html.escape(e["folder"])
        href = quote(e["folder"])
        folder = os.path.join(out, e["folder"])
        thumbs = [t for t in ("first", "moved", "photo", "depth")
                  if e["status"] in ("done", "skipped") and os.path.exists(os.path.join(folder, "thumbs", t + ".jpg"))]
        imgs = "".join(f'<img src="{href}/thumbs/{t}.jpg" title="{t}" alt="{t}">' for t in thumbs[:2])
        links = " ".join(f'<a href="{href}/{f}">{f}</a>' for f in ("video.mp4", "scene.blend", "depth.png", RECORD)
                         if os.path.exists(os.path.join(folder, f)))
        status = html.escape(e["status"] + (f": {e['reason']}" if e.get("reason") else ""))
        cards.append(f'<div class="card {e["status"]}"><h2><a href="{href}/">{name}</a></h2>'
                     f'<div class="pics">{imgs}</div><p>{links}</p><p class="status">{status}</p></div>')
    return ("<!doctype html><meta charset=utf-8><title>photo3d batch</title><style>"
            "body{font-family:sans-serif;background:#222;color:#ddd}a{color:#9cf}"
            ".grid{display:flex;flex-wrap:wrap;gap:12px}.card{background:#333;padding:8px;border-radius:6px}"
            ".card h2{font-size:1em;margin:0 0 6px}.pics img{max-width:240px;max-height:240px;margin-right:4px}"
            ".failed{outline:2px solid #c44}.status{font-size:.85em;color:#aaa}</style>"
            f"<h1>photo3d batch: {len(entries)} photos</h1><div class=grid>{''.join(cards)}</div>\n")
