//! OTLP/HTTP protobuf export (spec §8.6, §8.8): span batches as one `ResourceSpans`, log
//! batches as one `ResourceLogs`, each with scope `kong-internal 0.1.0`; `POST` with
//! `Content-Type: application/x-protobuf`, success only on 200.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::queue::Sender;

/// One OTLP/HTTP endpoint with the plugin's headers, timeouts and resource.
pub struct Endpoint {
    client: Client<HttpConnector, Full<Bytes>>,
    url: http::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    resource: OnceLock<Resource>,
    /// `resource` encoded, for span batches.
    resource_bytes: OnceLock<Bytes>,
    resource_attributes: Vec<(String, String)>,
}

/// A string attribute.
pub fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// A numeric attribute (Kong encodes numbers as doubles).
pub fn double_kv(key: &str, value: f64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::DoubleValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// An integer attribute (only `http.status_code`).
pub fn int_kv(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

impl Endpoint {
    /// An endpoint at `url`; `headers` are added to every request.
    pub fn new(
        url: http::Uri,
        headers: &[(String, String)],
        resource_attributes: Vec<(String, String)>,
        connect_timeout: u64,
        send_timeout: u64,
        read_timeout: u64,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(connect_timeout)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let headers = headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::from_bytes(k.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        Self {
            client,
            url,
            headers,
            timeout: Duration::from_millis(send_timeout + read_timeout),
            resource: OnceLock::new(),
            resource_bytes: OnceLock::new(),
            resource_attributes,
        }
    }

    /// Sets the resource once: Kong's defaults (`service.name`, `service.instance.id`,
    /// `service.version`) with the configured attributes merged over them.
    pub fn init_resource(&self, node_id: &str) {
        if self.resource.get().is_some() {
            return;
        }
        let resource = self.resource.get_or_init(|| {
            let mut attrs = vec![
                ("service.name".to_owned(), "kong".to_owned()),
                ("service.instance.id".to_owned(), node_id.to_owned()),
                ("service.version".to_owned(), crate::KONG_VERSION.to_owned()),
            ];
            for (k, v) in &self.resource_attributes {
                match attrs.iter_mut().find(|(key, _)| key == k) {
                    Some(slot) => slot.1.clone_from(v),
                    None => attrs.push((k.clone(), v.clone())),
                }
            }
            Resource {
                attributes: attrs.iter().map(|(k, v)| string_kv(k, v)).collect(),
                ..Resource::default()
            }
        });
        self.resource_bytes
            .get_or_init(|| Bytes::from(resource.encode_to_vec()));
    }

    /// `POST`s one encoded request; `Ok` only on status 200.
    pub async fn post(&self, body: Bytes) -> Result<(), String> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone());
        let has_content_type = self
            .headers
            .iter()
            .any(|(k, _)| k == http::header::CONTENT_TYPE);
        if let Some(h) = builder.headers_mut() {
            if !has_content_type {
                h.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                );
            }
            for (k, v) in &self.headers {
                h.insert(k.clone(), v.clone());
            }
        }
        let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| "timeout".to_owned())?
            .map_err(|e| format!("{e:?}"))?;
        if response.status() == http::StatusCode::OK {
            Ok(())
        } else {
            Err(format!("response status {}", response.status().as_u16()))
        }
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "kong-internal".to_owned(),
        version: "0.1.0".to_owned(),
        ..InstrumentationScope::default()
    }
}

/// Sends span batches to `traces_endpoint`.
pub struct TraceSender(pub Endpoint);

impl Sender for TraceSender {
    /// One span encoded as a `ScopeSpans.spans` field ([`super::encode::span`]).
    type Item = Bytes;

    fn encode(&self, batch: Vec<Bytes>) -> Bytes {
        super::encode::traces_request(self.0.resource_bytes.get().map(|b| &b[..]), &batch)
    }

    async fn send(&self, body: Bytes) -> Result<(), String> {
        self.0.post(body).await
    }
}

/// Sends log-record batches to `logs_endpoint`.
pub struct LogSender(pub Endpoint);

impl Sender for LogSender {
    type Item = LogRecord;

    fn encode(&self, batch: Vec<LogRecord>) -> Bytes {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: self.0.resource.get().cloned(),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records: batch,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        Bytes::from(request.encode_to_vec())
    }

    async fn send(&self, body: Bytes) -> Result<(), String> {
        self.0.post(body).await
    }
}
