#!/usr/bin/env bash
# The main job: start real servers on 127.0.0.1 (testenv), then run harden
# against them — lock the plugins, validate the policy, verify the live
# servers (unhardened: failures), plan, apply, verify again (all pass), apply
# once more (nothing to do). Everything is torn down at the end.
#
# Two stages, so a first run on a fresh machine shows harden at work at
# once: the servers that install in seconds (PostgreSQL, Kafka, the ingest
# API and nginx in front of it) go through before → apply → after with
# certificates from an enterprise root CA, while Vault and SeaweedFS build in
# the background (~30 min the first time, cached after that). When they are
# ready, Vault joins as the issuing CA (its intermediate signed by the same
# root, so no client's trust changes), the object store and HAProxy in front
# of it join, and every target goes through before → apply → after again,
# the first stage's certificates re-issued from Vault.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
state=${HARDEN_DEMO_DIR:-$(mktemp -d /tmp/harden-demo-XXXXXX)}
first=${HARDEN_DEMO_SERVICES-postgres,kafka,ingest,nginx}
later=${HARDEN_DEMO_LATER-vault,s3,haproxy}
mkdir -p "$state"
began=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m  (+%ss)\n' "$*" "$(( $(date +%s) - began ))"; }
run() { printf '$ %s\n' "$*"; "$@"; }
has() { [[ ",$1," == *",$2,"* ]]; }

builds=""
if [ -n "$later" ]; then
  need=()
  has "$later" vault && ! "$root/scripts/vault-build.sh" --check >/dev/null 2>&1 && need+=(vault-build.sh)
  has "$later" s3 && ! "$root/scripts/seaweedfs-build.sh" --check >/dev/null 2>&1 && need+=(seaweedfs-build.sh)
  # make demo builds only the first stage's plugins; the rest (make build:
  # quick when done) come first in the background, then Vault and SeaweedFS.
  step "Building the other plugins${need[*]:+ and ${need[*]}} in the background (first time only: ~20 min Vault, ~10 min SeaweedFS on 2 cores; log: $state/builds.log) — the demo goes on meanwhile"
  set -m # its own process group: the cleanup stops the whole build
  ( make -C "$root" --no-print-directory build >/dev/null && touch "$state/plugins.built" || exit 1
    for s in "${need[@]}"; do "$root/scripts/$s" >/dev/null || exit 1; done ) >"$state/builds.log" 2>&1 &
  builds=$!
  set +m
fi

step "Starting real servers on 127.0.0.1: $first${later:+ (then, once built: $later)} (state in $state)"
"$bin/testenv" up --services "$first" ${later:+--then "$later"} --state-dir "$state" >"$state/testenv.out" 2>"$state/testenv.log" &
tenv=$!
cleanup() {
  step "Stopping servers"
  [ -n "$builds" ] && kill -- -"$builds" 2>/dev/null
  "$bin/testenv" down --state-dir "$state" 2>/dev/null || kill "$tenv" 2>/dev/null || true
  wait "$tenv" 2>/dev/null || true
  [ -n "${HARDEN_DEMO_DIR:-}" ] || rm -rf "$state"
}
trap cleanup EXIT
# wait_for LINE SECONDS: until testenv prints LINE (progress every 10 s).
wait_for() {
  local line=$1 limit=$2 i
  for ((i = 1; i <= limit * 10; i++)); do
    grep -q "^$line" "$state/testenv.out" 2>/dev/null && return 0
    grep -q '^failed-full' "$state/testenv.out" 2>/dev/null && { grep '^failed-full' "$state/testenv.out"; tail -20 "$state/testenv.log"; exit 1; }
    if ! kill -0 "$tenv" 2>/dev/null; then echo "testenv failed:"; cat "$state/testenv.log"; exit 1; fi
    if [ -n "$builds" ] && ! kill -0 "$builds" 2>/dev/null; then
      wait "$builds" || { echo "the background build failed:"; tail -20 "$state/builds.log"; exit 1; }
      builds=""
    fi
    if [ $((i % 100)) -eq 0 ]; then
      local what
      what=$(tail -1 "$state/testenv.log" 2>/dev/null)
      [ -s "$state/builds.log" ] && what="build: $(tail -1 "$state/builds.log")"
      echo "  ... waiting ($((i / 10)) s): $what"
    fi
    sleep 0.1
  done
  echo "testenv did not print '$line' within $limit s"; cat "$state/testenv.log"; exit 1
}
wait_for 'ready:' 180
cat "$state/testenv.log"

export HARDEN_PLUGIN_PATH="$bin/plugins" HARDEN_PLUGIN_LOCK="$state/plugins.lock"
reports=${HARDEN_DEMO_REPORTS:-$root/demo-reports}
mkdir -p "$reports"
policy="$state/policy.yaml"

# verify_expect POLICY CODE [ARGS...]: harden verify [ARGS], which must exit with CODE.
verify_expect() {
  local p=$1 want=$2 code; shift 2
  set +e
  run "$bin/harden" verify -f "$p" "$@"
  code=$?
  set -e
  echo "harden verify exited with $code (0 all good, 2 failing checks, 3 target/plugin error)"
  [ "$code" -eq "$want" ] && return 0
  echo "unexpected exit code $code (wanted $want)"; exit 1
}

step "Stage 1 — the policy testenv generated (certificates: files from the enterprise root CA)"
cat "$policy"

step "Trust the plugins: pin them by sha256"
run "$bin/harden" plugins lock
run "$bin/harden" plugins list

step "Validate the policy against harden's and each plugin's schema"
run "$bin/harden" policy validate -f "$policy"

step "Verify the live servers BEFORE hardening (failures expected: exit code 2)"
verify_expect "$policy" 2

step "Plan: what apply would change (PostgreSQL: ALTER SYSTEM + pg_hba; Kafka: server.properties, stores, restart; nginx: the TLS front and a verified TLS hop to the ingest API)"
set +e
"$bin/harden" plan -f "$policy" --detailed-exitcode
code=$?
set -e
[ "$code" -eq 2 ] || { echo "expected pending changes (exit 2), got $code"; exit 1; }

step "Apply (backups, lockout guards, restarts and reloads verified; rollback on failure; --yes because this is not a terminal)"
run "$bin/harden" apply -f "$policy" --yes

step "Verify AFTER hardening: every check of every target must pass"
run "$bin/harden" verify -f "$policy"

if [ -z "$later" ]; then
  step "Apply again: nothing left to change"
  run "$bin/harden" apply -f "$policy" --yes
  "$bin/harden" plan -f "$policy" --detailed-exitcode >/dev/null
echo "harden plan --detailed-exitcode: exit 0, nothing pending"
  exit 0
fi

step "Stage 2 — waiting for $later (builds and start-up; progress every 10 s)"
wait_for 'ready-full:' 3600
until [ -f "$state/plugins.built" ]; do
  [ -n "$builds" ] && kill -0 "$builds" 2>/dev/null || { echo "the plugin build failed:"; tail -20 "$state/builds.log"; exit 1; }
  sleep 0.2
done
tail -n +1 "$state/testenv.log" | grep -v '^testenv: waiting' | tail -8
example="$root/examples/pipeline/policy.yaml"
policy="$state/pipeline.yaml"

step "The whole pipeline: the shipped example $example, with this machine's addresses and files put in (Vault is now the certificate source, its intermediate signed by the enterprise root; the object store and HAProxy joined)"
run "$bin/harden" policy validate -f "$example"
run "$bin/testenv" pipeline-policy --state-dir "$state" --example "$example" --out "$policy"
cat "$policy"
run "$bin/harden" plugins lock
run "$bin/harden" policy validate -f "$policy"

if has "$later" vault; then
  step "Vault BEFORE hardening: its listener offers what the profile does not, and it has no PKI, transit key or audit device yet (exit 2)"
  verify_expect "$policy" 2 --target vault
  step "Vault first: its listener hardened (restart + unseal), PKI with an intermediate whose CSR goes to the enterprise root, roles, transit KEK, audit device"
  run "$bin/harden" apply -f "$policy" --target vault --yes
  step "The enterprise root signs Vault's intermediate (here: testenv holds that root); the next apply sets the chain"
  run "$bin/testenv" sign-intermediate --state-dir "$state"
  run "$bin/harden" apply -f "$policy" --target vault --yes
  if has "$first" kafka; then
    step "An unprivileged probe identity for Kafka verify (Vault client role, CN harden-probe: no ACLs, no super user), so deny-by-default is observed, not read from configuration"
    run "$bin/testenv" probe-identity --state-dir "$state" --out "$state/kafka-probe.pem"
    sed -i "s|connection: {bootstrap:|connection: {probe_credentials_file: \"$state/kafka-probe.pem\", bootstrap:|" "$policy"
    grep -q probe_credentials_file "$policy" || { echo "could not add the probe identity to the policy"; exit 1; }
  fi
fi

step "Verify the whole pipeline BEFORE stage 2's apply: the object store and HAProxy fail; stage 1's targets still serve the enterprise root's certificates, but harden holds no Vault-issued one for them until apply issues it (verify issues nothing), so what needs it — Kafka's mTLS login, nginx's rendered file — is not verified (exit 3)"
verify_expect "$policy" 3
# Kept for the trend at the end (harden report --history).
"$bin/harden" verify -f "$policy" --format json -o "$reports/before.json" >/dev/null 2>&1 || [ -s "$reports/before.json" ]

step "Plan: stage 1's certificates re-issued from Vault (keys made here, CSRs to Vault), the object store, HAProxy's front and its TLS hop to SeaweedFS"
set +e
"$bin/harden" plan -f "$policy" --detailed-exitcode
code=$?
set -e
[ "$code" -eq 2 ] || { echo "expected pending changes (exit 2), got $code"; exit 1; }

step "Apply everything"
run "$bin/harden" apply -f "$policy" --yes

step "Verify AFTER hardening: every check of every target must pass"
run "$bin/harden" verify -f "$policy"

if has "$later" s3 && has "$later" vault; then
  step "Envelope encryption: a data key per object from Vault transit (KEK lake-kek), the body encrypted in chunks before it leaves this machine"
  envget() { "$bin/testenv" get --state-dir "$state" "services.$1"; }
  head -c 3000000 /dev/urandom > "$state/report.parquet"
  s3=(--endpoint "$(envget s3.https)" --bucket lake --ca-file "$state/ca.pem" --access-key-file "$(envget s3.access_key_file)" --secret-key-file "$(envget s3.secret_key_file)"
      --sse aws:kms --sse-kms-key "$(envget s3.kms_key_id)"
      --vault-addr "$(envget vault.address)" --vault-ca "$(envget vault.ca_file)" --vault-token-file "$(envget vault.token_file)" --transit-key lake-kek)
  run "$bin/harden" objectstore put "${s3[@]}" "$state/report.parquet" curated/report.parquet
  run "$bin/harden" objectstore get "${s3[@]}" curated/report.parquet "$state/report.out"
  cmp "$state/report.parquet" "$state/report.out"
  echo "round trip: identical"
fi

step "Apply again: nothing left to change"
run "$bin/harden" apply -f "$policy" --yes
"$bin/harden" plan -f "$policy" --detailed-exitcode >/dev/null
echo "harden plan --detailed-exitcode: exit 0, nothing pending"

if has "$later" vault; then
  step "Rotate: the client identities are issued and delivered (spark-etl for the Spark job, reporting for a JDBC/libpq consumer); no server certificate is due (30-day certificates, renew_before 10d)"
  run "$bin/harden" rotate -f "$policy" --yes
  for f in "$state/clients/spark-etl/events/spark-options.properties" "$state/clients/reporting/warehouse-pg/libpq.conf" "$state/clients/reporting/warehouse-pg/jdbc.url"; do
    [ -f "$f" ] || { echo "rotate did not deliver $f"; exit 1; }
    echo "--- $f"; cat "$f"
  done
  step "Inventory: every certificate and key the policy touches, served (fresh handshakes) and stored (Vault issuers, transit KEKs), with its tier and next rotation date"
  run "$bin/harden" inventory -f "$policy"
  echo "harden inventory exited with 0: nothing inside an alert tier, nothing unreadable"

  step "Rotate again: nothing is due, so nothing happens — safe in cron"
  run "$bin/harden" rotate -f "$policy" --yes

  pgt=$(sed -n 's/^  - name: \(.*-pg\)$/\1/p' "$policy" | head -1)
  if [ -n "$pgt" ]; then
    step "Rotate $pgt now (--force-renew): new key here, CSR to Vault, pushed by reload, then the verify gate — 8 fresh handshakes must serve the new serial and harden must still log in, or the old certificate is put back"
    run "$bin/harden" rotate -f "$policy" --target "$pgt" --force-renew --yes
    step "When the next unattended rotate run is due (2/3 of the shortest remaining lifetime or renew_before, with jitter)"
    run "$bin/harden" rotate -f "$policy" --schedule
  fi
fi

step "Reports: the compliance dashboard (HTML), SARIF for GitHub code scanning, JUnit for CI and JSON, from one verify run with the inventory"
run "$bin/harden" verify -f "$policy" --inventory --format html --format sarif --format junit --format json --output-dir "$reports"
echo "Open the dashboard: file://$reports/harden-verify.html"
step "The trend from before to after hardening: harden report merges runs of one policy (here a history of two)"
run "$bin/harden" report --history -i "$reports/before.json" -i "$reports/harden-verify.json" --format text --fail-on critical | sed -n "/^History:/,\$p"
echo "Upload to code scanning: $reports/harden-verify.sarif; CI test results: $reports/harden-verify.junit.xml"
step "Done in $(( $(date +%s) - began )) s"
