#!/bin/bash
# How src/grokbook/data/tuning.csv's book rows were made: on a lent machine (16 CPU cores, one
# H200), its Python 3.12 lacking Dask, whose wheels travel in .whl/. Chapter 4's cells ran on CPU
# workers (CUDA_VISIBLE_DEVICES empty), chapter 5's on GPU workers; the transfer cells a first
# call left unfinished were resumed with TRANSFER_GPU=0 (the table's device column says which).
# Results land in $OUT/{transfer,cross}.csv; copy them into the table (grokbook.tuning.write).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src GROKBOOK_PROGRESS=0 PYTHONUNBUFFERED=1
LIMIT=${LIMIT:-470}
cp src/grokbook/data/tuning_transfer.csv $OUT/transfer.csv 2>/dev/null
cp src/grokbook/data/tuning_cross.csv $OUT/cross.csv 2>/dev/null
nproc; nvidia-smi --query-gpu=name --format=csv,noheader
python3 - <<'PY' || exit 1
import time, torch
from grokbook import tuning
tuning.BUDGETS = {k: 20 for k in tuning.BUDGETS}
for cell in (tuning.Cell("book","cross","add","GrokTransfer",1e-2,1.0,1000), tuning.Cell("book","transfer","add","scratch",1e-2,1.0,1000)):
    t = time.time(); row = tuning.run_cell(cell); print(row["device"], row["seconds"], time.time() - t)
PY
(CUDA_VISIBLE_DEVICES=${TRANSFER_GPU:-} timeout $LIMIT python3 -c "from grokbook import tuning; tuning.tune(('book',), ('transfer',), path='$OUT/transfer.csv', workers=${CPU_WORKERS:-10}, progress=False)" > $OUT/transfer.log 2>&1; echo transfer rc $?) &
(timeout $LIMIT python3 -c "from grokbook import tuning; tuning.tune(('book',), ('cross',), path='$OUT/cross.csv', workers=${GPU_WORKERS:-6}, progress=False)" > $OUT/cross.log 2>&1; echo cross rc $?) &
wait
tail -n 3 $OUT/transfer.log $OUT/cross.log
wc -l $OUT/*.csv
