#!/usr/bin/env bash
# Install the prebuilt OHIF viewer (npm @ohif/app) and rewrite it to run under /viewer/.
#
# Idempotent and keyed by version: var/ohif/<version>/dist is made once; a finished install
# leaves var/ohif/<version>/.ready and a later run does nothing. Nothing here is committed.
#
# Why each rewrite (the dist is built for the site root, "/"):
#   index.html       window.PUBLIC_URL and absolute href="/…"/src="/…" (and the tile icons
#                    in <meta content="/assets/…">) → /viewer/…
#   *.js             __webpack_require__.p = "/" → "/viewer/": lazy chunks, workers and wasm
#                    codecs are fetched from the bundler's public path; left at "/" they 404
#                    and the page stays black.
#   *.css            url(/… → url(/viewer/… (fonts, images)
#   .gz copies       of js/css/wasm/json/map, so the server sends gzip without compressing
#                    17 MB of bundle per request.
set -euo pipefail

VERSION="${OHIF_VERSION:-3.13.2}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${SKYLIGHT_OHIF_DIR:-$ROOT/var/ohif}/$VERSION"
PREFIX="/viewer/"

if [ -f "$DEST/.ready" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-ohif: npm is missing. Install Node.js 20+ with npm, e.g. 'sudo apt-get install nodejs npm'." >&2
    exit 1
fi

echo "install-ohif: installing @ohif/app@$VERSION into $DEST (about 50 MB download)"
rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp/pack"
(cd "$DEST.tmp/pack" && npm pack --silent "@ohif/app@$VERSION" >/dev/null)
tar -xzf "$DEST.tmp"/pack/*.tgz -C "$DEST.tmp" package/dist
mv "$DEST.tmp/package/dist" "$DEST.tmp/dist"
rm -rf "$DEST.tmp/pack" "$DEST.tmp/package"

DIST="$DEST.tmp/dist"
# index.html: the public URL and every root-absolute attribute.
sed -i \
    -e "s#window.PUBLIC_URL *= *[\"']/[\"']#window.PUBLIC_URL=\"$PREFIX\"#g" \
    -e "s#\(href\|src\)=\"/\([^/\"]\)#\1=\"$PREFIX\2#g" \
    -e "s#\(href\|src\)=\"/\"#\1=\"$PREFIX\"#g" \
    -e "s#content=\"/assets/#content=\"${PREFIX}assets/#g" \
    "$DIST/index.html"
# The bundler's public path in every chunk that sets it.
grep -rlZ --include='*.js' '__webpack_require__.p = "/";' "$DIST" \
    | xargs -0 -r sed -i "s#__webpack_require__.p = \"/\";#__webpack_require__.p = \"$PREFIX\";#g"
# Root-absolute urls in stylesheets (not protocol-relative //…).
find "$DIST" -name '*.css' -print0 \
    | xargs -0 -r sed -i -E "s#url\((['\"]?)/([^/])#url(\1$PREFIX\2#g"
# A different build would need different rewrites: stop rather than serve a black page.
if grep -q 'PUBLIC_URL="/"' "$DIST/index.html" \
    || ! grep -rq --include='app.bundle.*.js' "__webpack_require__.p = \"$PREFIX\";" "$DIST"; then
    echo "install-ohif: the rewrites for $PREFIX did not apply to @ohif/app@$VERSION" >&2
    exit 1
fi
# Precompressed copies of what is worth compressing.
find "$DIST" -type f \( -name '*.js' -o -name '*.css' -o -name '*.wasm' -o -name '*.json' \
    -o -name '*.map' -o -name '*.html' -o -name '*.svg' \) -size +1k -print0 \
    | xargs -0 -r -n 32 -P 2 gzip -6 -k -f

touch "$DEST.tmp/.ready"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "install-ohif: ready in $DEST/dist"
