#!/bin/sh
# install-deps.sh: installs what wf2jsm needs to build, test and run the demo,
# from Debian's packages. Safe to rerun: it installs only what is missing and
# says what it does. Needs root (or sudo) when something is missing.
set -eu

# libxml2-dev: the HTML parser for "formats": "html" columns. clang,
# libclang-rt-14-dev (libFuzzer's runtime, Debian 12's LLVM) and llvm
# (llvm-symbolizer, for readable fuzz reports): `make fuzz` and the fuzz
# smoke part of `make test`.
packages="gcc make pkg-config libpq-dev libcurl4-openssl-dev libcjson-dev libsqlite3-dev libssl-dev
libcmocka-dev libxml2-dev postgresql python3 valgrind curl ca-certificates
clang libclang-rt-14-dev llvm"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The contract tests need node and npm. Machines often have them from
# outside Debian (where Debian's npm package would conflict), so the
# commands are what counts, not the packages.
if [ "${WF2JSM_SKIP_CONTRACT:-0}" != 1 ]; then
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
if [ -z "$missing" ]; then
    exit 0
fi
echo "setup/install-deps.sh: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "setup/install-deps.sh: done"
