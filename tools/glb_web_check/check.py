"""Open a photo3d GLB in a real web viewer (three.js in headless Chromium) and save what
it shows from the GLB's own camera at chosen keys of its animation.

    python tools/glb_web_check/check.py out/photo.glb --three /tmp/npm/node_modules/three \
        --out /tmp/glb_web [--keys 0,mid] [--size 384x384] [--photo photo.jpg] [--reference f1.png,f13.png]

Needs Chromium (Debian: ``apt-get install chromium``) and three.js (``npm install three``);
neither is a photo3d dependency. WebGL runs on SwiftShader (software), so no GPU is needed.
The GLB and three.js are served from 127.0.0.1 by a one-off HTTP server; view.html posts
the canvas images back to it. Writes ``key<N>.png`` per key and ``report.json``; with
``--photo`` / ``--reference``, each shot's PSNR against the photo (resized to the shot's
size) / against a reference image of the same frame, e.g. Blender's render of it.
"""
import argparse
import base64
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check", "--mute-audio",
    # WebGL without a GPU: ANGLE on SwiftShader (Chromium asks for the opt-in since version 120).
    "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
]


def serve(root: str, results: dict, done: threading.Event) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=root, **kw)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            results.update(json.loads(body))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *a):
            pass

    Handler.extensions_map = {**Handler.extensions_map, ".js": "text/javascript", ".glb": "model/gltf-binary"}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("glb")
    ap.add_argument("--three", required=True, help="three.js package folder (node_modules/three)")
    ap.add_argument("--out", required=True, help="folder for the shots and report.json")
    ap.add_argument("--keys", default="0,mid", help="animation key indices; 'mid' and 'last' are allowed")
    ap.add_argument("--size", default="384x384", help="canvas WxH")
    ap.add_argument("--photo", help="source photo to compare the shots with")
    ap.add_argument("--reference", help="comma list of images to compare the shots with, one per key "
                                        "(e.g. Blender's own renders of those frames)")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--query", default="", help="extra query parameters for view.html (hide=<mesh name>)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for the page")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    os.makedirs(a.out, exist_ok=True)

    root = tempfile.mkdtemp(prefix="glb_web_")
    os.symlink(os.path.abspath(a.three), os.path.join(root, "three"))
    os.symlink(os.path.abspath(a.glb), os.path.join(root, "model.glb"))
    shutil.copy(os.path.join(HERE, "view.html"), root)
    results: dict = {}
    done = threading.Event()
    server = serve(root, results, done)
    browser = None
    try:
        port = server.server_address[1]
        url = (f"http://127.0.0.1:{port}/view.html?glb=model.glb&w={w}&h={h}&keys={a.keys}"
               + (f"&{a.query}" if a.query else ""))
        t0 = time.time()
        browser = launch(a.chromium, url, w, h, root)
        while not done.wait(0.5):
            if browser.poll() is not None:
                raise RuntimeError(f"Chromium exited ({browser.returncode}) before the page gave a result")
            if time.time() - t0 > a.timeout:
                raise TimeoutError(f"the page gave no result in {a.timeout:.0f} s")
        elapsed = time.time() - t0
    finally:
        if browser is not None:
            stop(browser)
        server.shutdown()
        server.server_close()
        shutil.rmtree(root, ignore_errors=True)
    if "error" in results:
        print("page error:", results["error"], file=sys.stderr)
        return 1

    photo = None
    if a.photo:
        photo = np.asarray(Image.open(a.photo).convert("RGB").resize((w, h), Image.LANCZOS))
    refs = a.reference.split(",") if a.reference else []
    for n, shot in enumerate(results["shots"]):
        png = base64.b64decode(shot.pop("png").split(",", 1)[1])
        path = os.path.join(a.out, f"key{shot['key']}.png")
        with open(path, "wb") as f:
            f.write(png)
        img = np.asarray(Image.open(path).convert("RGB"))
        shot["file"] = path
        shot["mean_rgb"] = [round(float(v), 1) for v in img.reshape(-1, 3).mean(0)]
        if photo is not None:
            shot["psnr_vs_photo_db"] = round(psnr(img, photo), 2)
            shot["photo_mean_rgb"] = [round(float(v), 1) for v in photo.reshape(-1, 3).mean(0)]
        if n < len(refs):
            ref = np.asarray(Image.open(refs[n]).convert("RGB").resize((w, h), Image.LANCZOS))
            shot["reference"] = refs[n]
            shot["psnr_vs_reference_db"] = round(psnr(img, ref), 2)
    results["seconds"] = round(elapsed, 1)
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))
    return 0


def launch(chromium: str, url: str, w: int, h: int, root: str) -> subprocess.Popen:
    profile = tempfile.mkdtemp(prefix="profile_", dir=root)
    return subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={w},{h}", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(browser: subprocess.Popen) -> None:
    """End Chromium and its helper processes (its own process group, started above)."""
    if browser.poll() is None:
        os.killpg(browser.pid, signal.SIGTERM)
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(5)


if __name__ == "__main__":
    sys.exit(main())
