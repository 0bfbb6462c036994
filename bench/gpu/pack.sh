#!/usr/bin/env bash
# Packs what `bench/gpu/run.sh` needs on a GPU machine that has no network and maybe no Node:
# the benchmarks bundled into one file, this machine's node binary, and onnxruntime-node with its
# linux-x64 binaries only (the whole package is 288 MB). Output: .gpu/ (git-ignored); .tar.xz, which python3 -m tarfile unpacks where xz is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu
npx --no-install esbuild bench/main.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --external:sharp --external:@huggingface/tokenizers --log-level=warning \
  --outfile=.gpu/bench.mjs
tar -C node_modules -cf - onnxruntime-common onnxruntime-node/package.json onnxruntime-node/dist \
  onnxruntime-node/lib onnxruntime-node/bin/napi-v6/linux/x64 | xz -9 -T0 > .gpu/ort.tar.xz
tar -C "$(dirname "$(readlink -f "$(command -v node)")")" -cf - node | xz -9 -T0 > .gpu/node.tar.xz
# Dawn (ORT's WebGPU EP) loads the Vulkan loader at run time; GPU images made for CUDA often lack it
if command -v apt-get >/dev/null; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q libvulkan1 >/dev/null 2>&1 && dpkg-deb -x libvulkan1_*.deb x) &&
    mkdir -p .gpu/vulkan && cp -L "$tmp"/x/usr/lib/x86_64-linux-gnu/libvulkan.so.1 .gpu/vulkan/
  rm -rf "$tmp"
fi
du -sh .gpu/*
