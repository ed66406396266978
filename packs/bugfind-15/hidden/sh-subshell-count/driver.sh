#!/bin/bash
# Runs import_users.sh (from the current directory) on a few CSV files.
export LC_ALL=C
script="$PWD/import_users.sh"
work=$(mktemp -d /tmp/bw-users.XXXXXX)

printf '# username,email\nana,ana@example.org\nben,ben@example.org\n\ncarl,\ndina,dina@example.org\n' > "$work/a.csv"
printf 'eva,eva@example.net\n# old account\n#frank,frank@example.net\ngus,\nhal,\n' > "$work/b.csv"
printf '# nothing here\n' > "$work/c.csv"
printf 'ivy,ivy@example.com\n' > "$work/d.csv"

for f in a b c d; do
    echo "== $f.csv"
    bash "$script" "$work/$f.csv" 2>/dev/null
    echo "exit=$?"
done
rm -rf "$work"
