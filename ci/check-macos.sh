#!/usr/bin/env bash
# Proves, from Linux, that the workspace type-checks for macOS on Intel and
# on Apple silicon: `cargo check --all-targets` (libraries, binaries, tests,
# examples, benches) of every package but the wasm-only wasi-client, for
# x86_64-apple-darwin and aarch64-apple-darwin. That covers every
# `cfg(unix)` / `cfg(target_os = "macos")` path of our Rust code and of the
# dependencies' Rust code. It links nothing and runs nothing: the macOS CI
# job builds and runs the tests.
#
# The limit: off a Mac there is no macOS SDK (no libc headers, no linker).
# Dependencies whose build scripts compile C (today one file, wasmtime's
# src/runtime/vm/helpers.c, which host-runner pulls in) are compiled by clang
# for the macOS target against clang's own freestanding headers plus a
# stand-in <stdlib.h> that only defines NULL and size_t. Should a C
# dependency ever need more of the SDK, its build script fails here and the
# crate is named in the error. On macOS itself the real SDK is used.
#
# Installs the Rust targets, and clang (Debian/Ubuntu) if it is missing.
#
# Usage: ci/check-macos.sh [extra cargo check arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(x86_64-apple-darwin aarch64-apple-darwin)
installed="$(rustup target list --installed)"
for target in "${TARGETS[@]}"; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target"
done

if [ "$(uname -s)" != Darwin ]; then
    if ! command -v clang >/dev/null; then
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo=sudo
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends clang >/dev/null
    fi
    shim="$PWD/target/ci-tools/macos-c-headers"
    mkdir -p "$shim"
    cat >"$shim/stdlib.h" <<'HEADER'
/* Stand-in for the macOS SDK's <stdlib.h> (ci/check-macos.sh): NULL and
 * size_t only, from clang's freestanding <stddef.h>. */
#include <stddef.h>
HEADER
    cat >"$shim/string.h" <<'HEADER'
/* Stand-in for the macOS SDK's <string.h> (ci/check-macos.sh): the memory
 * functions ring's C uses. */
#include <stddef.h>
void *memcpy(void *, const void *, size_t);
void *memmove(void *, const void *, size_t);
void *memset(void *, int, size_t);
int memcmp(const void *, const void *, size_t);
HEADER
    cat >"$shim/TargetConditionals.h" <<'HEADER'
/* Stand-in for the macOS SDK's <TargetConditionals.h> (ci/check-macos.sh). */
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
HEADER
    for target in "${TARGETS[@]}"; do
        var="${target//-/_}"
        export "CC_$var=clang"
        export "CFLAGS_$var=-ffreestanding -DRING_CORE_NOSTDLIBINC=1 -isystem $shim"
    done
    echo "no macOS SDK here: C in dependencies is compiled by clang $(clang -dumpversion) with freestanding headers"
fi

exclude=()
[ -f wasi-client/Cargo.toml ] && exclude=(--exclude wasi-client)

start=$SECONDS
for target in "${TARGETS[@]}"; do
    echo "== cargo check --workspace ${exclude[*]} --all-targets --target $target"
    t0=$SECONDS
    cargo check --workspace "${exclude[@]}" --all-targets --target "$target" "$@"
    echo "check-macos: $target ok ($((SECONDS - t0)) s)"
done
echo "check-macos: ${TARGETS[*]} type-check, all targets of every package but wasi-client ($((SECONDS - start)) s)"
