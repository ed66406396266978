#!/usr/bin/env bash
# Tools the test suite uses beyond Python: headless Chromium renders the HTML report.
# Idempotent. Needs root to install; without root it only says what is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "provision-test-tools: chromium is missing and we are not root; the HTML report test will be skipped" >&2
  exit 0
fi
echo "[provision] installing chromium (headless HTML report test)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
