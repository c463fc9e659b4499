#!/bin/sh
# Renders every mail template in every language (with the tests' sample data, in
# the shared layout) and photographs each HTML part with headless Chromium, for
# review by eye: scripts/render-mails.sh [BUILD_DIR] [OUT_DIR]
# Chromium is installed here on first use (Debian's `chromium`); CI tests do not
# need it (install-deps.sh --render installs it too).
set -eu
BUILD=${1:-build}
OUT=${2:-$BUILD/rendered-mails}
if ! command -v chromium >/dev/null 2>&1; then
    echo "render-mails: installing Debian's chromium" >&2
    "$(dirname "$0")/install-deps.sh" --render
fi
mkdir -p "$OUT"
# The layout test renders each mail; with SUPPORTMAIL_RENDER_DIR it keeps the HTML.
SUPPORTMAIL_RENDER_DIR=$(cd "$OUT" && pwd) "$BUILD/tests/unit_tests" "[layout]" >/dev/null
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
count=0
for html in "$OUT"/*.html; do
    png=${html%.html}.png
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$PROFILE" \
        --hide-scrollbars --window-size=760,1600 --screenshot="$png" "file://$html" >/dev/null 2>&1
    count=$((count + 1))
done
echo "render-mails: $count mails rendered into $OUT (*.html, *.png)"
