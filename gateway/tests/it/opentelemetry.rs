//! The opentelemetry plugin: a real gateway exports to an OTLP/HTTP sink that decodes the
//! protobuf; the upstream sees the injected trace context.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{echo_server, gateway, get};

/// What the sink received in one export request.
pub(crate) struct Export {
    pub(crate) content_type: String,
    pub(crate) request: ExportTraceServiceRequest,
}

/// An OTLP/HTTP traces sink; answers `fail_first` requests with 500, then 200.
pub(crate) async fn sink(fail_first: usize) -> (SocketAddr, mpsc::UnboundedReceiver<Export>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let tx = tx.clone();
                    let seen = Arc::clone(&seen);
                    async move {
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let request = ExportTraceServiceRequest::decode(body).unwrap();
                        tx.send(Export {
                            content_type,
                            request,
                        })
                        .ok();
                        let status = if seen.fetch_add(1, Ordering::SeqCst) < fail_first {
                            500
                        } else {
                            200
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                    .ok();
            });
        }
    });
    (addr, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Export>) -> Export {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("no export within 20 s")
        .expect("sink closed")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Any> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn config(sink: SocketAddr, upstream: SocketAddr, propagation: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: coupon
  url: http://{upstream}
  routes:
  - name: coupon_route
    paths: [/coupon]
plugins:
- name: opentelemetry
  instance_name: opentelemetry1
  enabled: true
  config:
    traces_endpoint: http://{sink}/v1/traces
    queue: {{max_coalescing_delay: 0.1}}
{propagation}
    resource_attributes:
      service.name: "kong-otel"
"#
    )
}

const SEED_PROPAGATION: &str =
    "    propagation:\n      default_format: \"w3c\"\n      inject: [\"w3c\"]";
const TRACING_ALL: &[(&str, &str)] = &[
    ("KONG_TRACING_INSTRUMENTATIONS", "all"),
    ("KONG_TRACING_SAMPLING_RATE", "1.0"),
];

fn spans(export: &Export) -> &[Span] {
    &export.request.resource_spans[0].scope_spans[0].spans
}

#[tokio::test]
async fn seed_config_exports_kong_spans_and_injects_the_balancer_span_id() {
    let (sink_addr, mut rx) = sink(0).await;
    let upstream = echo_server("coupon").await;
    let gw = gateway(
        &config(sink_addr, upstream.addr, SEED_PROPAGATION),
        TRACING_ALL,
    )
    .await;
    let proxy = format!("http://{}", gw.proxy[0]);
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";
    let reply = get(
        &format!("{proxy}/coupon/apply?code=SAVE10"),
        &[("traceparent", incoming)],
    )
    .await;
    assert_eq!(reply.status, 200);
    let traceparent = reply.upstream_header("traceparent").unwrap();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_ne!(
        parts[1], "4bf92f3577b34da6a3ce929d0e0e4736",
        "inject-only config must not continue the trace"
    );
    assert_eq!(parts[3], "01");

    let export = next(&mut rx).await;
    assert_eq!(export.content_type, "application/x-protobuf");
    let rs = &export.request.resource_spans;
    assert_eq!(rs.len(), 1);
    let resource = rs[0].resource.as_ref().unwrap();
    let keys: Vec<&str> = resource
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(
        keys,
        ["service.name", "service.instance.id", "service.version"]
    );
    assert_eq!(
        attr(&resource.attributes, "service.name"),
        Some(&Any::StringValue("kong-otel".into()))
    );
    assert_eq!(
        attr(&resource.attributes, "service.version"),
        Some(&Any::StringValue("3.9.0".into()))
    );
    let scope = rs[0].scope_spans[0].scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("kong-internal", "0.1.0")
    );

    let spans = spans(&export);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "kong",
            "kong.router",
            "kong.access.plugin.opentelemetry",
            "kong.header_filter.plugin.opentelemetry",
            "kong.balancer"
        ]
    );
    let kinds: Vec<i32> = spans.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [2, 1, 1, 1, 3]);
    let root = &spans[0];
    assert!(root.parent_span_id.is_empty());
    assert_eq!(hex(&root.trace_id), parts[1]);
    for child in &spans[1..] {
        assert_eq!(child.parent_span_id, root.span_id);
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.status.as_ref().map(|s| s.code), Some(0));
    }
    let balancer = &spans[4];
    assert_eq!(
        hex(&balancer.span_id),
        parts[2],
        "upstream got the balancer span id"
    );
    assert_eq!(balancer.end_time_unix_nano, root.end_time_unix_nano);
    assert_eq!(root.start_time_unix_nano % 1_000_000, 0);
    assert!(root.end_time_unix_nano >= root.start_time_unix_nano);

    let root_keys: Vec<&str> = root.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        root_keys,
        [
            "http.method",
            "http.url",
            "http.host",
            "http.scheme",
            "http.flavor",
            "http.client_ip",
            "net.peer.ip",
            "kong.request.id",
            "http.status_code",
            "http.route"
        ]
    );
    let a = &root.attributes;
    assert_eq!(
        attr(a, "http.method"),
        Some(&Any::StringValue("GET".into()))
    );
    assert_eq!(
        attr(a, "http.url"),
        Some(&Any::StringValue(
            "http://127.0.0.1/coupon/apply?code=SAVE10".into()
        ))
    );
    assert_eq!(
        attr(a, "http.flavor"),
        Some(&Any::StringValue("1.1".into()))
    );
    assert_eq!(attr(a, "http.status_code"), Some(&Any::IntValue(200)));
    assert_eq!(
        attr(a, "http.route"),
        Some(&Any::StringValue("/coupon".into()))
    );
    assert_eq!(
        attr(a, "kong.request.id"),
        Some(&Any::StringValue(
            reply.header("x-kong-request-id").unwrap().into()
        ))
    );
    let b = &balancer.attributes;
    assert_eq!(attr(b, "try_count"), Some(&Any::DoubleValue(1.0)));
    assert_eq!(
        attr(b, "net.peer.ip"),
        Some(&Any::StringValue("127.0.0.1".into()))
    );
    assert_eq!(
        attr(b, "net.peer.port"),
        Some(&Any::DoubleValue(f64::from(upstream.addr.port())))
    );
    assert_eq!(
        attr(b, "net.peer.name"),
        Some(&Any::StringValue("127.0.0.1".into()))
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn extract_continues_the_incoming_trace_and_failed_exports_are_retried() {
    let (sink_addr, mut rx) = sink(1).await;
    let upstream = echo_server("coupon").await;
    let propagation = "    propagation:\n      extract: [w3c, b3, jaeger, ot]\n      inject: [preserve]\n      default_format: \"w3c\"";
    let gw = gateway(&config(sink_addr, upstream.addr, propagation), TRACING_ALL).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    let reply = get(
        &format!("{proxy}/coupon"),
        &[(
            "uber-trace-id",
            "4bf92f3577b34da6a3ce929d0e0e4736:b7ad6b7169203331:0:1",
        )],
    )
    .await;
    let jaeger = reply.upstream_header("uber-trace-id").unwrap();
    let parts: Vec<&str> = jaeger.split(':').collect();
    assert_eq!(parts[0], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(parts[3], "01");
    assert!(reply.upstream_header("traceparent").is_none());
    let first = next(&mut rx).await;
    let retried = next(&mut rx).await;
    assert_eq!(
        spans(&first),
        spans(&retried),
        "the same batch is sent again"
    );
    let root = &spans(&retried)[0];
    assert_eq!(hex(&root.parent_span_id), "b7ad6b7169203331");
    assert_eq!(hex(&root.span_id), parts[2]);
    let balancer = spans(&retried).last().unwrap();
    assert_eq!(hex(&balancer.span_id), parts[1]);
    gw.shutdown().await;
}

#[tokio::test]
async fn tracing_off_still_propagates_unsampled() {
    let (sink_addr, _rx) = sink(0).await;
    let upstream = echo_server("coupon").await;
    let gw = gateway(&config(sink_addr, upstream.addr, SEED_PROPAGATION), &[]).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    let reply = get(&format!("{proxy}/coupon"), &[]).await;
    let traceparent = reply.upstream_header("traceparent").unwrap();
    assert!(traceparent.ends_with("-00"), "{traceparent}");
    assert_eq!(traceparent.len(), 55);
    gw.shutdown().await;
}

#[tokio::test]
async fn invalid_config_is_rejected_with_the_field() {
    let admin_gw = gateway("", &[]).await;
    let admin = format!("http://{}", admin_gw.admin[0]);
    let yaml = "_format_version: \"3.0\"\nplugins:\n- name: opentelemetry\n  config:\n    sampling_rate: 2\n    propagation: {inject: [zipkin]}\n";
    let r = crate::support::send("POST", &format!("{admin}/config"), &[], yaml).await;
    assert_eq!(r.status, 400);
    let text = r.text();
    assert!(text.contains("sampling_rate"), "{text}");
    assert!(
        text.contains("at least one of these fields must be non-empty"),
        "{text}"
    );
    assert!(text.contains("expected one of"), "{text}");
    admin_gw.shutdown().await;
}

#[tokio::test]
async fn no_route_yields_root_and_failed_router_spans() {
    let (sink_addr, mut rx) = sink(0).await;
    let upstream = echo_server("coupon").await;
    let gw = gateway(
        &config(sink_addr, upstream.addr, SEED_PROPAGATION),
        TRACING_ALL,
    )
    .await;
    let proxy = format!("http://{}", gw.proxy[0]);
    assert_eq!(get(&format!("{proxy}/nope"), &[]).await.status, 404);
    let export = next(&mut rx).await;
    let spans = spans(&export);
    assert_eq!(spans[0].name, "kong");
    assert_eq!(
        attr(&spans[0].attributes, "http.status_code"),
        Some(&Any::IntValue(404))
    );
    assert_eq!(
        attr(&spans[0].attributes, "http.route"),
        Some(&Any::StringValue(String::new()))
    );
    assert_eq!(spans[0].status.as_ref().map(|s| s.code), Some(0));
    assert_eq!(spans[1].name, "kong.router");
    assert_eq!(spans[1].status.as_ref().map(|s| s.code), Some(2));
    assert!(spans.iter().all(|s| s.name != "kong.balancer"));
    gw.shutdown().await;
}

#[tokio::test]
async fn failed_tries_are_error_balancer_spans() {
    let (sink_addr, mut rx) = sink(0).await;
    let closed = crate::support::closed_port().await;
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: down
  url: http://127.0.0.1:{closed}
  retries: 1
  routes:
  - name: down_route
    paths: [/down]
plugins:
- name: opentelemetry
  config:
    traces_endpoint: http://{sink_addr}/v1/traces
    queue: {{max_coalescing_delay: 0.1}}
"#
    );
    let gw = gateway(&yaml, TRACING_ALL).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    assert_eq!(get(&format!("{proxy}/down"), &[]).await.status, 502);
    let export = next(&mut rx).await;
    let balancers: Vec<&Span> = spans(&export)
        .iter()
        .filter(|s| s.name == "kong.balancer")
        .collect();
    assert_eq!(balancers.len(), 2);
    for (i, span) in balancers.iter().enumerate() {
        assert_eq!(
            attr(&span.attributes, "try_count"),
            Some(&Any::DoubleValue((i + 1) as f64))
        );
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        assert_eq!(
            attr(&span.attributes, "http.status_code"),
            Some(&Any::IntValue(502))
        );
    }
    assert_eq!(spans(&export)[0].status.as_ref().map(|s| s.code), Some(0));
    gw.shutdown().await;
}

fn host_config(sink: SocketAddr, url: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: coupon
  url: {url}
  retries: 0
  routes:
  - name: coupon_route
    paths: [/coupon]
plugins:
- name: opentelemetry
  config:
    traces_endpoint: http://{sink}/v1/traces
    queue: {{max_coalescing_delay: 0.1}}
{SEED_PROPAGATION}
"#
    )
}

#[tokio::test]
async fn host_name_upstreams_get_a_dns_span_in_kongs_order() {
    let (sink_addr, mut rx) = sink(0).await;
    let upstream = echo_server("coupon").await;
    let port = upstream.addr.port();
    let url = format!("http://localhost:{port}");
    let gw = gateway(&host_config(sink_addr, &url), TRACING_ALL).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    assert_eq!(get(&format!("{proxy}/coupon/apply"), &[]).await.status, 200);
    let export = next(&mut rx).await;
    let spans = spans(&export);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/otel-spans-proxied-request.json")).unwrap();
    let kong_spans = fixture["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap();
    let kong_names: Vec<&str> = kong_spans
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, kong_names);
    let dns = spans.iter().find(|s| s.name == "kong.dns").unwrap();
    assert_eq!(dns.kind, 3, "CLIENT");
    assert_eq!(dns.parent_span_id, spans[0].span_id);
    let keys: Vec<&str> = dns.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["dns.record.domain", "dns.record.port", "dns.record.ip"]
    );
    assert_eq!(
        attr(&dns.attributes, "dns.record.domain"),
        Some(&Any::StringValue("localhost".into()))
    );
    assert_eq!(
        attr(&dns.attributes, "dns.record.port"),
        Some(&Any::DoubleValue(f64::from(port)))
    );
    match attr(&dns.attributes, "dns.record.ip") {
        Some(Any::StringValue(ip)) => {
            assert!(ip.parse::<std::net::IpAddr>().unwrap().is_loopback())
        }
        other => panic!("dns.record.ip: {other:?}"),
    }
    assert!(dns.start_time_unix_nano <= dns.end_time_unix_nano);
    assert_eq!(dns.status.as_ref().map(|s| s.code), Some(0));
    gw.shutdown().await;
}

#[tokio::test]
async fn dns_spans_follow_the_instrumentation_and_failures_are_errors() {
    let (sink_addr, mut rx) = sink(0).await;
    let upstream = echo_server("coupon").await;
    // An IP host resolves nothing: no kong.dns span.
    let url = format!("http://{}", upstream.addr);
    let gw = gateway(&host_config(sink_addr, &url), TRACING_ALL).await;
    assert_eq!(
        get(&format!("http://{}/coupon/x", gw.proxy[0]), &[])
            .await
            .status,
        200
    );
    assert!(spans(&next(&mut rx).await)
        .iter()
        .all(|s| s.name != "kong.dns"));
    gw.shutdown().await;

    // dns_query not listed: no kong.dns span even for a host name.
    let url = format!("http://localhost:{}", upstream.addr.port());
    let only = [
        ("KONG_TRACING_INSTRUMENTATIONS", "balancer,router"),
        ("KONG_TRACING_SAMPLING_RATE", "1.0"),
    ];
    let gw = gateway(&host_config(sink_addr, &url), &only).await;
    assert_eq!(
        get(&format!("http://{}/coupon/x", gw.proxy[0]), &[])
            .await
            .status,
        200
    );
    let names: Vec<String> = spans(&next(&mut rx).await)
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["kong", "kong.router", "kong.balancer"]);
    gw.shutdown().await;

    // A name that does not resolve: ERROR with an exception event, and no address.
    let gw = gateway(
        &host_config(sink_addr, "http://no-such-host.invalid:80"),
        TRACING_ALL,
    )
    .await;
    let status = get(&format!("http://{}/coupon/x", gw.proxy[0]), &[])
        .await
        .status;
    assert!(status.is_server_error(), "{status}");
    let export = next(&mut rx).await;
    let dns = spans(&export)
        .iter()
        .find(|s| s.name == "kong.dns")
        .expect("a kong.dns span")
        .clone();
    assert_eq!(dns.status.as_ref().map(|s| s.code), Some(2));
    assert!(attr(&dns.attributes, "dns.record.ip").is_none());
    assert_eq!(dns.events.len(), 1);
    assert_eq!(dns.events[0].name, "exception");
    assert!(matches!(
        attr(&dns.events[0].attributes, "exception.message"),
        Some(Any::StringValue(m)) if !m.is_empty()
    ));
    gw.shutdown().await;
}

#[tokio::test]
async fn each_tracing_instrumentation_emits_its_spans() {
    let (sink_addr, mut rx) = sink(0).await;
    let upstream = echo_server("coupon").await;
    let url = format!("http://localhost:{}", upstream.addr.port());
    // The implemented plugins have no rewrite handler, the gateway is DB-less and no plugin
    // makes HTTP calls while handling a request: plugin_rewrite, db_query and http_client add
    // no span here, as in Kong with the same plugins.
    let cases: &[(&str, &[&str])] = &[
        ("request", &["kong"]),
        ("router", &["kong", "kong.router"]),
        ("plugin_rewrite", &["kong"]),
        (
            "plugin_access",
            &["kong", "kong.access.plugin.opentelemetry"],
        ),
        (
            "plugin_header_filter",
            &["kong", "kong.header_filter.plugin.opentelemetry"],
        ),
        ("dns_query", &["kong", "kong.dns"]),
        ("balancer", &["kong", "kong.balancer"]),
        ("db_query", &["kong"]),
        ("http_client", &["kong"]),
        (
            "all",
            &[
                "kong",
                "kong.router",
                "kong.access.plugin.opentelemetry",
                "kong.dns",
                "kong.header_filter.plugin.opentelemetry",
                "kong.balancer",
            ],
        ),
    ];
    for (value, expected) in cases {
        let env = [
            ("KONG_TRACING_INSTRUMENTATIONS", *value),
            ("KONG_TRACING_SAMPLING_RATE", "1.0"),
        ];
        let gw = gateway(&host_config(sink_addr, &url), &env).await;
        let reply = get(&format!("http://{}/coupon/x", gw.proxy[0]), &[]).await;
        assert_eq!(reply.status, 200);
        let export = next(&mut rx).await;
        let names: Vec<&str> = spans(&export).iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, *expected, "tracing_instrumentations = {value}");
        // The upstream gets the balancer span id only with balancer instrumentation.
        let traceparent = reply.upstream_header("traceparent").unwrap();
        let injected = traceparent.split('-').nth(2).unwrap().to_owned();
        let carrier = if expected.contains(&"kong.balancer") {
            "kong.balancer"
        } else {
            "kong"
        };
        let span = spans(&export).iter().find(|s| s.name == carrier).unwrap();
        assert_eq!(injected, hex(&span.span_id), "{value}");
        gw.shutdown().await;
    }
}

/// The seed's two files (services/routes and all three plugins), unchanged except for the
/// host names and ports, which point at local servers: the request yields Kong's six spans,
/// the tcp-log line with the flattened trace id, and the prometheus series.
#[tokio::test]
async fn seed_files_export_kongs_spans_tcp_log_line_and_metrics() {
    use tokio::io::AsyncBufReadExt;

    let (sink_addr, mut rx) = sink(0).await;
    let upstream = echo_server("coupon").await;
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let (line_tx, mut lines) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            let tx = line_tx.clone();
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    tx.send(line).ok();
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let services = include_str!("../fixtures/seeds/000-kong-services-routes.yaml")
        .replace("coupon.default", "localhost")
        .replace("port: 8080", &format!("port: {}", upstream.addr.port()));
    let collector = "collector-kong-collector.opentelemetry-operator-system.svc.cluster.local";
    let plugins = include_str!("../fixtures/seeds/000-kong-plugins-all.yaml")
        .replace(&format!("{collector}:4318"), &sink_addr.to_string())
        .replace(collector, "127.0.0.1")
        .replace("54525", &tcp_port.to_string());
    let files = [
        dir.path().join("kong-services-routes.yaml"),
        dir.path().join("kong-plugins.yaml"),
    ];
    std::fs::write(&files[0], services).unwrap();
    std::fs::write(&files[1], plugins).unwrap();
    let config = otelpipe_gateway::declarative::load_files(&files).unwrap();
    let mut vars: Vec<(String, String)> = [
        ("KONG_PROXY_LISTEN", "127.0.0.1:0"),
        ("KONG_ADMIN_LISTEN", "127.0.0.1:0"),
        ("KONG_STATUS_LISTEN", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    vars.extend(
        TRACING_ALL
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let conf = otelpipe_gateway::conf::KongConf::load(None, vars).unwrap();
    let gw = otelpipe_gateway::server::Gateway::start(conf, config)
        .await
        .unwrap();

    let reply = get(
        &format!("http://{}/coupon/apply?code=SAVE10", gw.proxy[0]),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200);
    let traceparent = reply.upstream_header("traceparent").unwrap();
    let trace_id = traceparent.split('-').nth(1).unwrap().to_owned();

    let export = next(&mut rx).await;
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/otel-spans-proxied-request.json")).unwrap();
    let kong_spans = fixture["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap();
    let ours = spans(&export);
    assert_eq!(ours.len(), kong_spans.len());
    for (span, kong) in ours.iter().zip(kong_spans) {
        assert_eq!(span.name, kong["name"].as_str().unwrap());
        assert_eq!(
            i64::from(span.kind),
            kong["kind"].as_i64().unwrap(),
            "{}",
            span.name
        );
        assert_eq!(hex(&span.trace_id), trace_id);
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        let kong_keys: Vec<&str> = kong["attributes"]
            .as_array()
            .map(|a| a.iter().map(|kv| kv["key"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(keys, kong_keys, "{}", span.name);
    }
    let resource = export.request.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attr(&resource.attributes, "service.name"),
        Some(&Any::StringValue("kong-otel".into()))
    );

    let line = tokio::time::timeout(Duration::from_secs(20), lines.recv())
        .await
        .expect("a tcp-log line within 20 s")
        .unwrap();
    let logged: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(logged["trace_id"], trace_id.as_str());
    assert_eq!(logged["service"]["host"], "localhost");
    // The stored entities as Kong serializes them: same keys, same (name-derived) ids.
    let kong_line: serde_json::Value = serde_json::from_str(
        include_str!("../fixtures/tcp-log-wire-proxied.ndjson")
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    for entity in ["route", "service"] {
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&logged[entity]), keys(&kong_line[entity]), "{entity}");
        for same in ["id", "name", "tags", "ws_id"] {
            assert_eq!(
                logged[entity][same], kong_line[entity][same],
                "{entity}.{same}"
            );
        }
    }

    let metrics = get(&format!("http://{}/metrics", gw.status[0]), &[])
        .await
        .text();
    assert!(
        metrics.contains("kong_http_requests_total{service=\"ecommerce_coupon_service\",route=\"ecommerce_coupon_route\",code=\"200\",source=\"service\",workspace=\"default\",consumer=\"\"} 1\n"),
        "{metrics}"
    );
    gw.shutdown().await;
}
