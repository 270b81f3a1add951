//! Applied means used: setting each applied field changes what is served.
//!
//! For every applied field of the VirtualService, DestinationRule,
//! ServiceEntry and Gateway structs, [`USES`] names a fixture: the base
//! config, a field path set to a value (and any settings the field needs
//! beside it). The config with the field must be served differently from
//! the config without it: other xDS for a sidecar or the egress gateway,
//! other validation findings, or a load error.

use std::path::Path;

use serde_yaml::{Mapping, Value};
use shared::node::{NodeId, NodeType};

use super::entry;
use crate::config::load::load_str;
use crate::config::validate::check;
use crate::translate::test_proxies::served_json;
use crate::translate::{Proxy, Workload};

/// The base config: a ServiceEntry, a VirtualService for it on the mesh
/// and the egress gateway, a DestinationRule, the Gateway.
const BASE: [&str; 4] = [
    "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.org]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: tls, protocol: TLS}
  - {number: 3306, name: tcp, protocol: TCP}
  resolution: DNS
",
    "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin.org]
  gateways: [mesh, egress]
  http:
  - match: [{port: 80}]
    route:
    - destination: {host: httpbin.org, port: {number: 80}}
  tls:
  - match: [{sniHosts: [httpbin.org], port: 443}]
    route:
    - destination: {host: httpbin.org, port: {number: 443}, subset: v1}
  tcp:
  - match: [{port: 3306}]
    route:
    - destination: {host: httpbin.org, port: {number: 3306}, subset: v1}
",
    "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin.org
  subsets:
  - {name: v1, labels: {version: v1}}
",
    "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
",
];

/// The documents of [`BASE`], as fixtures name them.
const DOCUMENTS: [&str; 4] = ["SE", "VS", "DR", "GW"];

/// One fixture a line: `Struct.field | DOC path = value`, then the
/// settings the field needs beside it, made both with and without it
/// (`DOC path = value`, or `DOC path -` to remove a field). The field is
/// set to the value in one config and removed in the other.
const USES: &str = "\
ServiceEntry.hosts | SE spec.hosts = [httpbin.org, extra.example.com]
ServiceEntry.addresses | SE spec.addresses = [10.9.0.1]
ServiceEntry.ports | SE spec.ports = [{number: 80, name: http, protocol: HTTP}]
ServiceEntry.location | SE spec.location = MESH_INTERNAL
ServiceEntry.resolution | SE spec.resolution = STATIC
ServiceEntry.endpoints | SE spec.endpoints = [{address: 10.0.0.1}]
ServiceEntry.workloadSelector | SE spec.workloadSelector = {labels: {app: httpbin}} | SE spec.resolution = STATIC
ServiceEntry.exportTo | SE spec.exportTo = [other]
ServiceEntry.subjectAltNames | SE spec.subjectAltNames = [httpbin.org] | DR spec.trafficPolicy.tls = {mode: SIMPLE}
ServicePort.number | SE spec.ports[0].number = 8080
ServicePort.protocol | SE spec.ports[0].protocol = TCP
ServicePort.name | SE spec.ports[0].name = http-x | SE spec.ports[0].protocol -
ServicePort.targetPort | SE spec.ports[0].targetPort = 8080 | SE spec.endpoints = [{address: 10.0.0.1}]
WorkloadSelector.labels | SE spec.workloadSelector.labels = {istio: other} | SE spec.resolution = STATIC
WorkloadEntry.address | SE spec.endpoints[0].address = 10.0.0.2 | SE spec.endpoints = [{address: 10.0.0.1}]
WorkloadEntry.ports | SE spec.endpoints[0].ports = {http: 8080} | SE spec.endpoints = [{address: 10.0.0.1}]
WorkloadEntry.labels | SE spec.endpoints[0].labels = {version: v1} | SE spec.endpoints = [{address: 10.0.0.1}]
WorkloadEntry.weight | SE spec.endpoints[0].weight = 3 | SE spec.endpoints = [{address: 10.0.0.1}]
WorkloadEntry.serviceAccount | SE spec.endpoints[0].serviceAccount = httpbin | SE spec.endpoints = [{address: 10.0.0.1}] | DR spec.trafficPolicy.tls = {mode: ISTIO_MUTUAL}
VirtualService.hosts | VS spec.hosts = [httpbin.org, extra.example.com]
VirtualService.gateways | VS spec.gateways = [egress]
VirtualService.http | VS spec.http = [{route: [{destination: {host: httpbin.org, port: {number: 80}, subset: v1}}]}]
VirtualService.tls | VS spec.tls = [{match: [{sniHosts: [httpbin.org]}], route: [{destination: {host: httpbin.org, port: {number: 443}, subset: v1}}]}]
VirtualService.tcp | VS spec.tcp = [{route: [{destination: {host: httpbin.org, port: {number: 3306}, subset: v1}}]}]
VirtualService.exportTo | VS spec.exportTo = [other]
HttpRoute.name | VS spec.http[0].name = primary
HttpRoute.match | VS spec.http[0].match = [{uri: {prefix: /a}}]
HttpRoute.route | VS spec.http[0].route = [{destination: {host: httpbin.org, subset: v1}}]
HttpRoute.redirect | VS spec.http[0].redirect = {uri: /b} | VS spec.http[0].route -
HttpRoute.rewrite | VS spec.http[0].rewrite = {uri: /b}
HttpRoute.timeout | VS spec.http[0].timeout = 3s
HttpRoute.retries | VS spec.http[0].retries = {attempts: 5}
HttpRoute.headers | VS spec.http[0].headers = {request: {set: {x-a: b}}}
HttpRoute.fault | VS spec.http[0].fault = {abort: {httpStatus: 503, percentage: {value: 50}}}
HttpRoute.mirror | VS spec.http[0].mirror = {host: httpbin.org, subset: v1}
HttpRoute.mirrorPercentage | VS spec.http[0].mirrorPercentage = {value: 50} | VS spec.http[0].mirror = {host: httpbin.org, subset: v1}
HttpRoute.mirrorPercent | VS spec.http[0].mirrorPercent = 50 | VS spec.http[0].mirror = {host: httpbin.org, subset: v1}
HttpRoute.mirrors | VS spec.http[0].mirrors = [{destination: {host: httpbin.org, subset: v1}}]
HttpRoute.corsPolicy | VS spec.http[0].corsPolicy = {allowOrigins: [{exact: 'https://a.example.com'}]}
HttpFaultInjection.delay | VS spec.http[0].fault.delay = {fixedDelay: 1s, percentage: {value: 50}} | VS spec.http[0].fault = {abort: {httpStatus: 503, percentage: {value: 50}}}
HttpFaultInjection.abort | VS spec.http[0].fault.abort = {httpStatus: 503} | VS spec.http[0].fault = {delay: {fixedDelay: 1s}}
FaultDelay.fixedDelay | VS spec.http[0].fault.delay.fixedDelay = 2s | VS spec.http[0].fault = {delay: {fixedDelay: 1s}}
FaultDelay.percentage | VS spec.http[0].fault.delay.percentage = {value: 50} | VS spec.http[0].fault = {delay: {fixedDelay: 1s}}
FaultDelay.percent | VS spec.http[0].fault.delay.percent = 50 | VS spec.http[0].fault = {delay: {fixedDelay: 1s}}
FaultAbort.httpStatus | VS spec.http[0].fault.abort.httpStatus = 500 | VS spec.http[0].fault = {abort: {percentage: {value: 50}}}
FaultAbort.grpcStatus | VS spec.http[0].fault.abort.grpcStatus = UNAVAILABLE | VS spec.http[0].fault = {abort: {percentage: {value: 50}}}
FaultAbort.percentage | VS spec.http[0].fault.abort.percentage = {value: 50} | VS spec.http[0].fault = {abort: {httpStatus: 503}}
Percent.value | VS spec.http[0].fault.abort.percentage.value = 50 | VS spec.http[0].fault = {abort: {httpStatus: 503, percentage: {}}}
HttpMirrorPolicy.destination | VS spec.http[0].mirrors[0].destination = {host: httpbin.org, subset: v1} | VS spec.http[0].mirrors = [{percentage: {value: 50}}]
HttpMirrorPolicy.percentage | VS spec.http[0].mirrors[0].percentage = {value: 50} | VS spec.http[0].mirrors = [{destination: {host: httpbin.org}}]
CorsPolicy.allowOrigin | VS spec.http[0].corsPolicy.allowOrigin = ['https://a.example.com'] | VS spec.http[0].corsPolicy = {allowMethods: [GET]}
CorsPolicy.allowOrigins | VS spec.http[0].corsPolicy.allowOrigins = [{exact: 'https://a.example.com'}] | VS spec.http[0].corsPolicy = {allowMethods: [GET]}
CorsPolicy.allowMethods | VS spec.http[0].corsPolicy.allowMethods = [GET] | VS spec.http[0].corsPolicy = {allowOrigin: ['https://a.example.com']}
CorsPolicy.allowHeaders | VS spec.http[0].corsPolicy.allowHeaders = [x-a] | VS spec.http[0].corsPolicy = {allowOrigin: ['https://a.example.com']}
CorsPolicy.exposeHeaders | VS spec.http[0].corsPolicy.exposeHeaders = [x-a] | VS spec.http[0].corsPolicy = {allowOrigin: ['https://a.example.com']}
CorsPolicy.maxAge | VS spec.http[0].corsPolicy.maxAge = 24h | VS spec.http[0].corsPolicy = {allowOrigin: ['https://a.example.com']}
CorsPolicy.allowCredentials | VS spec.http[0].corsPolicy.allowCredentials = true | VS spec.http[0].corsPolicy = {allowOrigin: ['https://a.example.com']}
CorsPolicy.unmatchedPreflights | VS spec.http[0].corsPolicy.unmatchedPreflights = IGNORE | VS spec.http[0].corsPolicy = {allowOrigin: ['https://a.example.com']}
HttpMatchRequest.uri | VS spec.http[0].match[0].uri = {prefix: /a}
HttpMatchRequest.scheme | VS spec.http[0].match[0].scheme = {exact: https}
HttpMatchRequest.method | VS spec.http[0].match[0].method = {exact: GET}
HttpMatchRequest.authority | VS spec.http[0].match[0].authority = {exact: httpbin.org}
HttpMatchRequest.headers | VS spec.http[0].match[0].headers = {x-a: {exact: b}}
HttpMatchRequest.queryParams | VS spec.http[0].match[0].queryParams = {a: {exact: b}}
HttpMatchRequest.withoutHeaders | VS spec.http[0].match[0].withoutHeaders = {x-a: {exact: b}}
HttpMatchRequest.port | VS spec.http[0].match[0].port = 81
HttpMatchRequest.gateways | VS spec.http[0].match[0].gateways = [egress]
HttpMatchRequest.ignoreUriCase | VS spec.http[0].match[0].ignoreUriCase = true | VS spec.http[0].match[0].uri = {prefix: /a}
HttpMatchRequest.name | VS spec.http[0].match[0].name = first | VS spec.http[0].name = primary
HttpMatchRequest.sourceLabels | VS spec.http[0].match[0].sourceLabels = {app: other}
HttpMatchRequest.sourceNamespace | VS spec.http[0].match[0].sourceNamespace = other
StringMatchFields.exact | VS spec.http[0].match[0].uri.exact = /a | VS spec.http[0].match[0].uri = {}
StringMatchFields.prefix | VS spec.http[0].match[0].uri.prefix = /a | VS spec.http[0].match[0].uri = {}
StringMatchFields.regex | VS spec.http[0].match[0].uri.regex = /a.* | VS spec.http[0].match[0].uri = {}
HttpRouteDestination.destination | VS spec.http[0].route[0].destination = {host: httpbin.org, subset: v1}
HttpRouteDestination.weight | VS spec.http[0].route[0].weight = 80 | VS spec.http[0].route = [{destination: {host: httpbin.org, port: {number: 80}}, weight: 50}, {destination: {host: httpbin.org, port: {number: 80}, subset: v1}, weight: 50}]
HttpRouteDestination.headers | VS spec.http[0].route[0].headers = {request: {set: {x-a: b}}}
Destination.host | VS spec.http[0].route[0].destination.host = other.example.com
Destination.subset | VS spec.http[0].route[0].destination.subset = v1
Destination.port | VS spec.tcp[0].route[0].destination.port = {number: 80}
PortSelector.number | VS spec.tcp[0].route[0].destination.port.number = 80
HttpRedirect.uri | VS spec.http[0].redirect.uri = /c | VS spec.http[0].route - | VS spec.http[0].redirect = {authority: b.example.com}
HttpRedirect.authority | VS spec.http[0].redirect.authority = b.example.com | VS spec.http[0].route - | VS spec.http[0].redirect = {uri: /c}
HttpRedirect.port | VS spec.http[0].redirect.port = 8080 | VS spec.http[0].route - | VS spec.http[0].redirect = {uri: /c}
HttpRedirect.scheme | VS spec.http[0].redirect.scheme = https | VS spec.http[0].route - | VS spec.http[0].redirect = {uri: /c}
HttpRedirect.redirectCode | VS spec.http[0].redirect.redirectCode = 302 | VS spec.http[0].route - | VS spec.http[0].redirect = {uri: /c}
HttpRewrite.uri | VS spec.http[0].rewrite.uri = /c | VS spec.http[0].rewrite = {authority: b.example.com}
HttpRewrite.authority | VS spec.http[0].rewrite.authority = b.example.com | VS spec.http[0].rewrite = {uri: /c}
HttpRetry.attempts | VS spec.http[0].retries.attempts = 4 | VS spec.http[0].retries = {retryOn: 5xx}
HttpRetry.perTryTimeout | VS spec.http[0].retries.perTryTimeout = 2s | VS spec.http[0].retries = {attempts: 2}
HttpRetry.retryOn | VS spec.http[0].retries.retryOn = reset | VS spec.http[0].retries = {attempts: 2}
HttpRetry.retryRemoteLocalities | VS spec.http[0].retries.retryRemoteLocalities = true | VS spec.http[0].retries = {attempts: 2}
HttpRetry.retryIgnorePreviousHosts | VS spec.http[0].retries.retryIgnorePreviousHosts = false | VS spec.http[0].retries = {attempts: 2}
HttpRetry.backoff | VS spec.http[0].retries.backoff = 25ms | VS spec.http[0].retries = {attempts: 2}
Headers.request | VS spec.http[0].headers.request = {set: {x-a: b}} | VS spec.http[0].headers = {}
Headers.response | VS spec.http[0].headers.response = {set: {x-a: b}} | VS spec.http[0].headers = {}
HeaderOperations.set | VS spec.http[0].headers.request.set = {x-a: b} | VS spec.http[0].headers = {request: {}}
HeaderOperations.add | VS spec.http[0].headers.request.add = {x-a: b} | VS spec.http[0].headers = {request: {}}
HeaderOperations.remove | VS spec.http[0].headers.request.remove = [x-a] | VS spec.http[0].headers = {request: {}}
TlsRoute.match | VS spec.tls[0].match = [{sniHosts: [a.httpbin.org]}]
TlsRoute.route | VS spec.tls[0].route = [{destination: {host: httpbin.org, port: {number: 443}, subset: v1}}]
TlsMatchAttributes.sniHosts | VS spec.tls[0].match[0].sniHosts = [a.httpbin.org]
TlsMatchAttributes.destinationSubnets | VS spec.tls[0].match[0].destinationSubnets = [10.9.0.0/16]
TlsMatchAttributes.port | VS spec.tls[0].match[0].port = 8443
TlsMatchAttributes.gateways | VS spec.tls[0].match[0].gateways = [egress]
TlsMatchAttributes.sourceLabels | VS spec.tls[0].match[0].sourceLabels = {app: other}
TlsMatchAttributes.sourceNamespace | VS spec.tls[0].match[0].sourceNamespace = other
TcpRoute.match | VS spec.tcp[0].match = [{port: 3307}]
TcpRoute.route | VS spec.tcp[0].route = [{destination: {host: httpbin.org, port: {number: 3306}, subset: v1}}]
L4MatchAttributes.destinationSubnets | VS spec.tcp[0].match[0].destinationSubnets = [10.9.0.0/16]
L4MatchAttributes.port | VS spec.tcp[0].match[0].port = 3307
L4MatchAttributes.sourceLabels | VS spec.tcp[0].match[0].sourceLabels = {app: other}
L4MatchAttributes.gateways | VS spec.tcp[0].match[0].gateways = [egress]
L4MatchAttributes.sourceNamespace | VS spec.tcp[0].match[0].sourceNamespace = other
RouteDestination.destination | VS spec.tcp[0].route[0].destination = {host: httpbin.org, port: {number: 3306}, subset: v1}
RouteDestination.weight | VS spec.tcp[0].route[0].weight = 80 | VS spec.tcp[0].route = [{destination: {host: httpbin.org, port: {number: 3306}}, weight: 50}, {destination: {host: httpbin.org, port: {number: 3306}, subset: v1}, weight: 50}]
DestinationRule.host | DR spec.host = other.example.com
DestinationRule.trafficPolicy | DR spec.trafficPolicy = {tls: {mode: SIMPLE}}
DestinationRule.subsets | DR spec.subsets = [{name: v2, labels: {version: v2}}]
DestinationRule.exportTo | DR spec.exportTo = [other]
DestinationRule.workloadSelector | DR spec.workloadSelector = {matchLabels: {app: other}} | DR spec.trafficPolicy.tls = {mode: SIMPLE}
MatchLabelsSelector.matchLabels | DR spec.workloadSelector.matchLabels = {app: other} | DR spec.trafficPolicy.tls = {mode: SIMPLE} | DR spec.workloadSelector = {}
Subset.name | DR spec.subsets[0].name = v2
Subset.labels | DR spec.subsets[0].labels = {version: v2} | SE spec.endpoints = [{address: 10.0.0.1, labels: {version: v1}}] | SE spec.resolution = STATIC
Subset.trafficPolicy | DR spec.subsets[0].trafficPolicy = {tls: {mode: SIMPLE}}
TrafficPolicy.loadBalancer | DR spec.trafficPolicy.loadBalancer = {simple: RANDOM}
TrafficPolicy.connectionPool | DR spec.trafficPolicy.connectionPool = {tcp: {maxConnections: 7}}
TrafficPolicy.tls | DR spec.trafficPolicy.tls = {mode: SIMPLE}
TrafficPolicy.portLevelSettings | DR spec.trafficPolicy.portLevelSettings = [{port: {number: 80}, tls: {mode: SIMPLE}}]
PortTrafficPolicy.port | DR spec.trafficPolicy.portLevelSettings[0].port = {number: 443} | DR spec.trafficPolicy.portLevelSettings = [{port: {number: 80}, tls: {mode: SIMPLE}}]
PortTrafficPolicy.loadBalancer | DR spec.trafficPolicy.portLevelSettings[0].loadBalancer = {simple: RANDOM} | DR spec.trafficPolicy.portLevelSettings = [{port: {number: 80}}]
PortTrafficPolicy.connectionPool | DR spec.trafficPolicy.portLevelSettings[0].connectionPool = {tcp: {maxConnections: 7}} | DR spec.trafficPolicy.portLevelSettings = [{port: {number: 80}}]
PortTrafficPolicy.tls | DR spec.trafficPolicy.portLevelSettings[0].tls = {mode: SIMPLE} | DR spec.trafficPolicy.portLevelSettings = [{port: {number: 80}}]
LoadBalancerSettings.simple | DR spec.trafficPolicy.loadBalancer.simple = RANDOM | DR spec.trafficPolicy.loadBalancer = {}
ConnectionPoolSettings.tcp | DR spec.trafficPolicy.connectionPool.tcp = {maxConnections: 7} | DR spec.trafficPolicy.connectionPool = {}
ConnectionPoolSettings.http | DR spec.trafficPolicy.connectionPool.http = {maxRetries: 7} | DR spec.trafficPolicy.connectionPool = {}
TcpSettings.maxConnections | DR spec.trafficPolicy.connectionPool.tcp.maxConnections = 7 | DR spec.trafficPolicy.connectionPool = {tcp: {}}
TcpSettings.connectTimeout | DR spec.trafficPolicy.connectionPool.tcp.connectTimeout = 3s | DR spec.trafficPolicy.connectionPool = {tcp: {}}
HttpSettings.http1MaxPendingRequests | DR spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests = 7 | DR spec.trafficPolicy.connectionPool = {http: {}}
HttpSettings.http2MaxRequests | DR spec.trafficPolicy.connectionPool.http.http2MaxRequests = 7 | DR spec.trafficPolicy.connectionPool = {http: {}}
HttpSettings.maxRequestsPerConnection | DR spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection = 7 | DR spec.trafficPolicy.connectionPool = {http: {}}
HttpSettings.maxRetries | DR spec.trafficPolicy.connectionPool.http.maxRetries = 7 | DR spec.trafficPolicy.connectionPool = {http: {}}
HttpSettings.idleTimeout | DR spec.trafficPolicy.connectionPool.http.idleTimeout = 7s | DR spec.trafficPolicy.connectionPool = {http: {}}
HttpSettings.h2UpgradePolicy | DR spec.trafficPolicy.connectionPool.http.h2UpgradePolicy = UPGRADE | DR spec.trafficPolicy.connectionPool = {http: {}}
HttpSettings.useClientProtocol | DR spec.trafficPolicy.connectionPool.http.useClientProtocol = true | DR spec.trafficPolicy.connectionPool = {http: {}}
HttpSettings.maxConcurrentStreams | DR spec.trafficPolicy.connectionPool.http.maxConcurrentStreams = 7 | DR spec.trafficPolicy.connectionPool = {http: {}} | SE spec.ports[0].protocol = HTTP2
TcpSettings.tcpKeepalive | DR spec.trafficPolicy.connectionPool.tcp.tcpKeepalive = {} | DR spec.trafficPolicy.connectionPool = {tcp: {}}
TcpSettings.maxConnectionDuration | DR spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration = 1h | DR spec.trafficPolicy.connectionPool = {tcp: {}}
TcpSettings.idleTimeout | DR spec.trafficPolicy.connectionPool.tcp.idleTimeout = 7s | DR spec.trafficPolicy.connectionPool = {tcp: {}}
TcpKeepalive.probes | DR spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.probes = 3 | DR spec.trafficPolicy.connectionPool = {tcp: {tcpKeepalive: {}}}
TcpKeepalive.time | DR spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time = 60s | DR spec.trafficPolicy.connectionPool = {tcp: {tcpKeepalive: {}}}
TcpKeepalive.interval | DR spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.interval = 10s | DR spec.trafficPolicy.connectionPool = {tcp: {tcpKeepalive: {}}}
TrafficPolicy.outlierDetection | DR spec.trafficPolicy.outlierDetection = {consecutive5xxErrors: 7}
PortTrafficPolicy.outlierDetection | DR spec.trafficPolicy.portLevelSettings[0].outlierDetection = {consecutive5xxErrors: 7} | DR spec.trafficPolicy.portLevelSettings = [{port: {number: 80}}]
OutlierDetection.consecutive5xxErrors | DR spec.trafficPolicy.outlierDetection.consecutive5xxErrors = 7 | DR spec.trafficPolicy.outlierDetection = {}
OutlierDetection.consecutiveGatewayErrors | DR spec.trafficPolicy.outlierDetection.consecutiveGatewayErrors = 7 | DR spec.trafficPolicy.outlierDetection = {}
OutlierDetection.interval | DR spec.trafficPolicy.outlierDetection.interval = 7s | DR spec.trafficPolicy.outlierDetection = {}
OutlierDetection.baseEjectionTime | DR spec.trafficPolicy.outlierDetection.baseEjectionTime = 7s | DR spec.trafficPolicy.outlierDetection = {}
OutlierDetection.maxEjectionPercent | DR spec.trafficPolicy.outlierDetection.maxEjectionPercent = 7 | DR spec.trafficPolicy.outlierDetection = {}
OutlierDetection.minHealthPercent | DR spec.trafficPolicy.outlierDetection.minHealthPercent = 7 | DR spec.trafficPolicy.outlierDetection = {}
LoadBalancerSettings.consistentHash | DR spec.trafficPolicy.loadBalancer.consistentHash = {httpHeaderName: x-user} | DR spec.trafficPolicy.loadBalancer = {}
ConsistentHashLb.httpHeaderName | DR spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName = x-user | DR spec.trafficPolicy.loadBalancer = {consistentHash: {}}
ConsistentHashLb.httpCookie | DR spec.trafficPolicy.loadBalancer.consistentHash.httpCookie = {name: user} | DR spec.trafficPolicy.loadBalancer = {consistentHash: {}}
ConsistentHashLb.useSourceIp | DR spec.trafficPolicy.loadBalancer.consistentHash.useSourceIp = true | DR spec.trafficPolicy.loadBalancer = {consistentHash: {}}
ConsistentHashLb.httpQueryParameterName | DR spec.trafficPolicy.loadBalancer.consistentHash.httpQueryParameterName = user | DR spec.trafficPolicy.loadBalancer = {consistentHash: {}}
ConsistentHashLb.ringHash | DR spec.trafficPolicy.loadBalancer.consistentHash.ringHash = {} | DR spec.trafficPolicy.loadBalancer = {consistentHash: {}}
ConsistentHashLb.maglev | DR spec.trafficPolicy.loadBalancer.consistentHash.maglev = {tableSize: 7} | DR spec.trafficPolicy.loadBalancer = {consistentHash: {}}
ConsistentHashLb.minimumRingSize | DR spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize = 7 | DR spec.trafficPolicy.loadBalancer = {consistentHash: {}}
HttpCookie.name | DR spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name = user | DR spec.trafficPolicy.loadBalancer = {consistentHash: {httpCookie: {}}}
HttpCookie.path | DR spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.path = / | DR spec.trafficPolicy.loadBalancer = {consistentHash: {httpCookie: {name: user}}}
HttpCookie.ttl | DR spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl = 7s | DR spec.trafficPolicy.loadBalancer = {consistentHash: {httpCookie: {name: user}}}
RingHash.minimumRingSize | DR spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize = 7 | DR spec.trafficPolicy.loadBalancer = {consistentHash: {ringHash: {}}}
Maglev.tableSize | DR spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize = 7 | DR spec.trafficPolicy.loadBalancer = {consistentHash: {maglev: {}}}
ClientTlsSettings.mode | DR spec.trafficPolicy.tls.mode = SIMPLE | DR spec.trafficPolicy.tls = {}
ClientTlsSettings.clientCertificate | DR spec.trafficPolicy.tls.clientCertificate = /etc/c.pem | DR spec.trafficPolicy.tls = {mode: MUTUAL, privateKey: /etc/k.pem}
ClientTlsSettings.privateKey | DR spec.trafficPolicy.tls.privateKey = /etc/k.pem | DR spec.trafficPolicy.tls = {mode: MUTUAL, clientCertificate: /etc/c.pem}
ClientTlsSettings.caCertificates | DR spec.trafficPolicy.tls.caCertificates = /etc/ca.pem | DR spec.trafficPolicy.tls = {mode: SIMPLE}
ClientTlsSettings.credentialName | DR spec.trafficPolicy.tls.credentialName = cred | DR spec.trafficPolicy.tls = {mode: SIMPLE}
ClientTlsSettings.subjectAltNames | DR spec.trafficPolicy.tls.subjectAltNames = [a.example.com] | DR spec.trafficPolicy.tls = {mode: SIMPLE}
ClientTlsSettings.sni | DR spec.trafficPolicy.tls.sni = a.example.com | DR spec.trafficPolicy.tls = {mode: SIMPLE}
ClientTlsSettings.insecureSkipVerify | DR spec.trafficPolicy.tls.insecureSkipVerify = true | DR spec.trafficPolicy.tls = {mode: SIMPLE}
Gateway.selector | GW spec.selector = {istio: other}
Gateway.servers | GW spec.servers = [{port: {number: 81, name: http, protocol: HTTP}, hosts: ['*']}]
Server.port | GW spec.servers[0].port = {number: 81, name: http, protocol: HTTP}
Server.hosts | GW spec.servers[0].hosts = [a.example.com]
Server.tls | GW spec.servers[0].tls = {httpsRedirect: true}
Server.name | GW spec.servers[0].name = plain
ServerTlsSettings.httpsRedirect | GW spec.servers[0].tls.httpsRedirect = true | GW spec.servers[0].tls = {}
ServerTlsSettings.mode | GW spec.servers[0].tls.mode = MUTUAL | GW spec.servers[0] = {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}} | GW spec.servers[0].tls.caCertificates = /etc/ca.pem
ServerTlsSettings.serverCertificate | GW spec.servers[0].tls.serverCertificate = /etc/other.pem | GW spec.servers[0] = {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}}
ServerTlsSettings.privateKey | GW spec.servers[0].tls.privateKey = /etc/other.pem | GW spec.servers[0] = {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}}
ServerTlsSettings.caCertificates | GW spec.servers[0].tls.caCertificates = /etc/ca.pem | GW spec.servers[0] = {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}} | GW spec.servers[0].tls.mode = MUTUAL
ServerTlsSettings.credentialName | GW spec.servers[0].tls.credentialName = cred | GW spec.servers[0] = {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}} | GW spec.servers[0].tls.serverCertificate - | GW spec.servers[0].tls.privateKey -
ServerTlsSettings.subjectAltNames | GW spec.servers[0].tls.subjectAltNames = [a.example.com] | GW spec.servers[0] = {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}}
ServerTlsSettings.minProtocolVersion | GW spec.servers[0].tls.minProtocolVersion = TLSV1_3 | GW spec.servers[0] = {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}}
ServerTlsSettings.maxProtocolVersion | GW spec.servers[0].tls.maxProtocolVersion = TLSV1_2 | GW spec.servers[0] = {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}}
";

/// One setting: the document, the field path, the value (`None` removes).
type Setting<'t> = (usize, &'t str, Option<&'t str>);

fn setting(text: &str) -> Setting<'_> {
    let (document, rest) = text.split_once(' ').expect("DOC path");
    let document = DOCUMENTS
        .iter()
        .position(|name| *name == document)
        .unwrap_or_else(|| panic!("{document}: one of {DOCUMENTS:?}"));
    match rest.strip_suffix(" -") {
        Some(path) => (document, path, None),
        None => {
            let (path, value) = rest.split_once(" = ").expect("path = value");
            (document, path, Some(value))
        }
    }
}

/// The fixtures: the field (`Struct.field`), its setting, the others.
fn fixtures() -> Vec<(&'static str, Setting<'static>, Vec<Setting<'static>>)> {
    USES.lines()
        .map(|line| {
            let mut parts = line.split(" | ");
            let field = parts.next().expect("Struct.field");
            let with = setting(parts.next().expect("the field's setting"));
            (field, with, parts.map(setting).collect())
        })
        .collect()
}

/// The structs whose every applied field has a fixture here.
const COVERED: [&str; 4] = [
    "VirtualService",
    "DestinationRule",
    "ServiceEntry",
    "Gateway",
];

fn proxies() -> [Proxy; 2] {
    let proxy = |node_type, ip: &str, name: &str, labels: [(&str, &str); 1]| Proxy {
        id: NodeId::new(node_type, ip, name, "default").to_string(),
        node_type,
        namespace: "default".to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ips: vec![ip.to_string()],
        service_account: name.to_string(),
        dns_capture: false,
    };
    [
        proxy(NodeType::Sidecar, "10.1.0.5", "sleep", [("app", "sleep")]),
        proxy(
            NodeType::Router,
            "10.1.0.9",
            "egress",
            [("istio", "egressgateway")],
        ),
    ]
}

/// What `documents` serve: the load error, or the validation findings and
/// every proxy's xDS.
fn served(documents: &[Value]) -> String {
    let text: Vec<String> = documents
        .iter()
        .map(|document| serde_yaml::to_string(document).expect("serializes"))
        .collect();
    let snapshot = match load_str(Path::new("uses.yaml"), &text.join("---\n")) {
        Ok(snapshot) => snapshot,
        Err(errors) => return format!("load: {errors}"),
    };
    let checked = check(snapshot);
    let mut out = format!("{:?}\n{:?}\n", checked.errors, checked.warnings);
    // The gateway is trusted, so it may serve what selects its labels.
    let workloads: Vec<Workload> = proxies()
        .iter()
        .filter_map(Proxy::as_workload)
        .map(|workload| Workload {
            trusted_gateway: workload.labels.contains_key("istio"),
            ..workload
        })
        .collect();
    for proxy in proxies() {
        out.push_str(&served_json(&checked.snapshot, &workloads, &proxy).to_string());
    }
    out
}

/// Sets (or, with `None`, removes) the field at `path` (`a.b[0].c`),
/// making the maps on the way.
fn set(document: &mut Value, path: &str, value: Option<&str>) {
    let segments: Vec<&str> = path.split('.').collect();
    let mut here = document;
    for (at, segment) in segments.iter().enumerate() {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*segment, None),
        };
        let map = here
            .as_mapping_mut()
            .unwrap_or_else(|| panic!("{path}: not a map"));
        let last = at + 1 == segments.len();
        if last && index.is_none() {
            match value {
                Some(value) => {
                    let parsed = serde_yaml::from_str(value).expect("a YAML value");
                    map.insert(Value::from(key), parsed);
                }
                None => {
                    map.remove(key);
                }
            }
            return;
        }
        let child = map
            .entry(Value::from(key))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        here = match index {
            Some(index) => {
                let item = child
                    .as_sequence_mut()
                    .and_then(|items| items.get_mut(index))
                    .unwrap_or_else(|| panic!("{path}: no item {index}"));
                if last {
                    match value {
                        Some(value) => *item = serde_yaml::from_str(value).expect("a YAML value"),
                        None => panic!("{path}: removing an item"),
                    }
                    return;
                }
                item
            }
            None => child,
        };
    }
}

fn base() -> Vec<Value> {
    BASE.iter()
        .map(|text| serde_yaml::from_str(text).expect("the base parses"))
        .collect()
}

/// Applied fields whose effect this control plane does not reproduce yet,
/// and why: kept exact, so a field that starts to matter leaves the list.
const WITHOUT_EFFECT: [(&str, &str, &str); 2] = [
    (
        "ServiceEntry",
        "location",
        "istiod's MESH_INTERNAL differences (auto mutual TLS to endpoints with sidecars) are not built",
    ),
    (
        "Server",
        "name",
        "istiod uses it only to name stats; no stats are named by it here",
    ),
];

#[test]
fn every_applied_field_changes_what_is_served() {
    assert_eq!(served(&base()), served(&base()), "serving is deterministic");
    let mut unused = Vec::new();
    for (field, (document, path, value), beside) in fixtures() {
        let mut with = base();
        let mut without = base();
        for (at, other, setting) in &beside {
            set(&mut with[*at], other, *setting);
            set(&mut without[*at], other, *setting);
        }
        set(&mut with[document], path, value);
        set(&mut without[document], path, None);
        if served(&with) == served(&without) {
            unused.push(field.to_string());
        }
    }
    let known: Vec<String> = WITHOUT_EFFECT
        .iter()
        .map(|(name, field, _)| format!("{name}.{field}"))
        .collect();
    assert_eq!(unused, known, "applied fields without effect");
}

#[test]
fn every_applied_field_of_the_covered_kinds_has_a_fixture() {
    let fixtures = fixtures();
    let mut pending = COVERED.map(|name| name.to_string()).to_vec();
    let mut seen = Vec::new();
    while let Some(name) = pending.pop() {
        if seen.contains(&name) {
            continue;
        }
        let fields = entry(&name).unwrap_or_else(|| panic!("{name} is in FIELDS"));
        for field in fields.applied {
            let named = format!("{name}.{field}");
            assert!(
                fixtures.iter().any(|(fixture, ..)| *fixture == named),
                "{named}: name a fixture in USES"
            );
        }
        pending.extend(
            super::NESTED
                .iter()
                .filter(|(parent, ..)| *parent == name)
                .map(|(.., child)| child.to_string()),
        );
        seen.push(name);
    }
}
