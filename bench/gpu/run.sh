#!/usr/bin/env bash
# On a GPU machine (after bench/gpu/pack.sh here): what the machine has, which ONNX Runtime
# execution providers load, then `step-vit` on the best one against PyTorch CUDA, and on the CPU
# against PyTorch CPU; `run.sh NAME [options]` runs one benchmark instead. Everything is logged
# to $OUT/log (or /tmp/gpu-bench/log). GPU_BENCH_ARGS adds options to each step-vit run (e.g.
# `--layers 1` to check the script itself); GPU_BENCH_BUDGET_S (default 520) is the time the CPU
# runs at the end may fill.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-bench}; mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
T0=$SECONDS
say() { echo "=== [$((SECONDS - T0)) s] $*"; }

say machine
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
nproc; uname -r
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
python3 -c "import onnxruntime as o; print('python onnxruntime', o.__version__, o.get_available_providers())" 2>&1 | tail -1
echo "node on the machine: $(command -v node || echo none)"
say libraries
timeout 60 find / -xdev \( -name 'libonnxruntime_providers_cuda.so' -o -name 'libcudnn.so.9' -o -name 'libcublas.so.1[0-9]' \
  -o -name 'libcudart.so.1[0-9]' -o -name 'libvulkan.so.1' -o -name '*icd*.json' -o -name 'libGLX_nvidia.so.0' \) 2>/dev/null | sort

say unpack
mkdir -p node_modules /tmp/gpu-node
python3 -m tarfile -e .gpu/ort.tar.xz node_modules && python3 -m tarfile -e .gpu/node.tar.xz /tmp/gpu-node || exit 1
NODE=/tmp/gpu-node/node; $NODE --version
cp .gpu/bench.mjs bench/gpu-bundle.mjs
ORT_BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
CUDA_EP=$(timeout 30 find / -xdev -name libonnxruntime_providers_cuda.so 2>/dev/null | head -1)
if [ -n "$CUDA_EP" ]; then
  cp "$(dirname "$CUDA_EP")"/libonnxruntime_providers_{cuda,shared}.so "$ORT_BIN"/ && echo "CUDA EP from $CUDA_EP"
fi

# with arguments: only that benchmark (e.g. `run.sh block`), with the machine's default providers
if [ $# -gt 0 ]; then
  say "$*"
  exec $NODE bench/gpu-bundle.mjs "$@"
fi

# WebGPU: Dawn needs a Vulkan loader and NVIDIA's Vulkan driver (an ICD); bring the loader, and
# name the driver's library in an ICD file when the image has the library but no ICD file
if ! ldconfig -p | grep -q libvulkan.so.1 && [ -f .gpu/vulkan/libvulkan.so.1 ]; then
  export LD_LIBRARY_PATH=$PWD/.gpu/vulkan${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1 && ldconfig -p | grep -q libGLX_nvidia.so.0; then
  echo '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.0"}}' > /tmp/nvidia_icd.json
  export VK_ICD_FILENAMES=/tmp/nvidia_icd.json
fi

# an EP counts when the matmul benchmark runs on it (ORT refuses a session whose EP fails to load)
EPS=""
for ep in cuda webgpu; do
  say "matmul on $ep"
  if TENSLORA_EP=$ep BENCH_NO_TORCH=1 timeout 90 $NODE bench/gpu-bundle.mjs matmul; then EPS="$EPS $ep"; fi
done
say "providers that ran: ${EPS:-none}"

for ep in $EPS; do
  say "step-vit on $ep vs PyTorch CUDA"
  TENSLORA_EP=$ep timeout 240 $NODE bench/gpu-bundle.mjs step-vit --torch-device cuda --warmup 3 --runs 10 ${GPU_BENCH_ARGS:-}
done
# the CPU runs only in the time left of GPU_BENCH_BUDGET_S
left() { echo $((${GPU_BENCH_BUDGET_S:-520} - (SECONDS - T0))); }
say "step-vit: PyTorch CUDA against ours on the CPU ($(nproc) threads)"
[ "$(left)" -gt 60 ] && timeout $(($(left) - 20)) $NODE bench/gpu-bundle.mjs step-vit --torch-device cuda --warmup 2 --runs 3 ${GPU_BENCH_ARGS:-}
say "step-vit on the CPU vs PyTorch CPU ($(nproc) threads)"
[ "$(left)" -gt 60 ] && timeout $(($(left) - 10)) $NODE bench/gpu-bundle.mjs step-vit --warmup 2 --runs 3 ${GPU_BENCH_ARGS:-}
say done
