# Run the agent's tests/test_rates.py against the original rates.py, then against each mutant
# in a scratch copy of the workspace; one line per run (the expected lines live in the assert).
set -u
workspace=$PWD
if timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_rates.py >/dev/null 2>&1; then
  echo "original passes"
else
  echo "original fails"
fi
for mutant in /tmp/bw-check/mutant*.py; do
  name=$(basename "$mutant" .py)
  scratch=$(mktemp -d)
  cp -r "$workspace/." "$scratch/"
  cp "$mutant" "$scratch/src/shipcalc/rates.py"
  if (cd "$scratch" && timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_rates.py >/dev/null 2>&1); then
    echo "$name survived"
  else
    echo "$name caught"
  fi
  rm -rf "$scratch"
done
