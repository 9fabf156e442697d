#!/bin/bash
# Session 10, one device call: spread candidates on the tune half, GPU, 3 invocations side by side.
set -u; source .gpupanel/setup.sh; cat $OUT/gpu.txt; nproc
C=benchmarks/stability_configs; S="python3 benchmarks/stability.py .gpupanel/cases --prepared --device cuda --threads 1 --seeds 0 1 2"
setsid nohup $S --workers 6 --configs base= it1200=$C/it1200.toml --only kspace-mild oblique-vessels --out /tmp/A > /tmp/A.log 2>&1 < /dev/null &
setsid nohup $S --workers 6 --configs step=$C/step.toml it1200step=$C/it1200step.toml bs4=$C/bs4.toml --only kspace-mild oblique-vessels --out /tmp/B > /tmp/B.log 2>&1 < /dev/null &
setsid nohup $S --workers 4 --configs base= it1200=$C/it1200.toml --only fields-box hyper-gauss-las --out /tmp/C > /tmp/C.log 2>&1 < /dev/null &
LIMIT=${1:-480}
while [ $SECONDS -lt $LIMIT ] && pgrep -f stability.py >/dev/null; do sleep 5; done
echo "waited ${SECONDS}s; still running: $(pgrep -fc stability.py)"; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
for x in A B C; do mkdir -p $OUT/$x; cp /tmp/$x/stability.* /tmp/$x.log $OUT/$x/ 2>/dev/null
  (cd /tmp/$x && find . -name report.json -o -name losses.csv | tar czf $OUT/$x/runs.tgz -T - 2>/dev/null); tail -c 1500 /tmp/$x/stability.md; done
ls -la $OUT
