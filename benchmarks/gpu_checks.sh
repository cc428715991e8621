#!/usr/bin/env bash
# Every check that needs a GPU, in one go, for a machine that is lent for minutes (or a cluster job).
#
#   OUT=/some/folder NSD_DATA=/path/to/shared/data bash benchmarks/gpu_checks.sh [BUDGET_S]
#
# Phases, in order of importance, each under its own time limit so that a slow one cannot eat the
# ones after it, and none stops the script (BUDGET_S, default 540, is shared out below):
#   0. set-up: wheels from .whl/ (tools/offline_wheels.sh) installed with --target when nsd's
#      imports are missing; versions, nvidia-smi; an import check that names what is missing;
#   1. the test suite with the `cuda` cells (tools/run_tests.py --flags cuda);
#   2. a2a training speed on the GPU: windows/s, step time, peak memory, fp32 and bf16, B = 16/64/256,
#      and the synthesizer alone (benchmarks/a2a_speed.py --device cuda --write: into benchmarks/results/ there, and $OUT);
#   2b. e2a training and evaluation speed per decoder x grid x causality, fp32 and bf16, B = 16/256
#      (benchmarks/e2a_speed.py --device cuda --write);
#   3. stage 1 at the reference's size: `nsd train a2a` on SIM01 with 128 × 322 windows per epoch
#      (HB02's training trials, reference-framework §1.7) for up to 60 epochs; the log's per-epoch
#      seconds say how long the 60 epochs take (measured epochs only); batch NSD_STAGE1_BATCH (256:
#      16 000 windows/s is out of reach of any eager step at the reference's 16);
#   4. a2a on real speech (benchmarks/a2a_real_speech.py --device cuda) when NSD_DATA holds the
#      shared recordings, for the steps that fit the time left.
# Everything goes under $OUT (default gpu_out/): gpu_checks.log, cuda_tests.txt, a2a_speed.md,
# e2a_speed.md, stage1_reference_size.json and .csv, a2a_real_speech.md.
# NSD_CHECK_DEVICE=cpu runs the same phases on the CPU without the cuda cells (a dry run of this script).
set -u
BUDGET=${1:-540}
DEV=${NSD_CHECK_DEVICE:-cuda}
FLAGS=$([ "$DEV" = cpu ] || echo "--flags cuda")
OUT=${OUT:-$PWD/gpu_out}; mkdir -p "$OUT"
T0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
log() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - T0 ))s] $*"; }
exec > >(tee -a "$OUT/gpu_checks.log") 2>&1
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}

# ---- 0. set-up
imports='import nsd.training, nsd.metrics, nsd.contamination, parselmouth, pystoi, plotly, nbdev, execnb, fastcore'
if ! "$PY" -c "$imports" 2>/dev/null && [ -d .whl ]; then
  log "installing $(ls .whl/*.whl | wc -l) carried wheels into /tmp/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/site/bin:$PATH
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PY" - <<'EOF'
import importlib, platform, sys
print('python', sys.version.split()[0], platform.machine())
for m in ('torch', 'numpy', 'scipy', 'h5py', 'parselmouth', 'pystoi', 'plotly', 'nbdev', 'execnb', 'fastcore', 'nsd'):
    try: mod = importlib.import_module(m); print(f'  {m} {getattr(mod, "__version__", "?")}')
    except Exception as e: print(f'  {m} MISSING: {e}')
import torch
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv

# ---- 1. the tests, cuda cells included
lim=$(( $(left) * 33 / 100 ))
log "phase 1: tests with --flags cuda (limit $lim s)"
timeout "$lim" "$PY" tools/run_tests.py $FLAGS --jobs 8 --timeout 400 2>&1 | tee "$OUT/cuda_tests.txt"

# ---- 2. a2a speed on the GPU
lim=$(( $(left) * 25 / 100 ))
log "phase 2: a2a speed (limit $lim s)"
WRITE=$([ "$DEV" = cpu ] || echo --write)   # a dry run leaves benchmarks/results/ alone
timeout "$lim" "$PY" benchmarks/a2a_speed.py --device "$DEV" --batch 16 64 256 --repeats 5 --threads 8 $WRITE \
  --label "$DEV: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' 2>/dev/null)" \
  | tee "$OUT/a2a_speed.md"

# ---- 2b. e2a speed on the GPU (issue 15: the 6 300 windows/s target, 50x the original's 144 on an H100)
lim=$(( $(left) * 30 / 100 ))
log "phase 2b: e2a speed (limit $lim s)"
timeout "$lim" "$PY" benchmarks/e2a_speed.py --device "$DEV" --batch 16 256 --repeats 5 --threads 8 $WRITE \
  --label "$DEV: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' 2>/dev/null)" \
  | tee "$OUT/e2a_speed.md"

# ---- 3. stage 1 at the reference's size
lim=$(( $(left) * 55 / 100 ))
STAGE1_BATCH=${NSD_STAGE1_BATCH:-256}
log "phase 3: nsd train a2a, SIM01, 60 x 41216 windows, batch $STAGE1_BATCH (limit $lim s)"
rm -rf /tmp/nsd_stage1
start=$(date +%s.%N)
timeout "$lim" "$PY" -c 'import sys; from nsd.cli import main; sys.exit(main())' train a2a example_data/SIM01.h5 --out /tmp/nsd_stage1 --no-resume \
  --set train.device="$DEV" --set train.batch_size="$STAGE1_BATCH" --set train.epochs=60 --set train.windows_per_epoch=41216 \
  --set train.eval_every=60 --set train.progress=false
rc=$?; end=$(date +%s.%N)
cp /tmp/nsd_stage1/log.csv "$OUT/stage1_reference_size.csv" 2>/dev/null
"$PY" - "$start" "$end" "$rc" "$STAGE1_BATCH" <<'EOF' | tee "$OUT/stage1_reference_size.json"
import json, sys
from nsd.training import read_log
start, end, rc, batch = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = read_log('/tmp/nsd_stage1')
done = len(rows); secs = [r['seconds'] for r in rows]
print(json.dumps({'exit_status': rc, 'finished': rc == 0 and done == 60, 'epochs_done': done,
                  'windows_per_epoch': 41216, 'batch_size': batch, 'wall_s_including_start_and_eval': round(end - start, 1),
                  'train_s_sum_of_epochs': round(sum(secs), 1),
                  'median_epoch_s': sorted(secs)[done // 2] if done else None,
                  'windows_per_s_median_epoch': sorted(r['windows_per_s'] for r in rows)[done // 2] if done else None,
                  'final_test_pcc': rows[-1].get('test_pcc') if done else None}, indent=1))
EOF

# ---- 4. real speech
if [ -d "${NSD_DATA:-/nonexistent}/nsd_demo_pairs" ]; then
  lim=$(( $(left) - 15 ))
  log "phase 4: a2a on real speech (limit $lim s)"
  if [ "$lim" -gt 60 ]; then
    timeout "$lim" "$PY" benchmarks/a2a_real_speech.py --device "$DEV" --threads 8 --data "$NSD_DATA" \
      --steps "${NSD_REAL_STEPS:-6000}" --epochs 30 --results "$OUT/a2a_real_speech.md"
  else log "phase 4 skipped: only $lim s left"; fi
else
  log "phase 4 skipped: NSD_DATA does not hold nsd_demo_pairs/ (set NSD_DATA=../shared/data or carry a copy)"
fi
log "done"
