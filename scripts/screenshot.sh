#!/bin/sh
# Render an HTML file (e.g. a `dcm report`) with headless Chromium and save
# a screenshot; Chromium's log (console messages included) goes to stderr.
#   sh scripts/screenshot.sh REPORT.html OUT.png [WIDTH [HEIGHT]]
# Exit status: 0 done, 1 usage, 2 no such report, 4 Chromium missing or failed.
set -u
[ $# -ge 2 ] || { echo "usage: sh scripts/screenshot.sh REPORT.html OUT.png [WIDTH [HEIGHT]]" >&2; exit 1; }
html=$1; png=$2; w=${3:-1280}; h=${4:-4000}
[ -f "$html" ] || { echo "screenshot: $html: no such file" >&2; exit 2; }
chrome=""
for c in /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do
    [ -x "$c" ] && { chrome=$c; break; }
done
[ -n "$chrome" ] || { echo "screenshot: chromium is not installed (apt-get install chromium)" >&2; exit 4; }
case $html in /*) url="file://$html" ;; *) url="file://$(pwd)/$html" ;; esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --enable-logging=stderr --v=0 \
    --screenshot="$png" --window-size="$w,$h" "$url" || { echo "screenshot: chromium failed" >&2; exit 4; }
[ -s "$png" ] || { echo "screenshot: chromium wrote no $png" >&2; exit 4; }
