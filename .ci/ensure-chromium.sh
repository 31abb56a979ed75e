#!/usr/bin/env bash
# The browser test (tests/test_report_browser.py) renders report.html in headless Chromium from
# Debian's packages. `make test` calls this first: it installs Chromium when missing. Where that is
# impossible (no apt-get, neither root nor passwordless sudo, no network) it says so and carries on;
# the test then skips naming the reason, except under CI (CI set), where it fails instead.
set -u
for browser in chromium chromium-browser; do
    command -v "$browser" >/dev/null 2>&1 && exit 0
done
say() { echo "ensure-chromium: $*" >&2; }
if ! command -v apt-get >/dev/null 2>&1; then
    say "Chromium is missing and there is no apt-get to install it; the browser test will be skipped"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        say "Chromium is missing; installing it needs root (apt-get install chromium); the browser test will be skipped"
        exit 0
    fi
fi
say "installing Chromium (apt-get install chromium) for the browser test"
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium; } >/dev/null; then
    say "apt-get could not install Chromium; the browser test will be skipped"
fi
exit 0
