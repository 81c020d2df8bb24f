#!/usr/bin/env bash
# Performance figures for the issue notes. Benchmarks, not timed tests: the
# machines are shared and noisy, so read the medians against the reference
# measured in the same run (BenchmarkReferenceExec: fork+exec of /bin/true).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-40}
go test -run '^$' -bench 'ReferenceExec|PluginLaunchMetadata|PluginsList' -benchtime "${count}x" ./host/e2e/ | tee /tmp/harden-bench.txt
echo
echo "== probe: full scan per openssl s_server configuration vs sslscan in the same run"
go test -run '^$' -bench 'ScanVsSSLScan' -benchtime "${SCAN_COUNT:-20}x" ./shared/probe/ | grep -E '^Benchmark' | awk '{printf "%-55s harden %7s ms  sslscan %7s ms  speedup %5sx\n", $1, $5, $9, $7}'
echo
echo "== postgres plugin: full verify of one hardened PostgreSQL 15 target (reference: sslscan --starttls-psql, same run)"
go test -run '^$' -bench 'BenchmarkVerify' -benchtime "${VERIFY_COUNT:-20}x" ./plugins/postgres/ | grep -E '^Benchmark'
echo
echo "== kafka plugin: full verify of a hardened single-broker cluster with mTLS (reference: sslscan on its SSL listener, same run); testenv broker start (reference: java -version)"
go test -run '^$' -bench 'BenchmarkVerify' -benchtime "${VERIFY_COUNT:-20}x" ./plugins/kafka/ | grep -E '^Benchmark'
go test -run '^$' -bench 'BenchmarkBrokerStart' -benchtime "${START_COUNT:-3}x" ./plugins/kafka/ | grep -E '^Benchmark'
echo
echo "== vaultpki plugin: verify of the hardened Vault target (reference: sslscan on Vault's listener), the demo's certificates (reference: one bare pki_int/sign)"
go test -run '^$' -bench 'BenchmarkVerify|BenchmarkIssueDemoCertificates' -benchtime "${VERIFY_COUNT:-20}x" ./plugins/vaultpki/ | grep -E '^Benchmark'
echo
echo "== envelope: 1 GiB file->file encrypt vs age 1.1.1 (same input and disk, alternating runs)"
scripts/bench-envelope.sh
echo
echo "== envelope: rewrap rate against the local SeaweedFS + Vault (reference: sequential HEADs, same run)"
go test -run '^$' -bench 'BenchmarkRewrap' -benchtime 1x ./plugins/objectstore/envelope/ | grep -E '^Benchmark'
echo
echo "== probe: harden scan over 1,000 endpoints (5 configurations, separate listener process)"
go test -run '^$' -bench 'ScanManyEndpoints' -benchtime 1x ./host/e2e/ | grep -E '^Benchmark'

awk '/ReferenceExec/ {for(i=1;i<=NF;i++) if($(i+1)=="median-ms") ref=$i}
     /PluginLaunchMetadata/ {for(i=1;i<=NF;i++) if($(i+1)=="median-ms") launch=$i}
     /PluginsList/ {for(i=1;i<=NF;i++) if($(i+1)=="median-ms") list=$i}
     /PluginLaunchMetadata/ {for(i=1;i<=NF;i++) if($(i+1)=="x-mini") xmini=$i}
     /PluginsList/ {for(i=1;i<=NF;i++) if($(i+1)=="x-list-of-mini") xlist=$i}
     END {printf "\nlaunch+handshake+metadata median %.1f ms (target <= 40 ms; %.2fx the mini plugin in the same run, %.0fx the exec reference %.2f ms)\n", launch, xmini, launch/ref, ref;
          printf "plugins list (5 plugins) median %.1f ms (target <= 150 ms; %.2fx listing the mini plugin alone, %.0fx the exec reference)\n", list, xlist, list/ref}' /tmp/harden-bench.txt
echo
echo "== plugin binary sizes, before the SDK module split (061193a) and now"
scripts/bench-sizes.sh
