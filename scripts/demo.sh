#!/usr/bin/env bash
# The demo: hpa-tier doing its job against local stand-ins, start to finish.
#
#   scripts/demo.sh            file store (no database needed)
#   scripts/demo.sh --mysql    records in MariaDB on 127.0.0.1:3306 (database hpa_tier_demo)
#
# It builds the tool, starts the Google (GA4 realtime + OAuth), Kubernetes,
# Feishu and Pushgateway stand-ins and moto (RDS/ElastiCache) on 127.0.0.1,
# then plays a
# traffic curve like the old tool's mock server (6 users, growing, pausing at
# 500, 600, 1000, 2000, 3000, 4000, then falling back) through repeated
# `hpa-tier check` runs, the way cron would. Along the way a scale-up is
# blocked by a too-small database until the "DBA" resizes it in moto, and the
# tier steps down again once the (shortened, 1-minute) scale-down window has
# passed. Every run pushes its gauges to the Pushgateway; twice the demo shows
# what a Prometheus scraping it would see. Then `simulate` replays a week of
# users through the same config, and the demo's own records from the store.
# Everything it starts is stopped when it ends; nothing leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib/services.sh

use_mysql=false
[[ "${1:-}" == "--mysql" ]] && use_mysql=true

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '\033[36m# %s\033[0m\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hpa-tier-demo.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

bold "== building hpa-tier and the stand-ins"
cargo build --quiet -p hpa-tier -p hpa-tier-standins
BIN=$ROOT/target/debug/hpa-tier
STANDINS=$ROOT/target/debug/hpa-tier-standins

ensure_moto_venv
start_moto   # HPA_TIER_TEST_MOTO_URL; its own EXIT trap is replaced below
MOTO=$HPA_TIER_TEST_MOTO_URL
PIDS+=("$MOTO_PID")
trap cleanup EXIT INT TERM

# Starts a stand-in (in this shell, so cleanup knows its pid) and waits for
# its "listening on URL" line; sets URL.
standin() {
  local name=$1; shift
  "$STANDINS" "$name" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=("$!")
  for _ in $(seq 1 100); do
    if grep -q "listening on" "$WORK/$name.out" 2>/dev/null; then
      URL=$(grep -m1 "listening on" "$WORK/$name.out" | awk '{print $NF}')
      return
    fi
    sleep 0.1
  done
  echo "the $name stand-in did not start:" >&2; cat "$WORK/$name.err" >&2; return 1
}

bold "== starting the stand-ins"
standin google --users 6 --key-file-out "$WORK/ga-key.json"; GOOGLE=$URL
standin kube --kubeconfig-out "$WORK/kubeconfig" --context demo; KUBE=$URL
standin feishu --token demo-token --secret demo-signing-secret; FEISHU=$URL
standin pushgateway --port 0; PUSHGATEWAY=$URL
echo "Google $GOOGLE   Kubernetes $KUBE   Feishu $FEISHU   Pushgateway $PUSHGATEWAY   AWS (moto) $MOTO"

say "an Aurora cluster whose reader is too small for tier 1000, and a Redis replication group"
"$VENV/bin/python" - "$MOTO" <<'PY'
import sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-2",
          aws_access_key_id="demo", aws_secret_access_key="demo")
rds = boto3.client("rds", **kw)
rds.create_db_cluster(DBClusterIdentifier="prod-aurora", Engine="aurora-mysql",
                      MasterUsername="admin", MasterUserPassword="demo-password-1")
for ident, cls in [("prod-aurora-1", "db.r5.8xlarge"), ("prod-aurora-2", "db.r7g.large")]:
    rds.create_db_instance(DBInstanceIdentifier=ident, DBInstanceClass=cls,
                           Engine="aurora-mysql", DBClusterIdentifier="prod-aurora")
boto3.client("elasticache", **kw).create_replication_group(
    ReplicationGroupId="prod-redis", ReplicationGroupDescription="demo",
    Engine="redis", CacheNodeType="cache.c7gn.xlarge", NumCacheClusters=2)
PY

if $use_mysql; then
  ensure_mariadb
  mysql --protocol=tcp -h127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS hpa_tier_demo"
  STORE=$'mysql_host: "127.0.0.1"\nmysql_port: 3306\nmysql_user: root\nmysql_pwd: ""\nmysql_db: hpa_tier_demo'
else
  STORE='mysql_host: ""'
fi

# A launch six hours from now, in the audience's zone: too big for today's
# database, so the first check warns about it ahead of time.
LAUNCH=$(TZ=Asia/Shanghai date -d '+6 hours' '+%Y-%m-%dT%H:%M')

cat >"$WORK/config.yaml" <<YAML
# The demo's config: config/example.yaml pointed at the stand-ins.
property_id: "properties/123456789"
key_file_location: "$WORK/ga-key.json"
ga_api_url: "$GOOGLE"
users: { source: ga, ga_minutes: 30 }
aws_region: "us-east-2"
aws_access_key_id: "demo"
aws_secret_access_key: "demo"
aws_endpoint_url: "$MOTO"
rds_cluster_name: "prod-aurora"
redis_oss_name: "prod-redis"
eks_cluster_name: "prod"
cluster_context: "demo"
kube_file_path: "$WORK/kubeconfig"
feishu_webhook_url: "$FEISHU/open-apis/bot/v2/hook/demo-token"
feishu_secret: "demo-signing-secret"
metrics_pushgateway: "$PUSHGATEWAY"
hpa_name: "ingressgateway-hpa"
hpa_namespace: "istio-system"
hpa_service_name: "istio-ingress"
services:
  istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }
  gateway:       { hpa: gateway, namespace: prod }
  web:           { hpa: web, namespace: prod }
  hermes:        { hpa: hermes, namespace: prod }
  passport:      { hpa: passport, namespace: prod }
  project:       { hpa: project, namespace: prod }
# Shortened so the demo can show a scale-down (production: 30).
scale_down_minutes: 1
check_time: 5
timeout_seconds: 5
state_file: "$WORK/runs.jsonl"
$STORE
# Known peaks: floors of the decision, warned about a day ahead when the
# database or cache is too small for them. The zone is also that of local
# times in simulate's traces and output.
timezone: "Asia/Shanghai"
preflight_hours: 24
schedules:
  - { name: launch, at: "$LAUNCH", duration: 2h, capacity: 3000 }
YAML
export HPA_TIER_CONFIG=$WORK/config.yaml

FEISHU_SEEN=0
# What the team saw on Feishu since the last call.
feishu_news() {
  local total
  total=$(wc -l <"$WORK/feishu.out")
  if (( total - 1 > FEISHU_SEEN )); then
    tail -n +$((FEISHU_SEEN + 2)) "$WORK/feishu.out" | sed 's/^/  📣 /'
    FEISHU_SEEN=$((total - 1))
  fi
}

# What a Prometheus scraping the Pushgateway sees now: a few of the gauges
# the last run pushed, and its outcome.
scrape() {
  say "what Prometheus scrapes from the Pushgateway ($PUSHGATEWAY/metrics), in part:"
  python3 - "$PUSHGATEWAY" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=5).read().decode()
shown = ("hpa_tier_users{", "hpa_tier_needed_capacity{", "hpa_tier_capacity{",
         "hpa_tier_allowed_capacity{", "hpa_tier_last_success_timestamp_seconds{")
for line in text.splitlines():
    if line.startswith(shown) or (line.startswith("hpa_tier_run_outcome{") and line.endswith(" 1")):
        print("  " + line)
PY
}

online() {
  python3 -c 'import sys,json,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1]+"/standin/users", data=json.dumps({"users": int(sys.argv[2])}).encode(), headers={"content-type":"application/json"}), timeout=5)' "$GOOGLE" "$1"
}

# One cron tick at $1 users online.
tick() {
  online "$1"
  bold "-- $1 users online: hpa-tier check"
  "$BIN" check || echo "(exit $?)"
  feishu_news
}

resize() {
  say "the DBA resizes $1 to $2 (aws rds modify-db-instance ... --apply-immediately)"
  "$VENV/bin/python" - "$MOTO" "$1" "$2" <<'PY'
import sys, boto3
boto3.client("rds", endpoint_url=sys.argv[1], region_name="us-east-2",
             aws_access_key_id="demo", aws_secret_access_key="demo").modify_db_instance(
    DBInstanceIdentifier=sys.argv[2], DBInstanceClass=sys.argv[3], ApplyImmediately=True)
PY
}

bold "== the tier table (hpa-tier tiers)"
"$BIN" tiers

bold "== the scheduled windows (hpa-tier schedules: the config alone, no network)"
"$BIN" schedules --days 2

bold "== traffic grows"
say "the first check also looks a day ahead: the launch needs tier 3000, which the reader cannot serve"
for users in 6 150 300 500 600; do tick "$users"; done
say "1000 users need tier 1000, whose database class the reader does not have"
tick 1000
scrape
resize prod-aurora-2 db.r5.8xlarge
tick 1000
for users in 1800 2600; do tick "$users"; done
say "tier 4000 needs db.r5.12xlarge on every Aurora member"
tick 3800
resize prod-aurora-1 db.r5.12xlarge
resize prod-aurora-2 db.r5.12xlarge
tick 3800

bold "== traffic falls back"
tick 300
say "demand fits tier 600, but every run in the scale-down window must agree first"
bold "-- hpa-tier status"
"$BIN" status || true
say "waiting for the 1-minute window to pass…"
# (HPA_TIER_DEMO_WAIT shortens the wait for a quick look; the scale-down then
# stays held, as it should.)
sleep "${HPA_TIER_DEMO_WAIT:-62}"
tick 280

bold "== an operator pre-scales for tonight's event"
say "hpa-tier upgrade 2000 --hold 2h: checks the prerequisites, moves every HPA, and keeps checks from stepping down"
"$BIN" upgrade 2000 --hold 2h || echo "(exit $?)"
feishu_news
tick 250

bold "== the evening peak goes into the config"
say "a window of tier 4000 starting in 5 minutes, raised 10 minutes ahead (its lead): at once"
EVENING=$(TZ=Asia/Shanghai date -d '+5 minutes' '+%Y-%m-%dT%H:%M')
cat >>"$WORK/config.yaml" <<YAML
  - { name: evening-peak, at: "$EVENING", duration: 3h, capacity: 4000, lead: 10m }
YAML
tick 250

bold "== hpa-tier status"
"$BIN" status || true
scrape

bold "== hpa-tier simulate: the same policy, offline"
say "a week of an audience in China (examples/traces/week.csv) through this config's decision, with the production 30-minute scale-down window: a check every 5 minutes, pods serving 2 minutes after a rise"
SVG=${HPA_TIER_DEMO_SVG:-$WORK/simulate-week.svg}
"$BIN" simulate "$ROOT/examples/traces/week.csv" --set scale_down_minutes=30 --svg "$SVG"
say "the chart (users, the serving tier, each change, the under-provisioned minutes in red): $SVG"
say "the same week with 10% headroom: fewer under-provisioned minutes, more replica-hours"
"$BIN" simulate "$ROOT/examples/traces/week.csv" --set scale_down_minutes=30 --set headroom_percent=10 | tail -n 11
say "and this demo's own runs, read back from the store (read-only): they were seconds apart, so a check every second, pods ready at once"
"$BIN" simulate --from-store --since 1h --tick 1s --ready 0s

if command -v kubectl >/dev/null; then
  bold "== kubectl, a real client, sees the same HPAs"
  kubectl --kubeconfig "$WORK/kubeconfig" get hpa -A
fi
bold "== demo done: every process it started is stopped on exit"
