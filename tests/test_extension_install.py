"""The extension as Blender users get it: build the zip, install it with Blender's own
operator into a throw-away user folder, enable it as ``bl_ext.user_default.photo3d``, make a
3D photo through its operator, disable it. Runs in a subprocess (its own Blender)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.blender, pytest.mark.slow]

SCRIPT = textwrap.dedent("""
    import sys, bpy
    zip_path, photo = sys.argv[1], sys.argv[2]
    res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo='user_default',
                                                   enable_on_install=True)
    assert res == {'FINISHED'}, res
    assert 'bl_ext.user_default.photo3d' in bpy.context.preferences.addons, 'not enabled'
    import importlib
    pkg = importlib.import_module('bl_ext.user_default.photo3d')
    assert hasattr(bpy.types.Scene, 'photo3d') and hasattr(bpy.types, 'PHOTO3D_PT_main')
    assert bpy.ops.photo3d.make_photo(filepath=photo) == {'FINISHED'}
    names = sorted(o.name for o in bpy.data.collections['3D Photo'].all_objects)
    print('OBJECTS', names)
    bpy.ops.preferences.addon_disable(module='bl_ext.user_default.photo3d')
    assert not hasattr(bpy.types, 'PHOTO3D_PT_main')
    print('INSTALL-OK', pkg.__name__)
""")


def test_zip_installs_enables_and_works(tmp_path, small_portrait):
    build = subprocess.run([sys.executable, str(ROOT / "tools" / "build_extension.py"), "--out",
                            str(tmp_path / "build"), "--no-wheels"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    zips = sorted((tmp_path / "build").glob("*.zip"))
    assert len(zips) == 1
    script = tmp_path / "install.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    p = subprocess.run([sys.executable, str(script), str(zips[0]), small_portrait], capture_output=True,
                       text=True, env=env, timeout=300)
    assert "INSTALL-OK bl_ext.user_default.photo3d" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    assert "3D Photo Foreground" in p.stdout and "3D Photo Camera" in p.stdout
