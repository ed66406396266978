#!/bin/bash
# Runs error_report.sh (from the current directory) on good, error-free, missing and unreadable logs.
export LC_ALL=C
script="$PWD/error_report.sh"
work=$(mktemp -d /tmp/bw-report.XXXXXX)

cat > "$work/errors.log" <<'LOG'
2024-03-12T10:00:01 INFO api started
2024-03-12T10:00:04 ERROR db connection refused
2024-03-12T10:00:05 ERROR queue backlog 1200
2024-03-12T10:00:12 ERROR auth token expired
2024-03-12T10:00:15 ERROR db connection refused
2024-03-12T10:00:16 WARN db slow query
2024-03-12T10:00:19 ERROR db pool exhausted
2024-03-12T10:00:21 ERROR auth bad signature
LOG
printf '2024-03-12T10:00:01 INFO api started\n2024-03-12T10:00:09 WARN cache slow\n' > "$work/clean.log"
printf '2024-03-12T10:00:01 ERROR api crashed\n' > "$work/secret.log"
chmod 000 "$work/secret.log"

run() {
    local label=$1 log=$2
    rm -f "$work/report.txt"
    out=$(bash "$script" "$log" "$work/report.txt" 2>/dev/null)
    rc=$?
    if [ "$rc" -eq 0 ]; then status="exit=0"; else status="exit=nonzero"; fi
    case "$out" in *"report written"*) said="said written";; *) said="said nothing";; esac
    echo "== $label: $status, $said"
    if [ "$rc" -eq 0 ] && [ -f "$work/report.txt" ]; then
        sed 's/^/| /' "$work/report.txt"
        echo "($(wc -l < "$work/report.txt") lines)"
    fi
}

run "errors" "$work/errors.log"
run "clean" "$work/clean.log"
run "missing" "$work/no-such-file.log"
run "unreadable" "$work/secret.log"
chmod 600 "$work/secret.log"
rm -rf "$work"
