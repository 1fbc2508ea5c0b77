"""``python -m photo3d``: the headless command line."""
import os
import sys

from .cli import main


def _exit(code: int):
    # The bpy 4.2 module crashes while the interpreter shuts down once its glTF exporter has
    # run (a segfault after every output is written and moved into place): on 4.2, leave
    # without that teardown so scripts see the real exit status.
    bpy = sys.modules.get("bpy")
    glb = sys.modules.get(f"{__package__}.scene.glb")
    if bpy is not None and bpy.app.version < (4, 3, 0) and getattr(glb, "exporter_ran", False):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":     # not again in the batch's spawned worker processes
    _exit(main())
