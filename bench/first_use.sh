#!/usr/bin/env bash
# First-use cost of the wgpu build, by cargo feature set: kernels compiled and the time of the
# first, second and tenth training step of the paper's MLP MMVAE, each measured by
# `rensou doctor --steps 10` in a fresh process. By default at K = 2 and batch 32: on lavapipe
# the paper's K = 20, batch 128 first step had not finished after 6 minutes (autotune timing
# matmul candidates of [5120 x 3072] on the CPU); on a GPU, `K=20 BATCH=128`.
#
#   bench/first_use.sh [FEATURE_SET ...]   default: wgpu-bare wgpu-bare,gpu-autotune
#                                          wgpu-bare,gpu-fusion wgpu (fusion + autotune)
#
# Per feature set: one build (kept as .gpu/first-use/rensou-<set>; delete it to rebuild), then
# two runs:
#   cold  - a new, empty cubecl cache directory (what a user's very first run costs);
#   warm  - the same cache directory again (autotune results reused; wgpu's WGSL kernels are
#           compiled again in every process: cubecl has no WGSL compilation cache).
# Output: .gpu/first-use/<set>-<cold|warm>.json (doctor's report) and a table on stdout.
# Runs on whatever wgpu adapter the machine has (lavapipe without a GPU). Environment: STEPS
# (10), K (2), BATCH (32), STALL_AFTER (600 s without a kernel compiled).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu/first-use
mkdir -p "$OUT"
SETS=("$@")
if [[ ${#SETS[@]} == 0 ]]; then
  SETS=(wgpu-bare wgpu-bare,gpu-autotune wgpu-bare,gpu-fusion wgpu)
fi
for set in "${SETS[@]}"; do
  bin="$OUT/rensou-${set//,/+}"
  if [[ ! -x $bin ]]; then
    echo "building --features $set" >&2
    cargo build --release -p rensou --features "$set" >&2
    cp "${CARGO_TARGET_DIR:-target}/release/rensou" "$bin"
  fi
  cache=$(mktemp -d)
  for run in cold warm; do
    echo "$set: $run run" >&2
    rm -f "$OUT/${set//,/+}-$run.json"
    RENSOU_CACHE_DIR="$cache" "$bin" doctor --steps "${STEPS:-10}" --k "${K:-2}" \
      --batch "${BATCH:-32}" --stall-after "${STALL_AFTER:-600}" \
      --json "$OUT/${set//,/+}-$run.json" >"$OUT/${set//,/+}-$run.log" 2>&1 \
      || { echo "doctor failed: $OUT/${set//,/+}-$run.log" >&2; tail -5 "$OUT/${set//,/+}-$run.log" >&2; }
  done
  rm -rf "$cache"
done
python3 - "$OUT" "${SETS[@]}" <<'EOF'
import json, os, sys
out, sets = sys.argv[1], sys.argv[2:]
print(f"{'features':<26} {'run':<5} {'kernels':>7} {'step 1 s':>9} {'step 2 s':>9} {'step 10 s':>9} {'to step 1 s':>11}")
for s in sets:
    for run in ("cold", "warm"):
        p = os.path.join(out, f"{s.replace(',', '+')}-{run}.json")
        if not os.path.exists(p):
            print(f"{s:<26} {run:<5} (no report)")
            continue
        d = json.load(open(p))
        st = {x["stage"]: x for x in d["stages"]}
        kernels = sum(x["kernels_compiled"] or 0 for x in d["stages"])
        def sec(k):
            return f"{st[k]['seconds']:.2f}" if k in st else "-"
        last = max((int(k.split('-')[1]) for k in st if k.startswith("step-")), default=0)
        # Everything from process start to the end of the first training step.
        to_first = sum(x["seconds"] for x in d["stages"]
                       if not x["stage"].startswith("step-") or x["stage"] == "step-1")
        print(f"{s:<26} {run:<5} {kernels:>7} {sec('step-1'):>9} {sec('step-2'):>9} "
              f"{sec(f'step-{last}'):>9} {to_first:>11.2f}" + ("" if d["ok"] else "  FAILED"))
EOF
