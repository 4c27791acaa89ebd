#!/usr/bin/env bash
# Start a built Gradient Workbench the way a user would and check that it works:
#
#   packaging/smoke_test.sh [PROGRAM]     (default: dist/gradient-workbench/gradient-workbench)
#
# In an empty environment (no virtual environment, no PYTHONPATH, a temporary HOME, another
# working folder), so nothing can come from the source tree, it checks that the program
#   1. prints the version of core/__init__.py (--version),
#   2. trains an example headless for one epoch (the digits data set: scikit-learn's bundled
#      data must be inside the build) and describes the session it wrote (info),
#   3. starts the window offscreen, opens that session, runs the event loop and closes
#      (gradient-workbench --smoke-test FILE; see workbench/smoke.py), then the same with a
#      bundled zoo session and with no file at all,
#   4. installs its menu entry (desktop/install-desktop.sh, into a temporary folder) pointing at it.
# Exit status 0 if every step passed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
APP="${1:-$ROOT/dist/gradient-workbench/gradient-workbench}"
APP="$(cd "$(dirname "$APP")" && pwd)/$(basename "$APP")"
APPDIR="$(dirname "$APP")"
[ -x "$APP" ] || { echo "smoke_test.sh: no program at $APP (run packaging/build.sh first)" >&2; exit 2; }
EXPECTED="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/core/__init__.py")"
EXAMPLES="$APPDIR/examples"; [ -d "$EXAMPLES" ] || EXAMPLES="$ROOT/resources/examples"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
run() {  # the program in a clean environment, killed if it hangs
    env -i PATH=/usr/bin:/bin HOME="$WORK" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
        XDG_RUNTIME_DIR="$WORK" timeout 180 "$APP" "$@"
}
T0=$SECONDS
step() { echo "-- $1"; }

step "version"
VERSION_LINE="$(run --version)"
echo "$VERSION_LINE"
[ "$VERSION_LINE" = "gradient-workbench $EXPECTED" ] || { echo "expected version $EXPECTED" >&2; exit 1; }

step "train one epoch headless, then info"
run train "$EXAMPLES/vanishing.json" --epochs 1 --out "$WORK/run.gwb" --quiet
run info "$WORK/run.gwb" > "$WORK/info.txt"
head -5 "$WORK/info.txt"

step "open the session in the window"
run --smoke-test "$WORK/run.gwb"
if [ -d "$APPDIR/zoo" ]; then
    ZOO="$(find "$APPDIR/zoo" -name '*.gwb' | sort | head -1)"
    step "open a bundled zoo session ($(basename "$ZOO"))"
    run "$ZOO" --smoke-test
fi
step "start on the default experiment"
run --smoke-test
if [ -x "$APPDIR/desktop/install-desktop.sh" ]; then
    step "desktop integration of the build (into a temporary data folder)"
    XDG_DATA_HOME="$WORK/data" XDG_CONFIG_HOME="$WORK/config" "$APPDIR/desktop/install-desktop.sh"
    grep -qx "Exec=$APP %f" "$WORK/data/applications/gradient-workbench.desktop" \
        || { echo "the installed menu entry does not start $APP" >&2; exit 1; }
fi
echo "smoke test of $APP passed in $((SECONDS - T0)) s"
