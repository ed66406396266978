# Run ./setup.sh twice on one scratch target, with a developer's edits in between, and print
# the resulting tree with the target's path shown as T (the expected lines live in the assert).
set -u
target=$(mktemp -d)
bash ./setup.sh "$target" >/dev/null 2>&1 || { echo "first run failed"; exit 1; }
echo "# local: log_level = debug" >> "$target/etc/harbor.conf"
echo "notes" > "$target/var/log/keep.txt"
bash ./setup.sh "$target" >/dev/null 2>&1 || { echo "second run failed"; exit 1; }
echo "both runs ok"
cd "$target"
find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r path; do
  if [ -L "$path" ]; then
    echo "link $path -> $(readlink "$path" | sed "s#$target#T#g")"
  elif [ -d "$path" ]; then
    echo "dir $path"
  else
    echo "file $path"
    sed "s#$target#T#g; s/^/| /" "$path"
  fi
done
cd / && rm -rf "$target"
