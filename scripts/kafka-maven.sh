#!/usr/bin/env bash
# Copies the Apache Kafka broker's runtime classpath from Maven Central into
# testenv's cache (testenv/kafka/pom.xml pins the version) and prints the libs
# dir. ~45 MB, ~30 s the first time; cached after that.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/testenv/kafka/pom.xml")
if [ -n "${HARDEN_CACHE_DIR:-}" ]; then cache=$HARDEN_CACHE_DIR
elif [ "$(id -u)" -eq 0 ]; then cache=/var/cache/harden
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/harden; fi
dir="$cache/testenv/kafka-$version"
if [ -f "$dir/.complete" ]; then echo "$dir/libs"; exit 0; fi
echo "kafka-maven: fetching Apache Kafka $version from Maven Central into $dir (first time only)" >&2
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$root/testenv/kafka/pom.xml" "$tmp/pom.xml"
(cd "$tmp" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/libs" >&2)
chmod -R a+rX "$dir"
touch "$dir/.complete"
echo "$dir/libs"
