#!/usr/bin/env bash
# The supply chain, checked (CI runs this):
# - Rust: `cargo deny` (deny.toml) over the workspace and the fuzz crate: licences, banned and
#   duplicate crates, crates only from crates.io; then RustSec advisories (vulnerabilities, unsound
#   and unmaintained crates, yanked versions), every one a failure.
# - npm: every package of the lockfiles the tests install from (tests/*/package-lock.json) has a
#   sha512 integrity hash and comes from the npm registry (a lockfile without `resolved` fetches
#   from the configured registry; one with it must name registry.npmjs.org); then
#   `npm audit --omit=dev`.
# The advisory databases are online (RustSec's on GitHub, npm's audit endpoint). Where one cannot
# be reached, this says so in a line starting `NOT CHECKED:` and goes on with the rest: a machine
# without them cannot check advisories, and pretending otherwise would be worse. RustSec's
# database is looked for in cargo-deny's folder (~/.cargo/advisory-dbs), so a copy brought there
# by other means is used, and its date printed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deny --version >/dev/null 2>&1; then
  echo "supply-chain.sh: installing cargo-deny from crates.io" >&2
  cargo install cargo-deny --locked --version 0.20.2
fi
for manifest in Cargo.toml fuzz/Cargo.toml; do
  echo "== cargo deny ($manifest): licences, bans, sources"
  cargo deny --manifest-path "$manifest" check bans licenses sources
done

echo "== cargo deny: RustSec advisories"
db_dir="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if cargo deny fetch db >/tmp/taproom-deny-fetch.log 2>&1; then
  db=$(ls -d "$db_dir"/advisory-db-* | head -n 1)
  echo "RustSec database fetched: its newest advisory commit is of $(git -C "$db" log -1 --format=%cd)"
elif ls -d "$db_dir"/advisory-db-*/.git >/dev/null 2>&1; then
  db=$(ls -d "$db_dir"/advisory-db-* | head -n 1)
  echo "the RustSec database cannot be fetched here; using the copy in $db, of $(git -C "$db" log -1 --format=%cd)"
else
  echo "NOT CHECKED: RustSec advisories (the database cannot be fetched from this machine and there is no copy in $db_dir):"
  tail -n 3 /tmp/taproom-deny-fetch.log
  db=""
fi
if [ -n "${db-x}" ]; then
  for manifest in Cargo.toml fuzz/Cargo.toml; do
    cargo deny --offline --manifest-path "$manifest" check advisories
  done
fi

echo "== npm lockfiles: sources and integrity"
for lock in tests/*/package-lock.json; do
  node -e '
    const lock = require(require("path").resolve(process.argv[1]));
    const bad = Object.entries(lock.packages || {})
      .filter(([path, p]) => path !== "" && !p.link)
      .filter(([, p]) => (p.resolved !== undefined && !String(p.resolved).startsWith("https://registry.npmjs.org/"))
        || !String(p.integrity || "").startsWith("sha512-"));
    if (bad.length) {
      console.error(`${process.argv[1]}: not from the npm registry with a sha512 hash: ${bad.map(([n]) => n).join(", ")}`);
      process.exit(1);
    }
    console.log(`${process.argv[1]}: ${Object.keys(lock.packages).length - 1} packages, each with a sha512 hash, none from elsewhere than the registry`);
  ' "$lock"
done

echo "== npm audit (advisories)"
for dir in tests/*/; do
  [ -f "$dir/package-lock.json" ] || continue
  if output=$(cd "$dir" && npm audit --omit=dev --package-lock-only 2>&1); then
    echo "$dir: $(echo "$output" | tail -n 1)"
  elif echo "$output" | grep -q "audit endpoint returned an error\|ENOTFOUND\|EAI_AGAIN\|405"; then
    echo "NOT CHECKED: npm advisories for $dir (the registry here does not answer npm's audit endpoint: $(echo "$output" | grep -m1 -o '[0-9]\{3\} [A-Za-z ]*- POST[^ ]*' || echo unreachable))"
  else
    echo "$output"
    echo "supply-chain.sh: npm audit found advisories in $dir" >&2
    exit 1
  fi
done
echo "supply-chain.sh: done"
