#!/usr/bin/env bash
# The test suite on the other supported releases: bpy 4.2 LTS and 5.0.
# Each gets its own venv (.venv-4.2, .venv-5.0) with the same pins but bpy.
set -uo pipefail
cd "$(dirname "$0")/.."
# The whole suite by default (its Blender-facing part is most of its time: about 4 minutes
# a release on 2 cores); arguments replace it, e.g. `tools/test_compat.sh tests/test_cli.py -k gif`.
if [ $# -gt 0 ]; then tests=("$@"); else tests=(tests); fi
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
