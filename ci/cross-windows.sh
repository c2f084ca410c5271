#!/usr/bin/env bash
# Proves, on Linux, that the workspace builds for Windows and that its tests
# pass there: cross-compiles the default members for x86_64-pc-windows-gnu
# with MinGW-w64 and runs every test executable and doc test under Wine,
# through cargo's target runner. The native integration tests start the real
# chatserver.exe, chatclient.exe and udprelay.exe, which Wine runs as child
# processes talking UDP on 127.0.0.1.
#
# What Wine does not reproduce: Windows reporting an ICMP port-unreachable on
# an unconnected UDP socket (recv_from failing with WSAECONNRESET, 10054).
# native/tests/vanished_client.rs provokes that case; it exercises the error
# itself only on real Windows (the windows-latest CI job).
#
# Installs what it needs when missing: gcc-mingw-w64-x86-64, wine and wine64
# (apt-get, Debian/Ubuntu; sudo when not root) and the Rust target. Uses its
# own Wine prefix, ~/.cache/udpchat/wine (WINEPREFIX overrides). Wine 8
# (Debian 12) has no bcryptprimitives.dll, whose ProcessPrng Rust's standard
# library imports since 1.78: the script then builds a stand-in with MinGW
# (ProcessPrng answered by RtlGenRandom) into the prefix. Windows 10 and
# later, and Wine 9, have the real DLL.
#
# Time on the 2-core dev machine: a cold build of core, netem and native
# for Windows takes about 2 min and their tests under Wine about 1.5 min
# (the real-socket tests dominate); installing MinGW and Wine about 20 s,
# creating the Wine prefix about 10 s. host-runner's wasmtime and cranelift
# add about 5 min to a cold build.
#
# Usage: ci/cross-windows.sh [cargo test arguments]
#   ci/cross-windows.sh                        # the default members
#   ci/cross-windows.sh --workspace --exclude wasi-client --exclude host-runner
#   ci/cross-windows.sh -p udpchat-native --test restart -- --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
start=$SECONDS

need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v wine >/dev/null || need+=(wine wine64)
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

export WINEPREFIX="${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/udpchat/wine}"
export WINEARCH=win64
# Quiet, except for DLLs that fail to load; no Mono or Gecko installers.
export WINEDEBUG="${WINEDEBUG:--all,err+module}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
unset DISPLAY WAYLAND_DISPLAY
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$WINEPREFIX"
    echo "creating the Wine prefix $WINEPREFIX"
    wineboot --init >/dev/null 2>&1 || true
    # wineboot returns before the prefix is written out.
    wineserver --wait || true
fi
system32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -f "$system32/bcryptprimitives.dll" ]; then
    echo "$(wine --version): no bcryptprimitives.dll; building a stand-in"
    work="$(mktemp -d)"
    cat >"$work/bcryptprimitives.c" <<'C'
/* Stand-in for Windows' bcryptprimitives.dll under Wine < 9 (made by
 * ci/cross-windows.sh): Rust's std imports ProcessPrng from it. */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
C
    printf 'LIBRARY bcryptprimitives\nEXPORTS\nProcessPrng\n' >"$work/bcryptprimitives.def"
    x86_64-w64-mingw32-gcc -O2 -shared -o "$system32/bcryptprimitives.dll" \
        "$work/bcryptprimitives.c" "$work/bcryptprimitives.def" -ladvapi32
    rm -rf "$work"
fi

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine

# host-runner's tests run the wasm guests and the native chatserver: build
# them first, and show the guests where the tests look for them, beside the
# target's profile directory (<target-dir>/<triple>/wasm32-wasip2/).
covers_host_runner=false
if [ -f host-runner/Cargo.toml ]; then
    [ "$#" -eq 0 ] && covers_host_runner=true
    for arg in "$@"; do
        case "$arg" in host-runner | --workspace) covers_host_runner=true ;; esac
    done
fi
if $covers_host_runner && [ -f ci/build-wasm.sh ]; then
    bash ci/build-wasm.sh
    target_dir="${CARGO_TARGET_DIR:-target}"
    mkdir -p "$target_dir/$TARGET"
    ln -sfn "$(cd "$target_dir" && pwd)/wasm32-wasip2" "$target_dir/$TARGET/wasm32-wasip2"
    cargo build --target "$TARGET" -p udpchat-native --bins
fi

echo "== cargo test --target $TARGET --no-run $*"
t0=$SECONDS
cargo test --target "$TARGET" --no-fail-fast --no-run "$@"
build=$((SECONDS - t0))

echo "== cargo test --target $TARGET $* (under $(wine --version))"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
t0=$SECONDS
status=0
cargo test --target "$TARGET" --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
tests=$((SECONDS - t0))
wineserver --wait || true

# The test harness's summary lines, added up.
awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i
            if ($(i+1) ~ /^failed/) f += $i
            if ($(i+1) ~ /^ignored/) g += $i
        }
        n++
    }
    END { printf "wine: %d test binaries; %d passed, %d failed, %d ignored\n", n, p, f, g }' "$log"
echo "cross-windows: build ${build} s, tests under Wine ${tests} s, total $((SECONDS - start)) s"
exit "$status"
