#!/usr/bin/env bash
# Strata's main job on the bundled example, end to end on this machine:
#   1. validate examples/americas and show one machine's effective config with its sources;
#   2. start six real agents on loopback (lab1…lab6.example.com on 127.0.0.11…16, SSH on
#      port 2222 each) and form the seed's cluster: lab1 creates it, the others join it
#      with the admin passphrase, pinning lab1's host-key fingerprint; lab1 also serves the
#      web console at https://127.0.0.11:8443/ while the demo runs;
#   3. `git push` the example repo to lab1 over the agent's own SSH port: the push is
#      validated, planned and applied as one change set, and replicates to every member;
#      `strata check` and `strata check --repo` are clean;
#   4. push an invalid commit to lab2: refused with the diagnostic, nothing changes;
#   5. push a change to group Paris's dns to lab2: it reaches exactly Paris's machines;
#   6. `strata status` on every member: Synced with the last pushed commit.
# Everything lives in a temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
strata="$PWD/target/release/strata"
work=$(mktemp -d)
agents=()
cleanup() {
    for pid in "${agents[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${agents[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
state() { echo "$work/lab$1"; }
# Runs a command, prints its exit code, and carries on whatever it is.
code() { set +e; "$@"; local c=$?; set -e; echo "(exit $c)"; }

step "strata validate examples/americas"
"$strata" validate examples/americas

step "strata show --machine lab3.example.com dns (Paris overrides the cluster's)"
"$strata" show --repo examples/americas --machine lab3.example.com dns

step "six agents on loopback, lab1…lab6.example.com on 127.0.0.11…16:2222"
for i in 1 2 3 4 5 6; do
    mkdir -p "$(state $i)"
    # agent.kdl: the machine's local settings (name, where it listens, what it tells peers).
    printf 'machine "lab%s.example.com"\nlisten "127.0.0.1%s:2222"\naddress "127.0.0.1%s:2222"\n' \
        "$i" "$i" "$i" > "$(state $i)/agent.kdl"
    # lab1 also serves the web console (HTTPS, a self-signed certificate made at start).
    [ "$i" = 1 ] && echo 'web listen="127.0.0.11:8443"' >> "$(state $i)/agent.kdl"
    "$strata" agent --state-dir "$(state $i)" 2> "$(state $i)/agent.log" &
    agents+=($!)
done
for i in 1 2 3 4 5 6; do
    for _ in $(seq 100); do [ -s "$(state $i)/address" ] && break; sleep 0.1; done
    [ -s "$(state $i)/address" ] || { cat "$(state $i)/agent.log"; exit 1; }
done
grep -h "^host key fingerprint\|^web console:" "$(state 1)/agent.log" | sed 's/^/lab1: /'

step "lab1: strata cluster create americas; cluster passwd"
"$strata" cluster create americas --state-dir "$(state 1)"
echo "demo admin passphrase" > "$work/passphrase"
"$strata" cluster passwd --passphrase-file "$work/passphrase" --state-dir "$(state 1)"

step "lab2…lab6: strata cluster join 127.0.0.11:2222 --fingerprint SHA256:…"
fingerprint=$(sed -n 's/^host key fingerprint: //p' "$(state 1)/agent.log")
for i in 2 3 4 5 6; do
    "$strata" cluster join 127.0.0.11:2222 --fingerprint "$fingerprint" \
        --passphrase-file "$work/passphrase" --yes --state-dir "$(state $i)" | tail -n 1
done
"$strata" cluster list --state-dir "$(state 1)"

step "the example as a git repo; the CI user gets an SSH key"
cp -r examples/americas "$work/repo"
ssh-keygen -q -t ed25519 -N '' -C '' -f "$work/ci_key"
ci_key=$(cut -d' ' -f1,2 "$work/ci_key.pub")
sed -i "s|user \"ci\" full-name=\"CI pipeline\" role=\"operator\"|& { key \"$ci_key\"; }|" \
    "$work/repo/cluster.kdl"
grep -n 'user "ci"' "$work/repo/cluster.kdl"
git -C "$work/repo" init -q -b main
git -C "$work/repo" add .
git -C "$work/repo" -c user.name="Demo Operator" -c user.email=ops@example.com \
    commit -q -m "americas: the seed's example cluster"
git -C "$work/repo" log --oneline

# git's ssh, pinned to each agent's host key. The first push logs in with lab1's local
# administrator key (only someone on lab1 has it); it brings the `users` section, and
# with it the CI user's key, which every later push uses, to any member.
for i in 1 2 3 4 5 6; do
    echo "[127.0.0.1$i]:2222 $(ssh-keygen -y -f "$(state $i)/host_key")"
done > "$work/known_hosts"
ssh_as() {
    export GIT_SSH_COMMAND="ssh -F /dev/null -i $1 -o IdentitiesOnly=yes \
        -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
}
user=admin
ssh_as "$(state 1)/local_key"
# Pushes main to lab$1; git's output (the cluster's answer as `remote:` lines) goes to
# $work/push.out, and the push's exit code is the function's.
push() { git -C "$work/repo" push "ssh://$user@127.0.0.1$1:2222/config" main > "$work/push.out" 2>&1; }
# The push's answer without the plan's diff lines (and without git's padding).
answer() { sed -e 's/ *$//' -e '/^remote: *$/d' -e '/^remote:   /d' "$work/push.out"; }

step "git push ssh://admin@127.0.0.11:2222/config main"
push 1 || { cat "$work/push.out"; exit 1; }
answer

step "strata check, from lab6 (exit 0: every member agrees)"
code "$strata" check --state-dir "$(state 6)"

step "strata check --repo, from lab4 (exit 0: the cluster runs what the repo says)"
code "$strata" check --repo "$work/repo" --state-dir "$(state 4)"

user=ci
ssh_as "$work/ci_key"

step "an invalid commit pushed to lab2 as ci: refused, nothing changes"
printf 'group "Milan" {\n    dns { server 12; }\n}\n' > "$work/repo/broken.kdl"
git -C "$work/repo" add broken.kdl
git -C "$work/repo" -c user.name="Demo Operator" -c user.email=ops@example.com \
    commit -q -m "broken: a number where an address belongs"
code push 2
sed -e 's/ *$//' "$work/push.out"
git -C "$work/repo" reset -q --hard HEAD~1

step "Paris moves to new resolvers; pushed to lab2 as ci"
for i in 1 2 3 4 5 6; do sha256sum "$(state $i)/running/dns.kdl"; done > "$work/dns.before"
sed -i 's/192.0.2.53/192.0.2.153/' "$work/repo/groups.kdl"
git -C "$work/repo" -c user.name="Demo Operator" -c user.email=ops@example.com \
    commit -q -am "Paris: new resolver"
push 2 || { cat "$work/push.out"; exit 1; }
answer
for i in 1 2 3 4 5 6; do
    for _ in $(seq 50); do
        if [ "$i" = 3 ] || [ "$i" = 4 ]; then
            grep -q 192.0.2.153 "$(state $i)/running/dns.kdl" && break
        else
            break
        fi
        sleep 0.1
    done
done
for i in 1 2 3 4 5 6; do
    if grep -q "$(sha256sum "$(state $i)/running/dns.kdl" | cut -d' ' -f1)" "$work/dns.before"; then
        echo "lab$i.example.com: dns unchanged"
    else
        echo "lab$i.example.com: dns changed: $(grep server "$(state $i)/running/dns.kdl" | xargs)"
    fi
done

step "strata log, on lab5 (every change set, stamped with its commit)"
"$strata" log --state-dir "$(state 5)"

step "strata check --repo, from lab3 (exit 0)"
code "$strata" check --repo "$work/repo" --state-dir "$(state 3)"

step "strata status, on every member (exit 0: Synced with the last pushed commit)"
"$strata" status --state-dir "$(state 1)"
for i in 2 3 4 5 6; do
    printf 'lab%s: ' "$i"
    set +e
    "$strata" status --state-dir "$(state $i)" | grep -E '^sync:'
    c=${PIPESTATUS[0]}
    set -e
    [ "$c" = 0 ] || { echo "lab$i: strata status exited $c"; exit 1; }
done
