#!/usr/bin/env bash
# Vendor MathJax for offline builds of the book: copies es5/tex-svg-full.js (and the
# licence) of the npm package `mathjax` into book/_mathjax/mathjax/.
# The version is MATHJAX_VERSION in book/_ext/ddpm_book.py (the only place it is set).
# Needs npm and access to the npm registry. Usage: bash tools/vendor_mathjax.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ext="$root/book/_ext/ddpm_book.py"
version="$(sed -n 's/^MATHJAX_VERSION = "\(.*\)"$/\1/p' "$ext")"
file="$(sed -n 's/^MATHJAX_FILE = "\([^"]*\)".*$/\1/p' "$ext")"
[ -n "$version" ] && [ -n "$file" ] || { echo "cannot read MATHJAX_VERSION/MATHJAX_FILE from $ext" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$version" >/dev/null && tar xzf "mathjax-$version.tgz")
grep -q "VERSION=\"$version\"" "$tmp/package/es5/$file" || { echo "es5/$file is not MathJax $version" >&2; exit 1; }
dest="$root/book/_mathjax/mathjax"
mkdir -p "$dest"
cp "$tmp/package/es5/$file" "$dest/$file"
cp "$tmp/package/LICENSE" "$dest/LICENSE"
printf 'MathJax %s (npm package mathjax@%s, file es5/%s), Apache License 2.0.\nRefresh with: bash tools/vendor_mathjax.sh\n' \
  "$version" "$version" "$file" > "$dest/VERSION.txt"
echo "vendored MathJax $version: $dest/$file ($(wc -c < "$dest/$file") bytes)"
