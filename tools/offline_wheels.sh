#!/usr/bin/env bash
# Download the wheels nsd needs on an offline GPU machine (a cluster node without internet, the
# project's lent GPU machine) whose Python already holds torch and the scientific stack.
#
#   tools/offline_wheels.sh [DIR] [PYTHON_VERSION]      # default: .whl 3.12
#
# Run it where pip can reach an index. It fetches nsd's requirements and the test tools (nbdev,
# fastcore, execnb and what they pull in) as binary wheels for CPython PYTHON_VERSION on
# manylinux x86-64, then removes the wheels of packages a PyTorch image normally has already
# (SKIP below; set SKIP="" to keep everything), so that the folder stays small (28 MB for Python 3.12 on 2026-12-01).
# On the GPU machine, `benchmarks/gpu_checks.sh` installs them with
#   python3 -m pip install --no-index --no-deps --target /tmp/site DIR/*.whl
# and prints which of nsd's imports are still missing before it runs anything.
set -euo pipefail
DIR=${1:-.whl}
PYV=${2:-3.12}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
SKIP=${SKIP-"numpy scipy h5py matplotlib pyyaml tqdm packaging psutil pygments setuptools six typing_extensions wheel build pyproject_hooks narwhals asttokens torch contourpy cycler fonttools kiwisolver pillow pyparsing python-dateutil"}
mkdir -p "$DIR"
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  plat+=(--platform "$p")
done
reqs=$(sed -n 's/^requirements *= *//p' settings.ini)
dev=$(sed -n 's/^dev_requirements *= *//p' settings.ini | tr ' ' '\n' | grep -v '^ipykernel' | tr '\n' ' ')
# shellcheck disable=SC2086
"$PY" -m pip download -q --only-binary=:all: --python-version "$PYV" --implementation cp "${plat[@]}" \
  -d "$DIR" $reqs $dev
for name in $SKIP; do
  # wheel file names use the normalised project name with '_' for '-'
  rm -f "$DIR"/"${name//-/_}"-[0-9]*.whl "$DIR"/"${name}"-[0-9]*.whl
done
echo "$(ls "$DIR"/*.whl | wc -l) wheels, $(du -sh "$DIR" | cut -f1) in $DIR (skipped: ${SKIP:-nothing})"
