#!/usr/bin/env bash
# Manual pages from the binaries' own command-line definitions (clap_mangen):
# writes chatclient.1 (and chatclient-completions.1) and, once chatserver
# has the same hidden --generate-man flag, chatserver.1, into target/man/
# (or $CARGO_TARGET_DIR/man/). Read one with: man -l target/man/chatclient.1
set -euo pipefail
cd "$(dirname "$0")/.."
out="${CARGO_TARGET_DIR:-target}/man"
mkdir -p "$out"
cargo build -q -p udpchat-native --bin chatclient --bin chatserver
bin="${CARGO_TARGET_DIR:-target}/debug"
"$bin/chatclient" --generate-man "$out"
if "$bin/chatserver" --generate-man "$out" 2>/dev/null; then
    :
else
    echo "warning: chatserver has no --generate-man yet: no chatserver.1" >&2
fi
for page in "$out"/*.1; do
    # A page that does not start with roff's preamble is not a page.
    head -c 3 "$page" | grep -q '^\.' || { echo "error: $page is not roff" >&2; exit 1; }
    echo "$page"
done
