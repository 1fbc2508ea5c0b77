"""A pipeline run in a background thread, stepped from Blender's main thread.

The thread runs only ``inference`` (no bpy). The main thread calls ``step()`` (from a
modal operator's TIMER event in Blender; in a plain loop in tests and headless runs),
which drains the thread's messages and says where the job stands.
"""
from __future__ import annotations

import queue
import threading
import traceback

from ..inference import pipeline
from ..inference.errors import Cancelled, Photo3DError

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


class PipelineJob:
    def __init__(self, photo_path: str, settings: pipeline.Settings | None = None):
        self.photo_path = photo_path
        self.settings = settings or pipeline.Settings()
        self.state = RUNNING
        self.stage = "queued"
        self.progress = 0.0
        # What is happening inside a stage (a model download, depth tiles), for the status line.
        self.detail: str | None = None
        self.detail_progress = 0.0
        self.download = None               # the latest depth_hf.DownloadStatus
        self.result: pipeline.Result | None = None
        self.error: str | None = None
        self._messages: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="photo3d-pipeline", daemon=True)

    def start(self) -> PipelineJob:
        self._thread.start()
        return self

    def cancel(self):
        """Ask the thread to stop; it does so at the end of the stage it is in."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _run(self):
        post = self._messages.put
        try:
            result = pipeline.run(self.photo_path, self.settings,
                                  progress=lambda stage, frac: post(("progress", stage, frac)),
                                  cancelled=self._cancel.is_set,
                                  on_download=lambda status: post(("download", status)),
                                  on_tile=lambda i, n: post(("tile", i, n)))
            post(("cancelled",) if self._cancel.is_set() else ("done", result))
        except Cancelled:
            post(("cancelled",))
        except Photo3DError as e:
            post(("failed", str(e)))
        except MemoryError:
            post(("failed", "out of memory: try a smaller photo or a lower mesh resolution"))
        except Exception as e:  # noqa: BLE001 - report, never crash Blender
            traceback.print_exc()
            post(("failed", f"unexpected error in {self.stage}: {type(e).__name__}: {e}"))

    def step(self) -> str:
        """Main-thread step: apply the thread's messages; returns the state."""
        while True:
            try:
                msg = self._messages.get_nowait()
            except queue.Empty:
                break
            kind = msg[0]
            if kind == "progress":
                self.stage, self.progress = msg[1], msg[2]
                self.detail = None
            elif kind == "download":
                self.download = status = msg[1]
                self.detail = None if status.finished else status.text()
                self.detail_progress = status.fraction
            elif kind == "tile":
                i, n = msg[1], msg[2]
                if i >= n:
                    self.detail = None
                else:
                    self.detail = ("Estimating depth: whole photo done, now the tiles" if i == 1 else
                                   f"Estimating depth: tile {i - 1} of {n - 1} done")
                self.detail_progress = self.progress + (0.45 - self.progress) * i / n
            elif kind == "done":
                self.result, self.state, self.progress = msg[1], DONE, 1.0
            elif kind == "cancelled":
                self.state = CANCELLED
            elif kind == "failed":
                self.error, self.state = msg[1], FAILED
        return self.state

    def wait(self, timeout: float | None = None) -> str:
        """Block until the thread ends (headless use), then step."""
        self._thread.join(timeout)
        return self.step()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
