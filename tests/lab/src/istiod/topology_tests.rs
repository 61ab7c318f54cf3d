//! Unit tests of the inbound chains, headless services, gateways and
//! EnvoyFilters (each assertion cites the istio/istio function it follows).

use super::*;
use serde_json::json;

fn cm(version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system",
           "labels": {"lab.mesh503.io/istio-version": version}}, "data": {"mesh": "accessLogFile: /dev/stdout\n"}})
}

/// An injected pod with container ports `(name, port)`.
fn pod(name: &str, ns: &str, app: &str, ip: &str, ports: &[(&str, u16)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p)| {
            let mut v = json!({"containerPort": p, "protocol": "TCP"});
            if !n.is_empty() {
                v["name"] = json!(n);
            }
            v
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": {"app": app, "security.istio.io/tlsMode": "istio"}},
           "spec": {"serviceAccountName": app, "containers": [{"name": app, "ports": ports}, {"name": "istio-proxy"}]},
           "status": {"podIP": ip}})
}

fn svc(name: &str, ns: &str, app: &str, ports: Value, created: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
           "spec": {"selector": {"app": app}, "clusterIP": "10.96.0.9", "ports": ports}})
}

fn pa(ns: &str, mode: &str, selector: Option<&str>) -> Value {
    let mut v = json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                       "metadata": {"name": "pa", "namespace": ns}, "spec": {"mtls": {"mode": mode}}});
    if let Some(app) = selector {
        v["spec"]["selector"] = json!({"matchLabels": {"app": app}});
    }
    v
}

fn render(w: &World, pod_name: &str) -> SidecarXds {
    let pki = crate::pki::Pki::new().unwrap();
    let p = w
        .objects
        .iter()
        .find(|o| o["kind"] == "Pod" && o["metadata"]["name"] == pod_name)
        .unwrap();
    render_sidecar(w, p, &pki).unwrap()
}

fn listener<'a>(x: &'a SidecarXds, name: &str) -> &'a Value {
    x.listeners
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no listener {name}"))
}

/// (transport, ALPNs joined, first network filter, terminates TLS) per chain on `port`.
fn shape(x: &SidecarXds, port: Option<u64>) -> Vec<(String, String, String, bool)> {
    listener(x, "virtualInbound")["filter_chains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["filter_chain_match"]["destination_port"].as_u64() == port)
        .filter(|c| c["name"] != "virtualInbound-blackhole")
        .map(|c| {
            let m = &c["filter_chain_match"];
            let alpn: Vec<&str> = m["application_protocols"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            let f = c["filters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap())
                .find(|n| *n != "envoy.filters.network.set_filter_state")
                .unwrap();
            (
                m["transport_protocol"].as_str().unwrap().to_string(),
                alpn.join(","),
                f.rsplit('.').next().unwrap().to_string(),
                c.get("transport_socket").is_some(),
            )
        })
        .collect()
}

fn s(t: &str, a: &str, f: &str, tls: bool) -> (String, String, String, bool) {
    (t.into(), a.into(), f.into(), tls)
}

/// `echo` pod: tcp-echo 9000, an unnamed port 8080 (two Services), a
/// container port 9090 no Service targets.
fn echo_world(mode: &str) -> World {
    World::new(vec![
        cm("1.24"),
        pod(
            "echo-1",
            "foo",
            "echo",
            "127.10.0.8",
            &[("", 8080), ("", 9000), ("", 9090)],
        ),
        svc(
            "echo-tcp",
            "foo",
            "echo",
            json!([{"name": "tcp-echo", "port": 9000}]),
            "2024-01-01T00:00:00Z",
        ),
        svc(
            "echo-auto",
            "foo",
            "echo",
            json!([{"port": 8080}]),
            "2024-01-01T00:00:01Z",
        ),
        pa("foo", mode, None),
    ])
}

#[test]
fn permissive_chain_shapes_per_protocol() {
    // filterchain_options.go getFilterChainMatchOptions, PERMISSIVE.
    let x = render(&echo_world("PERMISSIVE"), "echo-1");
    let http_mtls = "istio-http/1.0,istio-http/1.1,istio-h2";
    assert_eq!(
        shape(&x, Some(8080)),
        vec![
            s("tls", http_mtls, "http_connection_manager", true),
            s(
                "raw_buffer",
                "http/1.1,h2c",
                "http_connection_manager",
                false
            ),
            s("tls", "istio-peer-exchange,istio", "tcp_proxy", true),
            s("raw_buffer", "", "tcp_proxy", false),
            s("tls", "", "tcp_proxy", false),
        ]
    );
    let all = "istio,istio-peer-exchange,istio-http/1.0,istio-http/1.1,istio-h2";
    assert_eq!(
        shape(&x, Some(9000)),
        vec![
            s("tls", all, "tcp_proxy", true),
            s("tls", "", "tcp_proxy", false),
            s("raw_buffer", "", "tcp_proxy", false),
        ]
    );
    // buildInboundPassthroughChains: the same five Auto chains, no port; from
    // 1.23 one InboundPassthroughCluster and no IPv4 prefix match (≤1.22 had one).
    assert_eq!(shape(&x, None).len(), 5);
    let vi = listener(&x, "virtualInbound");
    let catchall = &vi["filter_chains"][1];
    assert_eq!(catchall["name"], "virtualInbound-catchall-http");
    assert!(catchall["filter_chain_match"]["prefix_ranges"].is_null());
    // 9090 has no Service: no chain, but captured (passthrough).
    assert!(shape(&x, Some(9090)).is_empty());
    let captured: Vec<u64> = vi["additional_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["address"]["socket_address"]["port_value"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(captured, vec![8080, 9000, 9090]);
    // BuildInboundTLS: HTTP chains offer h2/http1.1, TCP chains add istio-peer-exchange.
    let alpn = |i: usize| {
        vi["filter_chains"][i]["transport_socket"]["typed_config"]["common_tls_context"]
            ["alpn_protocols"]
            .clone()
    };
    let first_8080 = vi["filter_chains"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["filter_chain_match"]["destination_port"] == 8080)
        .unwrap();
    assert_eq!(alpn(first_8080), json!(["h2", "http/1.1"]));
    assert_eq!(
        alpn(first_8080 + 2),
        json!(["istio-peer-exchange", "h2", "http/1.1"])
    );
    // populateListenerFilters: HTTP inspector off where no chain needs it (15006, 9000).
    let http_insp = &vi["listener_filters"][2];
    assert_eq!(http_insp["name"], "envoy.filters.listener.http_inspector");
    assert_eq!(
        http_insp["filter_disabled"]["or_match"]["rules"][0]["destination_port_range"]["start"],
        9000
    );
    // Inbound clusters follow the Service targets.
    let names: Vec<&str> = x
        .clusters
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"inbound|8080||") && names.contains(&"inbound|9000||"));
    assert!(!names.contains(&"inbound|9090||"));
}

#[test]
fn strict_and_disable_chain_shapes() {
    let x = render(&echo_world("STRICT"), "echo-1");
    assert_eq!(
        shape(&x, Some(8080)),
        vec![
            s(
                "tls",
                "istio-http/1.0,istio-http/1.1,istio-h2",
                "http_connection_manager",
                true
            ),
            s("tls", "", "tcp_proxy", true),
        ]
    );
    assert_eq!(shape(&x, Some(9000)), vec![s("tls", "", "tcp_proxy", true)]);
    let x = render(&echo_world("DISABLE"), "echo-1");
    assert_eq!(
        shape(&x, Some(8080)),
        vec![
            s(
                "raw_buffer",
                "http/1.1,h2c",
                "http_connection_manager",
                false
            ),
            s("raw_buffer", "", "tcp_proxy", false),
        ]
    );
}

#[test]
fn named_target_ports_resolve_per_pod_and_oldest_service_wins() {
    // getFilterChainsByServicePort: target port per pod, oldest Service decides the protocol.
    let w = World::new(vec![
        cm("1.24"),
        pod("a-1", "foo", "web", "127.10.0.8", &[("web", 8080)]),
        pod("b-1", "foo", "web", "127.10.0.12", &[("web", 9090)]),
        svc(
            "web-http",
            "foo",
            "web",
            json!([{"name": "http", "port": 80, "targetPort": "web"}]),
            "2024-01-01T00:00:00Z",
        ),
        svc(
            "web-tcp",
            "foo",
            "web",
            json!([{"name": "tcp", "port": 81, "targetPort": "web"}]),
            "2024-01-02T00:00:00Z",
        ),
    ]);
    let a = render(&w, "a-1");
    assert_eq!(
        shape(&a, Some(8080)).len(),
        2,
        "HTTP PERMISSIVE from the older web-http"
    );
    assert!(shape(&a, Some(9090)).is_empty());
    let b = render(&w, "b-1");
    assert_eq!(shape(&b, Some(9090)).len(), 2);
}

#[test]
fn headless_services_get_original_dst_and_all_or_nothing_mtls() {
    // convertResolution + BestEffortInferServiceMTLSMode + applyUpstreamTLSSettings.
    let mut plain = pod("db-1", "foo", "db", "127.10.0.16", &[("", 8080)]);
    plain["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("security.istio.io/tlsMode");
    let slice = |ips: &[&str]| {
        let eps: Vec<Value> = ips
            .iter()
            .map(|ip| {
                let pod = if *ip == "127.10.0.12" { "db-0" } else { "db-1" };
                json!({"addresses": [ip], "conditions": {"ready": true},
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": "foo"}})
            })
            .collect();
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "db-x", "namespace": "foo", "labels": {"kubernetes.io/service-name": "db"}},
               "endpoints": eps, "ports": [{"name": "http", "port": 8080}]})
    };
    let mut headless = svc(
        "db",
        "foo",
        "db",
        json!([{"name": "http", "port": 8080}, {"name": "tcp-db", "port": 5432}]),
        "",
    );
    headless["spec"]["clusterIP"] = json!("None");
    let base = vec![
        cm("1.24"),
        pa("istio-system", "STRICT", None),
        pod("sleep-1", "foo", "sleep", "127.10.0.4", &[]),
        pod("db-0", "foo", "db", "127.10.0.12", &[("", 8080)]),
        headless,
    ];
    let mut w = World::new(base.clone());
    w.objects.push(slice(&["127.10.0.12"]));
    let x = render(&w, "sleep-1");
    let c = x
        .clusters
        .iter()
        .find(|c| c["name"] == "outbound|8080||db.foo.svc.cluster.local")
        .unwrap();
    assert_eq!(c["type"], "ORIGINAL_DST");
    assert!(c.get("transport_socket_matches").is_none());
    assert_eq!(c["transport_socket"]["name"], "envoy.transport_sockets.tls");
    assert_eq!(c["original_dst_lb_config"]["use_http_header"], true);
    // LAB: the TCP port keeps EDS (headless.rs original_dst_cluster).
    let tcp = x
        .clusters
        .iter()
        .find(|c| c["name"] == "outbound|5432||db.foo.svc.cluster.local")
        .unwrap();
    assert_eq!(tcp["type"], "EDS");
    let rc = x.routes.iter().find(|r| r["name"] == "8080").unwrap();
    let doms = &rc["virtual_hosts"][0]["domains"];
    assert!(doms
        .as_array()
        .unwrap()
        .contains(&json!("*.db.foo.svc.cluster.local")));
    // One endpoint without a sidecar: plaintext to all of them.
    let mut w = World::new(base);
    w.objects.push(plain);
    w.objects.push(slice(&["127.10.0.12", "127.10.0.16"]));
    let x = render(&w, "sleep-1");
    let c = x
        .clusters
        .iter()
        .find(|c| c["name"] == "outbound|8080||db.foo.svc.cluster.local")
        .unwrap();
    assert!(c.get("transport_socket").is_none() && c.get("transport_socket_matches").is_none());
}

fn gateway_world(extra: Vec<Value>) -> World {
    let mut gw = pod(
        "istio-ingressgateway-1",
        "istio-system",
        "istio-ingressgateway",
        "127.10.0.20",
        &[("http2", 8080)],
    );
    gw["metadata"]["labels"]["istio"] = json!("ingressgateway");
    gw["spec"]["containers"] = json!([{"name": "istio-proxy", "args": ["proxy", "router"], "ports": [{"containerPort": 8080}]}]);
    let mut objects = vec![
        cm("1.24"),
        gw,
        svc(
            "istio-ingressgateway",
            "istio-system",
            "istio-ingressgateway",
            json!([{"name": "http2", "port": 80, "targetPort": 8080}]),
            "",
        ),
        pod("httpbin-1", "foo", "httpbin", "127.10.0.8", &[("", 8080)]),
        svc(
            "httpbin",
            "foo",
            "httpbin",
            json!([{"name": "http", "port": 8000, "targetPort": 8080}]),
            "",
        ),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "foo"},
               "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*.example.com"]}]}}),
    ];
    objects.extend(extra);
    World::new(objects)
}

#[test]
fn gateway_listens_on_the_target_port_and_routes_bound_virtual_services() {
    // gateway.go buildGatewayListeners / buildGatewayHTTPRouteConfig; model/gateway.go resolvePorts.
    let x = render(&gateway_world(vec![]), "istio-ingressgateway-1");
    assert_eq!(x.listeners.len(), 1);
    let l = &x.listeners[0];
    assert_eq!(l["name"], "0.0.0.0_8080");
    assert_eq!(l["address"]["socket_address"]["port_value"], 8080);
    let rc = &x.routes[0];
    assert_eq!(rc["name"], "http.8080");
    assert_eq!(rc["virtual_hosts"][0]["name"], "blackhole:80");
    assert_eq!(rc["virtual_hosts"][0]["routes"], json!([]));
    assert!(x.clusters.iter().all(|c| c["name"] != "PassthroughCluster"
        && !c["name"].as_str().unwrap().starts_with("inbound|")));
    let vs = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "httpbin", "namespace": "foo"},
                    "spec": {"hosts": ["httpbin.example.com"], "gateways": ["gw"], "http": [{"route": [{"destination": {"host": "httpbin"}}]}]}});
    let x = render(&gateway_world(vec![vs]), "istio-ingressgateway-1");
    let vh = &x.routes[0]["virtual_hosts"][0];
    assert_eq!(vh["name"], "httpbin.example.com:80");
    assert_eq!(vh["domains"], json!(["httpbin.example.com"]));
    assert_eq!(
        vh["routes"][0]["route"]["cluster"],
        "outbound|8000||httpbin.foo.svc.cluster.local"
    );
    // A route to a subset names the subset cluster (route.go); the DR defines it.
    let vs = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "httpbin", "namespace": "foo"},
                    "spec": {"hosts": ["*.example.com"], "gateways": ["foo/gw"], "http": [
                        {"match": [{"uri": {"prefix": "/v1"}}], "route": [{"destination": {"host": "httpbin.foo.svc.cluster.local", "subset": "v1"}}]}]}});
    let dr = json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "httpbin", "namespace": "foo"},
                    "spec": {"host": "httpbin", "subsets": [{"name": "v1", "labels": {"app": "httpbin"}}]}});
    let x = render(&gateway_world(vec![vs, dr]), "istio-ingressgateway-1");
    let vh = &x.routes[0]["virtual_hosts"][0];
    assert_eq!(vh["domains"], json!(["*.example.com"]));
    assert_eq!(vh["routes"][0]["match"]["prefix"], "/v1");
    assert_eq!(
        vh["routes"][0]["route"]["cluster"],
        "outbound|8000|v1|httpbin.foo.svc.cluster.local"
    );
    assert!(x
        .clusters
        .iter()
        .any(|c| c["name"] == "outbound|8000|v1|httpbin.foo.svc.cluster.local"));
    // The mesh's sidecars do not take a gateway-only VirtualService.
    let x = render(
        &gateway_world(vec![
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "h", "namespace": "foo"},
            "spec": {"hosts": ["httpbin"], "gateways": ["gw"], "http": [{"route": [{"destination": {"host": "httpbin", "subset": "x"}}]}]}}),
        ]),
        "httpbin-1",
    );
    let rc = x.routes.iter().find(|r| r["name"] == "8000").unwrap();
    assert_eq!(
        rc["virtual_hosts"][0]["routes"][0]["route"]["cluster"],
        "outbound|8000||httpbin.foo.svc.cluster.local"
    );
}

fn ef(name: &str, ns: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
           "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": spec})
}

fn http_filter_names(l: &Value, port: u64) -> Vec<String> {
    l["filter_chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["filter_chain_match"]["destination_port"] == port)
        .and_then(|c| {
            c["filters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "envoy.filters.network.http_connection_manager")
        })
        .map(|h| {
            h["typed_config"]["http_filters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn envoy_filters_patch_http_filters_in_priority_order() {
    // listener_patch.go patchHTTPFilters; push_context.go EnvoyFilters ordering.
    let lua = |code: &str| {
        json!({"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "defaultSourceCode": {"inlineString": code}}})
    };
    let insert = |value: Value, op: &str| {
        json!({"configPatches": [{"applyTo": "HTTP_FILTER",
        "match": {"context": "SIDECAR_INBOUND", "listener": {"portNumber": 8080, "filterChain": {"filter": {
            "name": "envoy.filters.network.http_connection_manager", "subFilter": {"name": "envoy.filters.http.router"}}}}},
        "patch": {"operation": op, "value": value}}]})
    };
    let mut first = insert(lua("-- a"), "INSERT_BEFORE");
    first["workloadSelector"] = json!({"labels": {"app": "echo"}});
    let mut second = insert(
        json!({"name": "mesh-wide.marker", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer", "maxRequestBytes": 1024}}),
        "INSERT_FIRST",
    );
    second["priority"] = json!(-1);
    let mut w = echo_world("PERMISSIVE");
    w.objects.push(ef("a-lua", "foo", first));
    w.objects.push(ef("z-mesh", "istio-system", second));
    w.objects
        .push(ef("other", "bar", insert(lua("-- never"), "ADD")));
    let x = render(&w, "echo-1");
    assert_eq!(x.envoy_filters, vec!["foo/a-lua", "istio-system/z-mesh"]);
    let vi = listener(&x, "virtualInbound");
    assert_eq!(
        http_filter_names(vi, 8080),
        [
            "mesh-wide.marker",
            // The metrics pass's peer-metadata filter (standing in for
            // istio.metadata_exchange) is in the chain before EnvoyFilters
            // apply, as Istio's own filters are.
            "envoy.filters.http.header_to_metadata",
            "envoy.filters.http.fault",
            "envoy.filters.http.cors",
            "envoy.filters.http.lua",
            "envoy.filters.http.router",
        ]
    );
    let chain = vi["filter_chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["filter_chain_match"]["destination_port"] == 8080)
        .unwrap();
    let hcm = &chain["filters"].as_array().unwrap().last().unwrap()["typed_config"];
    let lua_cfg = &hcm["http_filters"][4]["typed_config"];
    assert_eq!(lua_cfg["default_source_code"]["inline_string"], "-- a");
    assert_eq!(
        hcm["http_filters"][0]["typed_config"]["max_request_bytes"],
        1024
    );
    // Outbound listeners are SIDECAR_OUTBOUND: untouched.
    assert!(x
        .listeners
        .iter()
        .filter(|l| l["name"] != "virtualInbound")
        .all(|l| { !l.to_string().contains("envoy.filters.http.lua") }));
}

#[test]
fn envoy_filter_cluster_and_chain_operations() {
    // cluster_patch.go ApplyClusterMerge/InsertedClusters; listener_patch.go patchFilterChain.
    let spec = json!({"configPatches": [
        {"applyTo": "CLUSTER", "match": {"context": "SIDECAR_OUTBOUND", "cluster": {"service": "echo-tcp.foo.svc.cluster.local", "portNumber": 9000}},
         "patch": {"operation": "MERGE", "value": {"connectTimeout": "3s", "circuitBreakers": {"thresholds": [{"maxConnections": 7}]}}}},
        {"applyTo": "CLUSTER", "match": {"cluster": {"name": "BlackHoleCluster"}}, "patch": {"operation": "REMOVE"}},
        {"applyTo": "CLUSTER", "patch": {"operation": "ADD", "value": {"name": "lab-extra", "type": "STATIC", "connectTimeout": "1s"}}},
        {"applyTo": "FILTER_CHAIN", "match": {"context": "SIDECAR_INBOUND", "listener": {"portNumber": 8080, "filterChain": {"transportProtocol": "raw_buffer"}}},
         "patch": {"operation": "REMOVE"}},
        {"applyTo": "NETWORK_FILTER", "match": {"context": "SIDECAR_INBOUND", "listener": {"portNumber": 9000, "filterChain": {"filter": {"name": "envoy.filters.network.tcp_proxy"}}}},
         "patch": {"operation": "MERGE", "value": {"typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "idleTimeout": "42s"}}}},
    ]});
    let mut w = echo_world("PERMISSIVE");
    w.objects.push(ef("ops", "foo", spec));
    let x = render(&w, "echo-1");
    let c = x
        .clusters
        .iter()
        .find(|c| c["name"] == "outbound|9000||echo-tcp.foo.svc.cluster.local")
        .unwrap();
    assert_eq!(c["connect_timeout"], "3s");
    // Repeated fields append (proto.Merge): the default thresholds stay first.
    let t = c["circuit_breakers"]["thresholds"].as_array().unwrap();
    assert_eq!((t.len(), t[1]["max_connections"].as_u64()), (2, Some(7)));
    assert!(x.clusters.iter().all(|c| c["name"] != "BlackHoleCluster"));
    let extra = x
        .clusters
        .iter()
        .find(|c| c["name"] == "lab-extra")
        .unwrap();
    assert_eq!(extra["@type"], xds::TYPE_CLUSTER);
    let names = shape(&x, Some(8080));
    assert!(names.iter().all(|c| c.0 == "tls"), "{names:?}");
    let vi = listener(&x, "virtualInbound");
    let tcp = vi["filter_chains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["filter_chain_match"]["destination_port"] == 9000)
        .all(|c| c["filters"][0]["typed_config"]["idle_timeout"] == "42s");
    assert!(tcp);
}

#[test]
fn envoy_filter_values_normalise_to_snake_case_but_keep_data() {
    let v = envoy_filter::normalize(
        &json!({"connectTimeout": "1s", "metadata": {"filterMetadata": {"myNs": {"someKey": 1}}},
        "typedExtensionProtocolOptions": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {"explicitHttpConfig": {}}}}),
    );
    assert_eq!(v["connect_timeout"], "1s");
    assert_eq!(v["metadata"]["filter_metadata"]["myNs"]["someKey"], 1);
    assert!(v["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        .get("explicit_http_config")
        .is_some());
}
