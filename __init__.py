"""photo3d: turn one photo into a layered 3D scene with an animated camera.

Blender imports this package as ``bl_ext.<repo>.photo3d``; the headless CLI and the
tests import it as ``photo3d``. ``inference`` never touches ``bpy``, so importing the
package itself must not either: the Blender-facing modules load in ``register()``.
"""

__version__ = "0.1.0"


def register():
    from . import runtime
    runtime.use_installed_onnxruntime()   # first: the panel's first draw imports ONNX Runtime

    from . import operators, preferences, properties, ui
    properties.register()
    operators.register()
    runtime.register()               # and PyTorch installed on request by an earlier session
    preferences.register()
    ui.register()


def unregister():
    from . import operators, preferences, properties, runtime, ui

    ui.unregister()
    preferences.unregister()
    runtime.unregister()
    operators.unregister()
    properties.unregister()
