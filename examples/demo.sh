#!/usr/bin/env bash
# Strata's main job on the bundled example, end to end on this machine:
#   1. validate examples/americas and show one machine's effective config with its sources;
#   2. put the example in a git repo, start a real agent (SSH on a loopback port) as
#      lab1.example.com, turn it into a one-machine cluster;
#   3. plan (exit 2: changes), apply the repo at `main` from git objects, plan again
#      (exit 0: nothing to do), and show what the agent now runs and its change log.
# Everything lives in a temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
strata="$PWD/target/release/strata"
work=$(mktemp -d)
agent=""
cleanup() {
    if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "strata validate examples/americas"
"$strata" validate examples/americas

step "strata show --machine lab3.example.com dns ldap-queries (Paris overrides both)"
"$strata" show --repo examples/americas --machine lab3.example.com dns
"$strata" show --repo examples/americas --machine lab3.example.com ldap-queries | tail -n +2

step "the example as a git repo"
cp -r examples/americas "$work/repo"
git -C "$work/repo" init -q -b main
git -C "$work/repo" add .
git -C "$work/repo" -c user.name="Demo Operator" -c user.email=ops@example.com \
    commit -q -m "americas: the seed's example cluster"
git -C "$work/repo" log --oneline

step "strata agent --state-dir … --machine lab1.example.com (background)"
"$strata" agent --state-dir "$work/state" --listen 127.0.0.1:0 --machine lab1.example.com \
    2> "$work/agent.log" &
agent=$!
for _ in $(seq 100); do [ -s "$work/state/address" ] && break; sleep 0.1; done
[ -s "$work/state/address" ] || { cat "$work/agent.log"; exit 1; }
echo "listening on $(cat "$work/state/address")"

step "strata cluster create americas"
"$strata" cluster create americas --state-dir "$work/state"

step "strata plan --ref main (exit 2: changes to make)"
set +e
"$strata" plan --ref main --repo "$work/repo" --state-dir "$work/state" | tail -n 25
code=${PIPESTATUS[0]}
set -e
echo "exit $code"

step "strata apply --ref main"
"$strata" apply --ref main --repo "$work/repo" --state-dir "$work/state" --yes | tail -n 15

step "strata plan --ref main again (exit 0: nothing to do)"
"$strata" plan --ref main --repo "$work/repo" --state-dir "$work/state"
echo "exit $?"

step "what lab1 now runs: state-dir/running/"
ls "$work/state/running"
cat "$work/state/running/dns.kdl"

step "strata log"
"$strata" log --state-dir "$work/state"
