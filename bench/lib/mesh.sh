# bench/run.sh's mesh: the Istio config both proxies are fed (an egress
# gateway with one server per benchmarked path, and for the sidecar paths
# the app pod's services) and Envoy's bootstrap.
# Sourced; uses the ports and names set in run.sh.

# external_service_entry NAME HOST PORT PROTOCOL ADDRESS TARGET_PORT: a
# MESH_EXTERNAL ServiceEntry for HOST on PORT, one static endpoint at
# ADDRESS:TARGET_PORT.
external_service_entry() {
    local name=${4,,}
    # printf, a builtin: ten thousand of these fork nothing.
    printf '%s\n' "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: $1
  namespace: istio-system
spec:
  hosts: [$2]
  location: MESH_EXTERNAL
  ports:
  - {number: $3, name: $name, protocol: $4}
  resolution: STATIC
  endpoints:
  - address: $5
    ports: {$name: $6}"
}

# write_gateway_config FILE: the gateway `bench-gateway` (labels $LABEL)
# with
#   port 80 (HTTP, on $LISTEN_PORT): bench.local to the upstream;
#     orig.bench.local to the TLS upstream with TLS originated (SIMPLE,
#     trusting $TLS_CA); slow.bench.local to the slow upstream under a
#     $SLOW_TIMEOUT route timeout;
#   port 443 (TLS PASSTHROUGH, on $TLS_LISTEN_PORT): tls.bench.local by
#     SNI to the TLS upstream.
write_gateway_config() {
    cat >"$1" <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: bench-gateway
  namespace: istio-system
spec:
  hosts:
  - bench-gateway.istio-system.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: $LISTEN_PORT}
  - {number: 443, name: tls, protocol: TLS, targetPort: $TLS_LISTEN_PORT}
  resolution: STATIC
  workloadSelector:
    labels:
      istio: benchgateway
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bench-gateway
  namespace: istio-system
spec:
  selector:
    istio: benchgateway
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [$HOST, $ORIG_HOST, $SLOW_HOST]
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [$TLS_HOST]
    tls: {mode: PASSTHROUGH}
---
$(external_service_entry bench-upstream "$HOST" 80 HTTP 127.0.0.1 "$UPSTREAM_PORT")
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bench
  namespace: istio-system
spec:
  hosts: [$HOST]
  gateways: [bench-gateway]
  http:
  - route:
    - destination: {host: $HOST, port: {number: 80}}
---
$(external_service_entry bench-tls "$TLS_HOST" 443 TLS 127.0.0.1 "$TLS_UPSTREAM_PORT")
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bench-tls
  namespace: istio-system
spec:
  hosts: [$TLS_HOST]
  gateways: [bench-gateway]
  tls:
  - match:
    - port: 443
      sniHosts: [$TLS_HOST]
    route:
    - destination: {host: $TLS_HOST, port: {number: 443}}
---
$(external_service_entry bench-orig "$ORIG_HOST" 443 HTTPS 127.0.0.1 "$TLS_UPSTREAM_PORT")
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bench-orig
  namespace: istio-system
spec:
  hosts: [$ORIG_HOST]
  gateways: [bench-gateway]
  http:
  - route:
    - destination: {host: $ORIG_HOST, port: {number: 443}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bench-orig
  namespace: istio-system
spec:
  host: $ORIG_HOST
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, sni: $ORIG_HOST, caCertificates: $TLS_CA}
---
$(external_service_entry bench-slow "$SLOW_HOST" 80 HTTP 127.0.0.1 "$SLOW_UPSTREAM_PORT")
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bench-slow
  namespace: istio-system
spec:
  hosts: [$SLOW_HOST]
  gateways: [bench-gateway]
  http:
  - timeout: $SLOW_TIMEOUT
    route:
    - destination: {host: $SLOW_HOST, port: {number: 80}}
EOF
}

# write_service_entries FILE COUNT: COUNT more ServiceEntries, an HTTP
# port and a static endpoint each (the config-size runs).
write_service_entries() {
    local i
    for ((i = 0; i < $2; i++)); do
        external_service_entry "svc-$i" "svc-$i.bench.local" 80 HTTP "127.0.0.$((i % 250 + 2))" 80
        echo ---
    done >"$1"
}

# write_pod_config FILE: what the sidecar paths add (bench/lib/pod.sh):
#   sidecar.bench.local on UPSTREAM_PORT (HTTP): the pod's upstream, which
#     the app addresses directly (its sidecar captures the connection);
#   mtls.bench.local, Istio's "egress gateway with TLS origination" task:
#     from the pod's sidecar (the `mesh` gateway) port 80 goes to the
#     egress gateway's service bench-gateway-mtls on 8443 with mutual TLS
#     (ISTIO_MUTUAL, SNI mtls.bench.local); the gateway (an ISTIO_MUTUAL
#     HTTPS server on 8443, listening on MTLS_LISTEN_PORT) routes it to the
#     pod's TLS upstream on 443 and originates TLS (SIMPLE, trusting
#     POD_TLS_CA). The gateway is its service's endpoint as a trusted
#     gateway (its service account, given to the control plane).
write_pod_config() {
    cat >"$1" <<EOF
$(external_service_entry bench-sidecar "$SIDECAR_HOST" "$UPSTREAM_PORT" HTTP "$POD_HOST_IP" "$UPSTREAM_PORT")
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: bench-gateway-mtls
  namespace: istio-system
spec:
  hosts:
  - bench-gateway-mtls.istio-system.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - {number: 8443, name: https-mtls, protocol: HTTPS, targetPort: $MTLS_LISTEN_PORT}
  resolution: STATIC
  workloadSelector:
    labels:
      istio: benchgateway
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bench-gateway-mtls
  namespace: istio-system
spec:
  selector:
    istio: benchgateway
  servers:
  - port: {number: 8443, name: https-mtls, protocol: HTTPS}
    hosts: [$MTLS_HOST]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bench-gateway-mtls
  namespace: istio-system
spec:
  host: bench-gateway-mtls.istio-system.svc.cluster.local
  trafficPolicy:
    portLevelSettings:
    - port: {number: 8443}
      tls: {mode: ISTIO_MUTUAL, sni: $MTLS_HOST}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: bench-mtls
  namespace: istio-system
spec:
  hosts: [$MTLS_HOST]
  location: MESH_EXTERNAL
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: https, protocol: HTTPS}
  resolution: STATIC
  endpoints:
  - address: $POD_HOST_IP
    ports: {https: $TLS_UPSTREAM_PORT}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bench-mtls
  namespace: istio-system
spec:
  hosts: [$MTLS_HOST]
  gateways: [bench-gateway-mtls, mesh]
  http:
  - match:
    - gateways: [mesh]
      port: 80
    route:
    - destination:
        host: bench-gateway-mtls.istio-system.svc.cluster.local
        port: {number: 8443}
  - match:
    - gateways: [bench-gateway-mtls]
      port: 8443
    route:
    - destination: {host: $MTLS_HOST, port: {number: 443}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bench-mtls
  namespace: istio-system
spec:
  host: $MTLS_HOST
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, sni: $MTLS_HOST, caCertificates: $POD_TLS_CA}
EOF
}

# write_envoy_bootstrap FILE NODE_ID NAMESPACE LABELS IP SERVICE_ACCOUNT
# XDS_IP TOKEN ROOT_CERT ADMIN_IP [SDS_SOCKET]: the node identity our agent
# sends (LABELS: the JSON object's members), ADS over TLS to XDS_IP:XDS_PORT
# with TOKEN, trusting ROOT_CERT (as integration-tests/src/envoy.rs builds
# it), the admin interface on ADMIN_IP:ADMIN_PORT and, with SDS_SOCKET, the
# `sds-grpc` cluster of pilot-agent's SDS server on that Unix socket.
write_envoy_bootstrap() {
    local node_id=$2 namespace=$3 labels=$4 ip=$5 account=$6 xds_ip=$7 token=$8 root=$9
    local admin_ip=${10} socket=${11:-} sds=""
    [[ -n $socket ]] && sds=',
      {
        "name": "sds-grpc",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
          "cluster_name": "sds-grpc",
          "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "pipe": { "path": "'"$socket"'" } } } }] }]
        },
        "typed_extension_protocol_options": {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": { "http2_protocol_options": {} }
          }
        }
      }'
    cat >"$1" <<EOF
{
  "node": {
    "id": "$node_id",
    "cluster": "$account.$namespace",
    "metadata": {
      "NAMESPACE": "$namespace",
      "LABELS": { $labels },
      "INSTANCE_IPS": "$ip",
      "SERVICE_ACCOUNT": "$account"
    }
  },
  "admin": { "address": { "socket_address": { "address": "$admin_ip", "port_value": $ADMIN_PORT } } },
  "dynamic_resources": {
    "ads_config": {
      "api_type": "GRPC",
      "transport_api_version": "V3",
      "grpc_services": [{
        "envoy_grpc": { "cluster_name": "xds-grpc" },
        "initial_metadata": [{ "key": "authorization", "value": "Bearer $token" }]
      }]
    },
    "cds_config": { "ads": {}, "resource_api_version": "V3" },
    "lds_config": { "ads": {}, "resource_api_version": "V3" }
  },
  "static_resources": {
    "clusters": [{
      "name": "xds-grpc",
      "type": "STATIC",
      "connect_timeout": "1s",
      "load_assignment": {
        "cluster_name": "xds-grpc",
        "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
          "socket_address": { "address": "$xds_ip", "port_value": $XDS_PORT } } } }] }]
      },
      "transport_socket": {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
          "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
          "sni": "istiod.istio-system.svc",
          "common_tls_context": {
            "alpn_protocols": ["h2"],
            "validation_context": {
              "trusted_ca": { "filename": "$root" },
              "match_typed_subject_alt_names": [{ "san_type": "DNS", "matcher": { "exact": "istiod.istio-system.svc" } }]
            }
          }
        }
      },
      "typed_extension_protocol_options": {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
          "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          "explicit_http_config": { "http2_protocol_options": {} }
        }
      }
    }$sds]
  }
}
EOF
}
