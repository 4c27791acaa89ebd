#!/usr/bin/env bash
# Build Gradient Workbench for distribution, from the project's folder, in the active Python
# environment (the one the app is installed in, e.g. `source .venv/bin/activate`):
#
#   packaging/build.sh              wheel + sdist (checked with twine) and the one-folder app
#   packaging/build.sh --smoke      ... then start the frozen app in packaging/smoke_test.sh
#   packaging/build.sh --tar        ... and pack the app as dist/gradient-workbench-VERSION-linux-ARCH.tar.gz
#   packaging/build.sh --no-frozen  wheel + sdist only
#
# Output in dist/: gradient_workbench-VERSION-py3-none-any.whl, gradient_workbench-VERSION.tar.gz,
# and gradient-workbench/ — the program gradient-workbench (every command of the console
# script; the window by default), examples/, zoo/ and desktop/ (run
# desktop/install-desktop.sh to get a menu entry and open *.gwb files by double-click).
# The tools (build, twine, pyinstaller) are installed into the environment if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python}"
SMOKE=0; FROZEN=1; TAR=0
for arg in "$@"; do
    case "$arg" in
        --smoke) SMOKE=1 ;;
        --tar) TAR=1 ;;
        --no-frozen) FROZEN=0 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

VERSION="$("$PY" -c 'import core; print(core.__version__)')"
ARCH="$(uname -m)"
T0=$SECONDS
stage() { echo "== $1 ($((SECONDS - T0)) s)"; }

if ! "$PY" -c 'import build, twine, PyInstaller' 2>/dev/null; then
    stage "installing the build tools"
    "$PY" -m pip install --quiet "build>=1.2" "twine>=5" "pyinstaller>=6.10"
fi

stage "wheel and sdist of gradient-workbench $VERSION"
rm -rf dist/gradient_workbench-* build/lib build/bdist*
mkdir -p build
"$PY" -m build --outdir dist . > build/build.log 2>&1 || { tail -30 build/build.log; exit 1; }
WHEEL="dist/gradient_workbench-$VERSION-py3-none-any.whl"
SDIST="dist/gradient_workbench-$VERSION.tar.gz"
"$PY" -m twine check --strict "$WHEEL" "$SDIST"
# the wheel must carry the window icon (package data) and both packages
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = [m for m in ("workbench/resources/gradient-workbench.svg", "core/__init__.py", "workbench/cli.py")
           if m not in names]
sys.exit(f"build.sh: missing from {sys.argv[1]}: {', '.join(missing)}" if missing else 0)
EOF
ls -l "$WHEEL" "$SDIST"

if [ "$FROZEN" = 1 ]; then
    stage "PyInstaller one-folder build"
    APPDIR=dist/gradient-workbench
    rm -rf "$APPDIR"
    "$PY" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
        packaging/gradient-workbench.spec
    cp -r resources/examples "$APPDIR/examples"
    [ -d resources/zoo ] && cp -r resources/zoo "$APPDIR/zoo"
    mkdir -p "$APPDIR/desktop"
    cp -r packaging/install-desktop.sh packaging/gradient-workbench.desktop packaging/gradient-workbench-mime.xml \
        packaging/gradient-workbench.metainfo.xml packaging/icons "$APPDIR/desktop/"
    echo "$APPDIR: $(du -sh "$APPDIR" | cut -f1), $(find "$APPDIR" -type f | wc -l) files"
    if [ "$TAR" = 1 ]; then
        stage "packing the app"
        TARBALL="dist/gradient-workbench-$VERSION-linux-$ARCH.tar.gz"
        tar -C dist -czf "$TARBALL" gradient-workbench
        ls -l "$TARBALL"
    fi
    if [ "$SMOKE" = 1 ]; then
        stage "smoke test of the frozen app"
        packaging/smoke_test.sh "$APPDIR/gradient-workbench"
    fi
fi
stage "done"
