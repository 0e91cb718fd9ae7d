#!/usr/bin/env bash
# Everything that needs a GPU, as one script (H200, under 10 minutes): the digits models the book loads
# (experiments/digits_models.py), then training and sampling throughput against the targets of benchmarks/README.md.
#   bash benchmarks/gpu_suite.sh OUTDIR
# Each part has its own time limit so that one slow part cannot starve the rest. OUTDIR receives at most 8 files:
# gpu.txt, all.log, digits_models.json, models.tar, three benchmark JSON files and RESULTS.md lines.
set -uo pipefail
OUT=${1:-benchmarks/results/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
LOG="$OUT/all.log"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } | tee "$OUT/gpu.txt"

part() { local name=$1 limit=$2; shift 2; echo "=== $name (limit ${limit}s)" | tee -a "$LOG"; local t0=$(date +%s)
         timeout "$limit" "$@" >> "$LOG" 2>&1; local rc=$?
         echo "=== $name: rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$LOG"; grep -E "ratio|images_per_s|FD_digits|bits/dim|trained|Error" "$LOG" | tail -8; }

part digits_models 270 $PY experiments/digits_models.py --device cuda --models-dir /tmp/digits_models \
    --cache-dir /tmp/digits_runs --out "$OUT/digits_models.json"
[ -d /tmp/digits_models ] && tar -C /tmp -cf "$OUT/models.tar" digits_models
part train_bf16_eager 50 $PY benchmarks/train_throughput.py --device cuda --batch 128 --bf16 --channels-last \
    --warmup 5 --steps 20 --out "$OUT/train_bf16_eager.json" --results-md "$OUT/RESULTS.md"
part sample_bf16_compile 90 $PY benchmarks/sample_throughput.py --device cuda --batch 256 --bf16 --compile \
    --channels-last --full --out "$OUT/sample_bf16_compile.json" --results-md "$OUT/RESULTS.md"
part train_bf16_compile 140 $PY benchmarks/train_throughput.py --device cuda --batch 128 --bf16 --compile \
    --channels-last --warmup 15 --steps 40 --out "$OUT/train_bf16_compile.json" --results-md "$OUT/RESULTS.md"
ls -la "$OUT"
