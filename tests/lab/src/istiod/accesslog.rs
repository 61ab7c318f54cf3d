//! Istio's default Envoy access log, by release, as `meshConfig.accessLogFile`
//! turns it on (istio/istio `pilot/pkg/model/telemetry_logging.go`
//! `FileAccessLogFromMeshConfig`; before 1.9 `pilot/pkg/networking/core/
//! v1alpha3/accesslog.go`, before 1.8 `listener.go`).
//!
//! LAB DIFFERENCE: the log always goes to `/dev/stdout` (Envoy's stdout is the
//! pod's `istio-proxy` log file), whatever path the mesh config names.

use super::version::IstioVersion;
use super::world::MeshConfig;
use serde_json::{json, Map, Value};

/// Envoy's own default format, which Istio 1.0 used (it set no format).
const ENVOY_DEFAULT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// 1.1 `EnvoyTextLogFormat` (mixer status, no transport failure reason, no route name).
const ISTIO_11: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%DYNAMIC_METADATA(istio.mixer:status)%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME%\n";

/// 1.2 `EnvoyTextLogFormat12` (adds the transport failure reason).
const ISTIO_12: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%DYNAMIC_METADATA(istio.mixer:status)%\" \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME%\n";

/// 1.3–1.7 `EnvoyTextLogFormat13` (adds the route name).
const ISTIO_13: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%DYNAMIC_METADATA(istio.mixer:status)%\" \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// 1.8 (mixer gone).
const ISTIO_18: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// 1.9–1.23 `EnvoyTextLogFormatIstio19` / `LegacyEnvoyTextLogFormat` (adds
/// response code details and connection termination details).
const ISTIO_19: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// 1.24+ `EnvoyTextLogFormat` (`%UPSTREAM_CLUSTER_RAW%`, istio/istio#52384).
const ISTIO_124: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// Istio's default TEXT format for a release.
pub fn text_format(v: IstioVersion) -> &'static str {
    if v.at_least(24) {
        ISTIO_124
    } else if v.at_least(9) {
        ISTIO_19
    } else if v.at_least(8) {
        ISTIO_18
    } else if v.at_least(3) {
        ISTIO_13
    } else if v.at_least(2) {
        ISTIO_12
    } else if v.at_least(1) {
        ISTIO_11
    } else {
        ENVOY_DEFAULT
    }
}

/// Istio's default JSON format (`EnvoyJSONLogFormat`, `…Istio19`): the
/// details fields from 1.9, `%UPSTREAM_CLUSTER_RAW%` from 1.25 (istio/istio
/// 1.25.0 `pilot/pkg/model/telemetry_logging.go` `EnvoyJSONLogFormatIstio`;
/// 1.24.0 still has `%UPSTREAM_CLUSTER%`).
pub fn json_format(v: IstioVersion) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, f: &str| {
        m.insert(k.to_string(), Value::String(f.to_string()));
    };
    put("start_time", "%START_TIME%");
    put("route_name", "%ROUTE_NAME%");
    put("method", "%REQ(:METHOD)%");
    put("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%");
    put("protocol", "%PROTOCOL%");
    put("response_code", "%RESPONSE_CODE%");
    put("response_flags", "%RESPONSE_FLAGS%");
    if v.at_least(9) {
        put("response_code_details", "%RESPONSE_CODE_DETAILS%");
        put(
            "connection_termination_details",
            "%CONNECTION_TERMINATION_DETAILS%",
        );
    }
    put("bytes_received", "%BYTES_RECEIVED%");
    put("bytes_sent", "%BYTES_SENT%");
    put("duration", "%DURATION%");
    put(
        "upstream_service_time",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    );
    put("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%");
    put("user_agent", "%REQ(USER-AGENT)%");
    put("request_id", "%REQ(X-REQUEST-ID)%");
    put("authority", "%REQ(:AUTHORITY)%");
    put("upstream_host", "%UPSTREAM_HOST%");
    put(
        "upstream_cluster",
        if v.at_least(25) {
            "%UPSTREAM_CLUSTER_RAW%"
        } else {
            "%UPSTREAM_CLUSTER%"
        },
    );
    put("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%");
    put("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%");
    put("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%");
    put("requested_server_name", "%REQUESTED_SERVER_NAME%");
    put(
        "upstream_transport_failure_reason",
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    );
    Value::Object(m)
}

/// The `access_log` entry for an HCM or tcp_proxy, or None when access
/// logging is off in the mesh config.
pub fn access_log(mesh: &MeshConfig, v: IstioVersion) -> Option<Value> {
    mesh.access_log_file.as_ref()?;
    let log_format = if mesh.access_log_json {
        json!({"json_format": json_format(v), "json_format_options": {"sort_properties": false}})
    } else {
        json!({"text_format_source": {"inline_string": text_format(v)}})
    };
    Some(json!({
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": "/dev/stdout",
            "log_format": log_format,
        }
    }))
}

/// The listener-level access log Istio adds (from 1.8, istio/istio 1.8
/// `accesslog.go`) so connections that match no filter chain are logged
/// (`NR` flag, `filter_chain_not_found` details): the same logger behind a
/// `response_flag_filter` on NR.
///
/// LAB DIFFERENCE: before 1.9 the lab still adds it, with the 1.9 format, so
/// `filter_chain_not_found` shows in every modelled release (1.8's format
/// had no response code details; earlier releases had no listener log).
pub fn listener_access_log(mesh: &MeshConfig, v: IstioVersion) -> Option<Value> {
    let mut al = access_log(
        mesh,
        if v.at_least(9) {
            v
        } else {
            IstioVersion { major: 1, minor: 9 }
        },
    )?;
    al["filter"] = json!({"response_flag_filter": {"flags": ["NR"]}});
    Some(al)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_release() {
        // telemetry_logging.go: UPSTREAM_CLUSTER_RAW in TEXT from 1.24 (#52384).
        assert!(text_format((1, 24).into()).contains("%UPSTREAM_CLUSTER_RAW%"));
        assert!(text_format((1, 23).into()).contains("%RESPONSE_CODE_DETAILS%"));
        assert!(!text_format((1, 8).into()).contains("%RESPONSE_CODE_DETAILS%"));
        // 1.0 set no format: Envoy's default line, no details, no cluster.
        assert!(!text_format((1, 0).into()).contains("UPSTREAM_CLUSTER"));
        assert!(access_log(&MeshConfig::default(), (1, 24).into()).is_none());
        // JSON: the raw cluster name from 1.25 (1.25.0 telemetry_logging.go).
        assert_eq!(
            json_format((1, 24).into())["upstream_cluster"],
            "%UPSTREAM_CLUSTER%"
        );
        assert_eq!(
            json_format((1, 25).into())["upstream_cluster"],
            "%UPSTREAM_CLUSTER_RAW%"
        );
    }
}
