#!/usr/bin/env bash
# Lockstep beside its peers in one run, with the anchors harness's own client (../shared/anchors):
#   cluster: a 3-member etcd 3.4 and a 3-node `lockstep node` cluster, alternating, for each
#            connection count (replicated PUT via leader and via a follower, linearizable reads);
#   single:  Harper 4.7 and `lockstep dev` on the same app shape (GET random id, PUT, POST).
# Only a same-run ratio means anything on a shared 2-core machine.
#
#   npm run build && bash bench/side-by-side.sh cluster [rounds=2] [conns="1 32 256"]
#   npm run build && bash bench/side-by-side.sh single
#
# Results: /tmp/side-by-side/<mode>-<timestamp>/, and a table on stdout (bench/side-by-side-table.mjs).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$(cd "$HERE/.." && pwd)"
ANCHORS="${ANCHORS:-$PROJECT/../shared/anchors}"
MODE="${1:-cluster}"
ROUNDS="${2:-2}"
CONNS_LIST="${3:-1 32 256}"
OUT="/tmp/side-by-side/$MODE-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
[ -f "$PROJECT/dist/src/cli/lockstep.js" ] || { echo "build first: npm run build" >&2; exit 2; }
[ -f "$ANCHORS/run-anchors.sh" ] || { echo "no anchors harness at $ANCHORS" >&2; exit 2; }

case "$MODE" in
  cluster)
    for round in $(seq 1 "$ROUNDS"); do
      for conns in $CONNS_LIST; do
        CONNS=$conns ONLY=etcd3 WITH_WRK=0 OUT="$OUT/r$round-c$conns-etcd" bash "$ANCHORS/run-anchors.sh" >"$OUT/r$round-c$conns-etcd.log" 2>&1
        CONNS=$conns PROJECT_DIR="$PROJECT" timeout 900 node "$ANCHORS/lib/lockstep-cluster.mjs" --out "$OUT/r$round-c$conns-lockstep" --mode load >"$OUT/r$round-c$conns-lockstep.log" 2>&1
      done
    done
    ;;
  single)
    for round in $(seq 1 "$ROUNDS"); do
      rm -rf /tmp/side-by-side/dev-data
      PROJECT_START="node $PROJECT/dist/src/cli/lockstep.js dev $PROJECT/examples/shop --port 9926 --data /tmp/side-by-side/dev-data" \
        PROJECT_URL=http://127.0.0.1:9926 PROJECT_PREFIX=/shop/Item ONLY="ceiling harper project" WITH_WRK=0 \
        OUT="$OUT/r$round" bash "$ANCHORS/run-anchors.sh" >"$OUT/r$round.log" 2>&1
    done
    ;;
  *) echo "mode is cluster or single" >&2; exit 2 ;;
esac
node "$HERE/side-by-side-table.mjs" "$MODE" "$OUT"
