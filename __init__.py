"""photo3d: turn one photo into a layered 3D scene with an animated camera.

Blender imports this package as ``bl_ext.<repo>.photo3d``; the headless CLI and the
tests import it as ``photo3d``. ``inference`` never touches ``bpy``, so importing the
package itself must not either: the Blender-facing modules load in ``register()``.
"""

__version__ = "0.1.0"


def register():
    from . import properties, operators, preferences, ui
    from .operators import runtime

    properties.register()
    operators.register()
    preferences.register()
    ui.register()
    runtime.activate_existing()      # PyTorch installed on request by an earlier session


def unregister():
    from . import properties, operators, preferences, ui

    ui.unregister()
    preferences.unregister()
    operators.unregister()
    properties.unregister()
