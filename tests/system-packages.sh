#!/usr/bin/env bash
# The system packages the test suite needs, from Debian (idempotent): LibreOffice Calc to round-trip
# the Excel report, Chromium and CJK fonts for the browser tests and screenshots, poppler's pdftotext to
# read the printed reports page by page, systemd-analyze to rate
# the service unit's hardening.
set -euo pipefail
need=()
command -v soffice >/dev/null || need+=(libreoffice-calc)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v pdftotext >/dev/null || need+=(poppler-utils)
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need+=(fonts-noto-cjk)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # another apt (unattended-upgrades, a colleague) may hold the dpkg lock: wait for it up to 10 minutes
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
