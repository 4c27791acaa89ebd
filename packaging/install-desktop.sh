#!/usr/bin/env bash
# Install Gradient Workbench into the desktop: menu entry, icons, the *.gwb file type and its
# default application (so a double-click on a session opens it in the app), AppStream metadata.
#
#   packaging/install-desktop.sh                       # for the current user (~/.local/share)
#   packaging/install-desktop.sh --exec /opt/gradient-workbench/gradient-workbench   # a frozen build
#   sudo packaging/install-desktop.sh --system         # for everyone (/usr/local/share)
#   packaging/install-desktop.sh --uninstall [--system]
#
# The menu entry runs `gradient-workbench FILE` (a bare *.gwb / *.json path opens it). By default
# the entry names, by its absolute path, the frozen app this script sits beside (the desktop/
# folder of a packaging/build.sh build) or else the `gradient-workbench` found on PATH, so an
# app installed in a virtual environment starts from the menu too; --exec names another program.
# Only plain file copies plus the freedesktop cache tools (update-mime-database,
# update-desktop-database, gtk-update-icon-cache) are used, each only if it is installed.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
APP=gradient-workbench
MIME_TYPE=application/x-gradient-workbench-session
MIME_ICON=application-x-gradient-workbench-session
COMPONENT_ID=io.github.gradient_workbench.GradientWorkbench

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
EXEC=""
UNINSTALL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --exec) EXEC="${2:?--exec needs a program path}"; shift 2 ;;
        --system) DATA=/usr/local/share; shift ;;
        --prefix) DATA="${2:?--prefix needs a folder}/share"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install-desktop.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done

refresh() {
    if command -v update-mime-database >/dev/null; then update-mime-database "$DATA/mime"; fi
    if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$DATA/applications"; fi
    # an icon cache is only kept up to date where one is kept (a theme folder with index.theme)
    if command -v gtk-update-icon-cache >/dev/null && [ -f "$DATA/icons/hicolor/index.theme" ]; then
        gtk-update-icon-cache -q -f "$DATA/icons/hicolor" || true
    fi
}

if [ "$UNINSTALL" = 1 ]; then
    rm -f "$DATA/applications/$APP.desktop" "$DATA/mime/packages/$APP-mime.xml" \
          "$DATA/metainfo/$COMPONENT_ID.metainfo.xml"
    rm -f "$DATA"/icons/hicolor/*/apps/"$APP".{png,svg} "$DATA"/icons/hicolor/*/mimetypes/"$MIME_ICON".{png,svg}
    mkdir -p "$DATA/mime" "$DATA/applications"
    refresh
    echo "Removed Gradient Workbench's desktop integration from $DATA"
    exit 0
fi

if [ -z "$EXEC" ] && [ -x "$HERE/../$APP" ] && [ -f "$HERE/../$APP" ]; then
    EXEC="$HERE/../$APP"            # the frozen app: dist/gradient-workbench/desktop/install-desktop.sh
fi
if [ -z "$EXEC" ]; then
    EXEC="$(command -v "$APP" || true)"
    if [ -z "$EXEC" ]; then
        echo "install-desktop.sh: no '$APP' on PATH; install the app first (pip install .)," \
             "activate its virtual environment, or name the program with --exec PATH" >&2
        exit 2
    fi
fi
if [ ! -x "$EXEC" ]; then
    echo "install-desktop.sh: $EXEC is not an executable program" >&2
    exit 2
fi
EXEC="$(cd "$(dirname "$EXEC")" && pwd)/$(basename "$EXEC")"
case "$EXEC" in
    *[[:space:]\"\'\\\`\$%]*) echo "install-desktop.sh: put the app in a path without spaces or quotes: $EXEC" >&2; exit 2 ;;
esac

mkdir -p "$DATA/applications" "$DATA/mime/packages" "$DATA/metainfo"
sed -e "s|^Exec=$APP |Exec=$EXEC |" -e "s|^TryExec=$APP\$|TryExec=$EXEC|" \
    "$HERE/$APP.desktop" > "$DATA/applications/$APP.desktop"
cp "$HERE/$APP-mime.xml" "$DATA/mime/packages/$APP-mime.xml"
cp "$HERE/$APP.metainfo.xml" "$DATA/metainfo/$COMPONENT_ID.metainfo.xml"
for dir in "$HERE"/icons/hicolor/*/apps; do
    size="$(basename "$(dirname "$dir")")"
    mkdir -p "$DATA/icons/hicolor/$size/apps" "$DATA/icons/hicolor/$size/mimetypes"
    for icon in "$dir"/*; do
        cp "$icon" "$DATA/icons/hicolor/$size/apps/"
        cp "$icon" "$DATA/icons/hicolor/$size/mimetypes/$MIME_ICON.${icon##*.}"  # sessions show the app's icon
    done
done
refresh
# Make the app the default for sessions (it is the only one that declares the type, so this
# only matters if another program claims it too).
if command -v xdg-mime >/dev/null; then
    xdg-mime default "$APP.desktop" "$MIME_TYPE" || true
elif command -v gio >/dev/null; then
    gio mime "$MIME_TYPE" "$APP.desktop" >/dev/null 2>&1 || true
fi
echo "Installed Gradient Workbench's desktop integration into $DATA (Exec=$EXEC)"
