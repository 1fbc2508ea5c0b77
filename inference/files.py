"""Files on every platform a Blender user has.

* ``replace``: move a finished output into place. On Windows a file another program has
  open (a virus scanner or the search indexer reading the new file, a video player
  showing the previous one) cannot be replaced or moved for a moment: try again briefly,
  then fail with one clear message. A folder replaces a folder of the same name.
* ``read_bytes``, ``write_image``: OpenCV opens files by narrow-character paths, which on
  Windows fail for any non-ASCII character (a user name like "José" in every path under
  the user's profile): read and write the bytes in Python and let OpenCV decode/encode.
"""
from __future__ import annotations

import os
import shutil
import time

import numpy as np

from .errors import Photo3DError

RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)     # about 1.5 s in all: what a scanner's lock lasts


class FileInUseError(Photo3DError, PermissionError):
    """A file or folder stayed locked by another program."""


def _retry(fn, *args):
    for delay in (*RETRY_DELAYS, None):
        try:
            return fn(*args)
        except PermissionError:
            if delay is None:
                raise
            time.sleep(delay)


def replace(src: str, dst: str) -> None:
    """Move ``src`` to ``dst``, replacing a file (or folder) there; atomic for files."""
    src, dst = os.fspath(src), os.fspath(dst)
    old = None
    try:
        if os.path.isdir(src) and os.path.isdir(dst) and not os.path.islink(dst):
            # os.replace never replaces a non-empty folder (nor any folder on Windows).
            old = f"{dst}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            _retry(os.replace, dst, old)
        _retry(os.replace, src, dst)
    except PermissionError:
        if old is not None and os.path.exists(old) and not os.path.exists(dst):
            os.replace(old, dst)             # the previous output stays rather than none
        raise FileInUseError(f"{dst} is open in another program (close it, e.g. a player or viewer "
                             "showing it, and try again)") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_bytes(path: str) -> np.ndarray:
    """The file's bytes as uint8 (for ``cv2.imdecode`` and ``cv2.dnn.readNetFrom*``)."""
    return np.fromfile(os.fspath(path), dtype=np.uint8)


def write_image(path: str, img: np.ndarray, params: tuple[int, ...] | list[int] = ()) -> None:
    """``cv2.imwrite`` for any path: the format follows the extension. OSError on failure."""
    import cv2
    path = os.fspath(path)
    try:
        ok, buf = cv2.imencode(os.path.splitext(path)[1] or ".png", img, list(params))
    except cv2.error:        # no encoder for the extension, or an image it cannot hold
        ok = False
    if not ok:
        raise OSError(f"cannot encode {os.path.basename(path)} as an image")
    buf.tofile(path)
