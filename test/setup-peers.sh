#!/bin/sh
# The first step of `npm test`: every real peer the tests talk to must be installed, because a
# missing one is a failed test, never a skipped one. As root, installs the missing Debian packages
# of test/peers/debian-packages.txt; as anyone else, stops at once: with the one line to run as
# root when packages are missing, else saying the suite needs root.
# Then installs the npm dependencies when node_modules is missing (a fresh clone).
set -eu
cd "$(dirname "$0")/.."

# The list can be swapped for another file only to test this script itself.
wanted=$(sed 's/#.*//' "${TEST_PEERS_PACKAGE_LIST:-test/peers/debian-packages.txt}" | tr -s ' \n' ' ')
if ! command -v dpkg-query >/dev/null; then
  echo "npm test needs Debian (or a derivative) with these packages: $wanted" >&2
  exit 1
fi

missing=
for package in $wanted; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [ "$status" = installed ] || missing="$missing $package"
done

if [ "$(id -u)" -ne 0 ]; then
  if [ -n "$missing" ]; then
    echo "The tests need Debian packages that are missing. Run as root, then npm test again:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
  else
    # Dovecot's mail processes run as nobody over folders the tests chown, and the package test
    # installs the .deb: without root those tests could only fail.
    echo "The test suite runs as root (Dovecot as nobody, the .deb installed and purged): sudo npm test" >&2
  fi
  exit 1
fi

if [ -n "$missing" ]; then
  echo "Installing the test peers' Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 $missing >/dev/null
fi

[ -f node_modules/.package-lock.json ] || npm ci --no-audit --no-fund
