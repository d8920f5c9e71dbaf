#!/usr/bin/env bash
# Install everything the rig and its tests need on a fresh Debian machine (or a Raspberry Pi):
# a virtualenv in .venv with the project (editable) and its dev, farm (labgrid) and docs
# (MkDocs, for the documentation site) extras; the pinned Allure CLI from npm (for the HTML
# report) in .tools/; Debian's chromium (for the report screenshot test) and ser2net
# (labgrid-exporter serves serial ports with it).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev,farm,docs]"

ALLURE_VERSION=3.18.0
if command -v npm >/dev/null 2>&1; then
    if [ ! -x .tools/node_modules/.bin/allure ]; then
        npm install -s --prefix .tools "allure@${ALLURE_VERSION}" >/dev/null 2>&1 \
            || echo "setup: could not install allure@${ALLURE_VERSION} from npm; HTML reports will be skipped" >&2
    fi
else
    echo "setup: npm not found; install Node.js to get the HTML report (allure@${ALLURE_VERSION})" >&2
fi

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "setup: could not install chromium; the report screenshot test will fail" >&2
fi

if ! command -v ser2net >/dev/null 2>&1 && [ ! -x /usr/sbin/ser2net ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ser2net >/dev/null) \
            || echo "setup: could not install ser2net; the farm tests will fail" >&2
    else
        echo "setup: ser2net not found; install it (apt-get install ser2net) for the farm tests" >&2
    fi
fi
