#!/usr/bin/env bash
# Build llama.cpp's own OpenAI-compatible server, `llama-server`, from the llama.cpp sources vendored in
# the llama-cpp-python sdist pinned in constraints.txt (the same llama.cpp as `make served`'s module):
# nothing but that sdist is downloaded (from PyPI, by pip), no prebuilt binary is trusted.
#
#   tools/build_llama_server.sh [OUT]        # OUT defaults to .build/llama-server (git-ignored)
#
# OUT/bin/llama-server: one static executable (ggml and llama linked in), tuned for this CPU
# (GGML_NATIVE). No web UI (LLAMA_USE_PREBUILT_UI=OFF: its assets would be downloaded from the
# Hugging Face hub), no HTTPS client (LLAMA_OPENSSL=OFF: the server only listens on loopback here).
# A second run with the same pin does nothing. JOBS sets the compile jobs (default: the CPU count).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/.build/llama-server}
PY=${PY:-$ROOT/.venv/bin/python}
JOBS=${JOBS:-$(nproc)}
VERSION=$(sed -n 's/^llama-cpp-python==\([0-9.]*\)$/\1/p' "$ROOT/constraints.txt")
if [ -z "$VERSION" ]; then
    echo "build_llama_server: no 'llama-cpp-python==X.Y.Z' pin in $ROOT/constraints.txt" >&2
    exit 2
fi
if [ -x "$OUT/bin/llama-server" ] && [ "$(cat "$OUT/VERSION" 2>/dev/null)" = "$VERSION" ]; then
    echo "llama-server from llama-cpp-python $VERSION is built: $OUT/bin/llama-server"
    exit 0
fi

trap 'echo "build_llama_server: failed; the logs: $OUT/cmake.log, $OUT/build.log" >&2' ERR
start=$(date +%s)
mkdir -p "$OUT/src" "$OUT/bin"
"$PY" -m pip download --quiet --no-deps --no-binary :all: -d "$OUT/src" "llama-cpp-python==$VERSION"
rm -rf "$OUT/src/llama_cpp_python-$VERSION"
tar -xzf "$OUT/src/llama_cpp_python-$VERSION.tar.gz" -C "$OUT/src"
SRC="$OUT/src/llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake -S "$SRC" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >"$OUT/cmake.log" 2>&1
cmake --build "$OUT/build" --target llama-server -j "$JOBS" >"$OUT/build.log" 2>&1
cp "$OUT/build/bin/llama-server" "$OUT/bin/llama-server"
echo "$VERSION" >"$OUT/VERSION"
"$OUT/bin/llama-server" --version 2>&1 | tail -n 2
echo "llama-server built in $(( $(date +%s) - start )) s ($JOBS jobs): $OUT/bin/llama-server"
