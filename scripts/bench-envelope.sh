#!/usr/bin/env bash
# Envelope encryption throughput: 1 GiB file -> file with `harden envelope
# encrypt` (local KEK) vs `age` 1.1.1 (Debian) on the same input and disk,
# alternating runs in the same session; wall time medians and peak RSS.
# Needs the Debian packages age and time (installed here when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
size_mb=${SIZE_MB:-1024}
command -v age >/dev/null && [ -x /usr/bin/time ] || { apt-get install -y -q age time >/dev/null; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/harden-bench-XXXXXX")
trap 'rm -rf "$dir"' EXIT
(cd "$root" && go build -o "$dir/harden" ./host/cmd/harden)
head -c $((size_mb << 20)) /dev/urandom > "$dir/in"
"$dir/harden" envelope kek-init "$dir/kek"
age-keygen -o "$dir/age.key" 2>/dev/null
recipient=$(age-keygen -y "$dir/age.key")
measure() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
h=() a=() hr=() ar=()
for i in $(seq 1 "$runs"); do
  sync; read -r t m < <(measure "$dir/harden" envelope encrypt --kek-file "$dir/kek" "$dir/in" "$dir/out.hrdn"); h+=("$t"); hr+=("$m")
  sync; read -r t m < <(measure age -r "$recipient" -o "$dir/out.age" "$dir/in"); a+=("$t"); ar+=("$m")
  rm -f "$dir/out.hrdn" "$dir/out.hrdn.record.json" "$dir/out.age"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
hm=$(median "${h[@]}"); am=$(median "${a[@]}")
echo "encrypt ${size_mb} MiB file->file, $runs alternating runs on $(df -P "$dir" | awk 'NR==2 {print $1}'):"
echo "  harden envelope: ${h[*]} s (median $hm s), peak RSS $(median "${hr[@]}") KiB"
echo "  age 1.1.1:       ${a[*]} s (median $am s), peak RSS $(median "${ar[@]}") KiB"
awk -v h="$hm" -v a="$am" 'BEGIN {printf "  harden is %.2fx faster than age (target >= 3x)\n", a/h}'
