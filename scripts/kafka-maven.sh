#!/usr/bin/env bash
# Copies the Apache Kafka broker's runtime classpath from Maven Central into
# testenv's cache (testenv/kafka/pom.xml pins the version) and prints the libs
# dir. ~45 MB, ~30 s the first time; cached after that.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/testenv/kafka/pom.xml")
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
cache=$(harden_cache_dir)
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
