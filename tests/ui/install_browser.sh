#!/bin/sh
# Install Debian's headless browser for the UI end-to-end test, only when it is missing.
# Idempotent: does nothing when both /usr/bin/chromium and /usr/bin/chromedriver exist.
set -eu
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver
