#!/bin/bash
# One budget-curve run: trains NAME epoch by epoch, probing coherence after each epoch.
# Environment: BUDGET_DIR (holds oscn-cmnist.h5 from `rensou data build` and coh.toml from
# this folder), RENSOU (the binary; default target/release/rensou). Each run trains on one
# thread; docs/budget.md lists the runs measured and their flags.
# usage: explore.sh NAME EPOCHS MODALITIES [train flags...]
set -u
R=$(realpath "${RENSOU:-target/release/rensou}")
name=$1; epochs=$2; mods=$3; shift 3
cd "${BUDGET_DIR:?set BUDGET_DIR to a directory holding oscn-cmnist.h5 and coh.toml}"
mkdir -p curves logs
for e in $(seq 1 $epochs); do
  if [ -f curves/$name-e$e.json ]; then continue; fi
  if [ -f $name/config.toml ]; then res=--resume; else res=; fi
  t0=$(date +%s.%N)
  RAYON_NUM_THREADS=1 $R train --data oscn-cmnist.h5 --modalities $mods --out $name --epochs $e --max-test-pairs 2000 --grid-every 0 $res "$@" > logs/$name.train.log 2>&1 || { echo "train $name e$e failed"; exit 1; }
  t1=$(date +%s.%N)
  RAYON_NUM_THREADS=1 $R probe --run $name --probe coherence --config coh.toml --classifiers "$BUDGET_DIR/classifiers" > logs/$name.probe.log 2>&1 || { echo "probe $name e$e failed"; exit 1; }
  t2=$(date +%s.%N)
  python3 - "$name" "$e" "$t0" "$t1" "$t2" <<'PY'
import json,sys
name,e,t0,t1,t2=sys.argv[1],int(sys.argv[2]),*map(float,sys.argv[3:])
s=json.load(open(f"{name}/probes/coherence/scalars.json"))
m=[json.loads(l) for l in open(f"{name}/metrics.jsonl")][-1]
out={"name":name,"epoch":e,"train_s":t1-t0,"probe_s":t2-t1,"test_loss":m["test_loss"],"scalars":s}
json.dump(out,open(f"curves/{name}-e{e}.json","w"))
print(name,e,round(t1-t0),round(t2-t1),{f"{k}[{kk}]":round(vv,3) for k,v in s["values"].items() for kk,vv in v.items()},flush=True)
PY
done
