#!/bin/bash
# Runs bin/backup.sh (from the current directory) on folders and files with spaces.
export LC_ALL=C
script="$PWD/bin/backup.sh"
work=$(mktemp -d /tmp/bw-backup.XXXXXX)
src="$work/My Docs"
dest="$work/back ups/today"
mkdir -p "$src"
printf 'alpha\n' > "$src/a.txt"
printf 'numbers\n' > "$src/budget 2024.txt"
printf 'notes\n' > "$src/meeting  notes.txt"
printf 'star\n' > "$src/x * y.txt"
printf 'skip me\n' > "$src/readme.md"

echo "== run"
bash "$script" "$src" "$dest" 2>/dev/null
echo "exit=$?"
echo "== copied"
if [ -d "$dest" ]; then
    for f in "$dest"/*; do
        [ -e "$f" ] || continue
        printf '[%s] %s\n' "$(basename "$f")" "$(cat "$f")"
    done
fi
echo "== empty folder"
mkdir "$work/empty dir"
bash "$script" "$work/empty dir" "$work/out two" 2>/dev/null
echo "exit=$?"
[ -d "$work/out two" ] && echo "dest created"
rm -rf "$work"
