#!/usr/bin/env bash
# Proves that the rust-version each package declares (the workspace's,
# unless a package sets its own) is true:
#   1. no dependency in Cargo.lock declares a newer rust-version than the
#      packages that use it (from `cargo metadata`);
#   2. with exactly that toolchain (installed by rustup, minimal profile),
#      `cargo check --all-targets` passes for those packages: our code uses
#      no newer language feature or std API. wasi-client is checked for
#      wasm32-wasip2, everything else for the host.
# It does not prove that an older toolchain would fail (rust-version may be
# higher than strictly needed), nor run the tests with the old toolchain.
#
# Usage: ci/msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
# "VERSION PACKAGE" per workspace member, then the dependency check.
plan="$(cargo metadata --format-version 1 | python3 -c '
import json, sys

meta = json.load(sys.stdin)
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
members = set(meta["workspace_members"])

def ver(v):
    return tuple(int(x) for x in (v or "0").split("."))

bad = False
for m in sorted(members, key=lambda i: pkgs[i]["name"]):
    declared = pkgs[m].get("rust_version")
    name = pkgs[m]["name"]
    if not declared:
        print(f"msrv: {name} declares no rust-version", file=sys.stderr)
        bad = True
        continue
    # Every package this one depends on, transitively (all targets and
    # platforms, dev and build dependencies included), other members aside.
    seen, todo = set(), [m]
    while todo:
        for dep in nodes[todo.pop()]["deps"]:
            if dep["pkg"] not in seen and dep["pkg"] not in members:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    newest = max(seen, key=lambda i: ver(pkgs[i].get("rust_version")), default=None)
    need = pkgs[newest].get("rust_version") if newest else None
    if need and ver(need) > ver(declared):
        newer = sorted({pkgs[i]["name"] + " " + pkgs[i]["version"] for i in seen
                        if ver(pkgs[i].get("rust_version")) > ver(declared)})
        print(f"msrv: {name} declares rust-version {declared}, but its dependencies "
              f"need {need}: {len(newer)} crates, e.g. {newer[0]}", file=sys.stderr)
        bad = True
    else:
        dep = (pkgs[newest]["name"] + " " + need) if need else "none outside the workspace"
        print(f"msrv: {name} declares {declared}; newest dependency requirement: {dep}",
              file=sys.stderr)
    print(declared, name)
sys.exit(1 if bad else 0)
')" || dependency_check_failed=1

status=0
failed=()
while read -r -u 3 version pkg; do
    rustup toolchain list | grep -q "^$version-" ||
        rustup toolchain install "$version" --profile minimal --no-self-update
    target=()
    if [ "$pkg" = wasi-client ]; then
        rustup target list --toolchain "$version" --installed | grep -qx wasm32-wasip2 ||
            rustup target add --toolchain "$version" wasm32-wasip2
        target=(--target wasm32-wasip2)
    fi
    echo "== cargo +$version check -p $pkg --all-targets ${target[*]}"
    if cargo "+$version" check -p "$pkg" --all-targets "${target[@]}"; then
        echo "msrv: $pkg builds with Rust $version"
    else
        status=1
        failed+=("$pkg")
    fi
done 3<<<"$plan"

if [ "${dependency_check_failed:-0}" = 1 ] || [ "$status" != 0 ]; then
    echo "msrv: FAILED: ${failed[*]:-the dependency check} ($((SECONDS - start)) s)" >&2
    exit 1
fi
echo "msrv: every package builds with the rust-version it declares ($((SECONDS - start)) s)"
