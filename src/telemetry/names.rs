//! Own metric names, defined once, exactly as otelcol 0.119 exposes them (no `_total`
//! suffix), so existing dashboards work. Call sites use these constants, never literals.

/// Items a receiver pushed into the pipeline, by `receiver`, `transport`; suffixed per signal.
pub const RECEIVER_ACCEPTED: &str = "otelcol_receiver_accepted";
/// Items a receiver could not push into the pipeline.
pub const RECEIVER_REFUSED: &str = "otelcol_receiver_refused";
/// Items an exporter sent successfully, by `exporter`.
pub const EXPORTER_SENT: &str = "otelcol_exporter_sent";
/// Items an exporter gave up on.
pub const EXPORTER_SEND_FAILED: &str = "otelcol_exporter_send_failed";
/// Items refused because the sending queue was full.
pub const EXPORTER_ENQUEUE_FAILED: &str = "otelcol_exporter_enqueue_failed";
/// Batches currently in a sending queue, by `exporter`, `data_type`.
pub const EXPORTER_QUEUE_SIZE: &str = "otelcol_exporter_queue_size";
/// Capacity of a sending queue in batches.
pub const EXPORTER_QUEUE_CAPACITY: &str = "otelcol_exporter_queue_capacity";
/// Items entering a processor, by `processor`, `otel_signal`.
pub const PROCESSOR_INCOMING_ITEMS: &str = "otelcol_processor_incoming_items";
/// Items leaving a processor.
pub const PROCESSOR_OUTGOING_ITEMS: &str = "otelcol_processor_outgoing_items";
/// Items a processor (memory_limiter) passed on, by `processor`; suffixed per signal.
pub const PROCESSOR_ACCEPTED: &str = "otelcol_processor_accepted";
/// Items a processor (memory_limiter) refused, by `processor`; suffixed per signal.
pub const PROCESSOR_REFUSED: &str = "otelcol_processor_refused";
/// Batches the batch processor sent because `send_batch_size` was reached.
pub const BATCH_SIZE_TRIGGER_SEND: &str = "otelcol_processor_batch_batch_size_trigger_send";
/// Batches the batch processor sent because `timeout` expired.
pub const BATCH_TIMEOUT_TRIGGER_SEND: &str = "otelcol_processor_batch_timeout_trigger_send";
/// Items per batch sent by the batch processor (histogram).
pub const BATCH_SEND_SIZE: &str = "otelcol_processor_batch_batch_send_size";
/// Points of new series the cumulativetodelta processor dropped because it tracks its
/// maximum number of series.
pub const CUMULATIVETODELTA_UNTRACKED_POINTS: &str =
    "otelcol_processor_cumulativetodelta_untracked_points";
/// Series and resources the spanmetrics connector evicted from its caches, by `connector`.
pub const SPANMETRICS_EVICTED: &str = "otelpipe_connector_spanmetrics_evicted";
/// Damaged places a storage extension skipped when opening a client (torn or corrupt
/// tails), by `extension`.
pub const STORAGE_CORRUPT_RECORDS: &str = "otelpipe_storage_corrupt_records";
/// Seconds since the process started.
pub const PROCESS_UPTIME: &str = "otelcol_process_uptime";
/// CPU seconds used by the process.
pub const PROCESS_CPU_SECONDS: &str = "otelcol_process_cpu_seconds";
/// Resident set size in bytes.
pub const PROCESS_MEMORY_RSS: &str = "otelcol_process_memory_rss";

/// The full per-signal name: `otelcol_receiver_accepted` + traces → `…_spans`.
pub fn with_items(base: &str, signal: crate::pipeline::Signal) -> String {
    format!("{base}_{}", signal.item_name())
}

/// otelpipe's own: tokens longer than `max_log_size` that closed a `tcplog` connection,
/// by `receiver`.
pub const RECEIVER_TCPLOG_TOKENS_TOO_LONG: &str = "otelpipe_receiver_tcplog_tokens_too_long";
/// otelpipe's own: connections closed at once because `max_connections` were open, by
/// `receiver`.
pub const RECEIVER_TCPLOG_CONNECTIONS_REFUSED: &str =
    "otelpipe_receiver_tcplog_connections_refused";
/// otelpipe's own: `tcplog` connections closed because their TLS handshake failed or timed
/// out (a client certificate missing or not trusted, a plaintext client, …), by `receiver`.
pub const RECEIVER_TCPLOG_TLS_HANDSHAKE_FAILURES: &str =
    "otelpipe_receiver_tcplog_tls_handshake_failures";
/// otelpipe's own: connections an `otlp` receiver closed at once because its listener had
/// the most connections open (4096), by `receiver`, `transport`.
pub const RECEIVER_CONNECTIONS_REFUSED: &str = "otelpipe_receiver_connections_refused";
/// Requests a receiver refused because its authenticator did not accept them (labels
/// `receiver`, `transport`).
pub const RECEIVER_AUTH_FAILURES: &str = "otelpipe_receiver_auth_failures";
