#!/usr/bin/env bash
# The Blender-facing tests on the other supported releases: bpy 4.2 LTS and 5.0.
# Each gets its own venv (.venv-4.2, .venv-5.0) with the same pins but bpy.
# Arguments, if any, replace the default test list (e.g. `tools/test_compat.sh tests/test_cli.py -k gif`).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  tests=("$@")
else
  # Every test file that runs bpy or photo3d's registered operators, and the extension's
  # validation and install with each release's own extension tool (about 3 minutes each).
  tests=(tests/test_blender.py tests/test_render.py tests/test_cli.py tests/test_effects.py
         tests/test_extension.py tests/test_extension_install.py tests/test_runtime_install.py
         tests/test_model_download.py tests/test_bundled_depth_model.py tests/test_depthdata_generate.py)
fi
status=0
for ver in 4.2.23 5.0.1; do
  venv=.venv-${ver%.*}
  if [ ! -f "$venv/.installed" ] || ! ls "$venv"/lib/python3.11/site-packages | grep -q '^mediapipe$'; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    grep -v '^bpy' requirements.txt > "$venv/requirements.txt"
    "$venv/bin/pip" install -q "bpy==$ver" -r "$venv/requirements.txt" || { echo "bpy $ver: install failed"; status=1; continue; }
    "$venv/bin/pip" install -q --no-deps mediapipe==0.10.21   # the portrait networks, as the Makefile
    mkdir -p "$venv/src" && ln -sfn "$PWD" "$venv/src/photo3d"
    "$venv/bin/python" -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'photo3d-src.pth').write_text('$PWD/$venv/src\n')"
    touch "$venv/.installed"
  fi
  echo "== bpy $ver"
  "$venv/bin/python" -m pytest -q -p no:randomly -rfEs "${tests[@]}" || status=1
done
exit $status
