//! The scrape manager of one job and the loop of each of its targets.
//!
//! The manager takes provider updates, relabels them into targets, starts a loop for each
//! new target and stops the loops of targets that went away (which then send stale
//! markers for every series they had). Each loop scrapes on its interval, bounded by the
//! scrape timeout and `body_size_limit`, and hands one `ResourceMetrics` per scrape to the
//! pipeline. A failed scrape never stops the loop: it reports `up` = 0 and logs why.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::{Authorization, BasicAuth, Job, TlsConfig};
use super::convert::{self, Options, Report, TargetInfo, TargetState};
use super::discovery::{TargetGroup, Update};
use super::parse::{self, Format};
use super::relabel::Rule;
use super::target::{self, Target};
use crate::codec::Compression;
use crate::component::ComponentError;
use crate::pipeline::{Batch, BoxConsumer, ClientInfo};
use crate::telemetry::names;

/// The largest body accepted when `body_size_limit` is 0, so memory stays bounded.
pub const MAX_BODY_BYTES: u64 = 256 << 20;

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// Connection, timeout or protocol failure.
    #[error("{0}")]
    Http(String),
    /// A status other than 200.
    #[error("server returned HTTP status {0}")]
    Status(String),
    /// The body is larger than `body_size_limit`.
    #[error("body size limit exceeded")]
    BodyTooLarge,
    /// The body could not be decompressed.
    #[error("{0}")]
    Decompress(String),
    /// The body is not UTF-8.
    #[error("invalid UTF-8 in the response body")]
    Utf8,
    /// The exposition is malformed.
    #[error("{0}")]
    Parse(#[from] parse::ParseError),
    /// A limit was exceeded.
    #[error("{0}")]
    Limit(#[from] convert::LimitError),
    /// A credentials file could not be read.
    #[error("{0}")]
    Credentials(String),
}

/// Everything one job's loops share.
pub struct JobContext {
    /// The receiver id (own-metric label).
    pub receiver: String,
    /// The job with defaults applied.
    pub job: Job,
    /// `relabel_configs`.
    pub relabel: Vec<Rule>,
    /// Conversion settings.
    pub options: Options,
    /// The HTTP client (timeout, TLS, redirects).
    pub client: reqwest::Client,
    /// Where scrapes go.
    pub consumer: BoxConsumer,
    accepted: metrics::Counter,
    refused: metrics::Counter,
}

impl JobContext {
    /// Builds the context, its HTTP client included.
    ///
    /// # Errors
    /// TLS material that cannot be read or parsed.
    pub fn new(
        receiver: &str,
        job: Job,
        relabel: Vec<Rule>,
        options: Options,
        consumer: BoxConsumer,
    ) -> Result<Self, ComponentError> {
        let client = http_client(&job)?;
        let labels = [
            ("receiver", receiver.to_owned()),
            ("transport", "http".to_owned()),
        ];
        let metric_points = |base| names::with_items(base, crate::pipeline::Signal::Metrics);
        Ok(Self {
            receiver: receiver.to_owned(),
            accepted: metrics::counter!(metric_points(names::RECEIVER_ACCEPTED), &labels),
            refused: metrics::counter!(metric_points(names::RECEIVER_REFUSED), &labels),
            job,
            relabel,
            options,
            client,
            consumer,
        })
    }
}

/// A reqwest client for a job: timeout, TLS, redirects, HTTP/2.
///
/// # Errors
/// TLS material that cannot be read or parsed.
pub fn http_client(job: &Job) -> Result<reqwest::Client, ComponentError> {
    crate::tls::install_crypto_provider();
    let sc = &job.config;
    let mut builder = reqwest::Client::builder()
        .timeout(job.timeout)
        .pool_max_idle_per_host(2)
        .redirect(if sc.follow_redirects.unwrap_or(true) {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    if !sc.enable_http2.unwrap_or(true) {
        builder = builder.http1_only();
    }
    if let Some(proxy) = &sc.proxy_url {
        let proxy = reqwest::Proxy::all(proxy)
            .map_err(|e| ComponentError::Other(format!("invalid proxy_url: {e}")))?;
        builder = builder.proxy(proxy);
    } else {
        builder = builder.no_proxy();
    }
    builder = tls(builder, &sc.tls_config)?;
    builder
        .build()
        .map_err(|e| ComponentError::Other(format!("cannot build the HTTP client: {e}")))
}

/// Applies `tls_config` to a client builder: the rustls config is built here, once.
///
/// # Errors
/// Unreadable or invalid PEM.
pub fn tls(
    builder: reqwest::ClientBuilder,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, ComponentError> {
    use crate::tls::client::{pem, Settings};
    let err = |e: crate::tls::client::ClientTlsError| ComponentError::Other(e.to_string());
    let ca_pem = match pem(tls.ca_file.as_deref(), tls.ca.as_deref()) {
        Ok(ca) => ca,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the CA file; scrapes over https will fail verification.");
            Some(Vec::new())
        }
    };
    let cert = pem(tls.cert_file.as_deref(), tls.cert.as_deref()).map_err(err)?;
    let key = pem(tls.key_file.as_deref(), tls.key.as_deref()).map_err(err)?;
    let settings = Settings {
        ca_pem,
        include_system_roots: false,
        identity: cert.zip(key),
        insecure_skip_verify: tls.insecure_skip_verify,
        server_name: tls.server_name.clone(),
        min_version: tls.min_version.as_deref().map(prometheus_version),
        max_version: tls.max_version.as_deref().map(prometheus_version),
    };
    let config = settings.build(crate::tls::client::ALPN_HTTP).map_err(err)?;
    Ok(builder.tls_backend_preconfigured(config))
}

/// Prometheus' `TLS12` as otelcol's `1.2`.
fn prometheus_version(text: &str) -> String {
    match text {
        "TLS10" => "1.0".into(),
        "TLS11" => "1.1".into(),
        "TLS12" => "1.2".into(),
        "TLS13" => "1.3".into(),
        other => other.to_owned(),
    }
}

/// Runs one job: takes discovery updates until `stop`, keeping one loop per target.
pub async fn run_job(
    ctx: Arc<JobContext>,
    mut rx: mpsc::Receiver<Update>,
    stop: CancellationToken,
) {
    let mut groups: HashMap<usize, Vec<TargetGroup>> = HashMap::new();
    let mut running: HashMap<Target, CancellationToken> = HashMap::new();
    let loops = TaskTracker::new();
    loop {
        let update = tokio::select! {
            () = stop.cancelled() => break,
            update = rx.recv() => update,
        };
        let Some((index, provider_groups)) = update else {
            // Every provider ended; keep scraping what is known until shutdown.
            stop.cancelled().await;
            break;
        };
        groups.insert(index, provider_groups);
        let all: Vec<TargetGroup> = groups.values().flatten().cloned().collect();
        let wanted = target::targets(&ctx.job, &ctx.relabel, &all);
        running.retain(|t, removed| {
            let keep = wanted.contains(t);
            if !keep {
                removed.cancel();
            }
            keep
        });
        for t in wanted {
            if running.contains_key(&t) {
                continue;
            }
            let removed = CancellationToken::new();
            running.insert(t.clone(), removed.clone());
            loops.spawn(scrape_loop(ctx.clone(), t, removed, stop.clone()));
        }
    }
    loops.close();
    loops.wait().await;
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn scrape_loop(
    ctx: Arc<JobContext>,
    target: Target,
    removed: CancellationToken,
    stop: CancellationToken,
) {
    let info = TargetInfo {
        labels: target.labels.clone(),
        discovered: target.discovered.clone(),
        scheme: target.scheme.clone(),
    };
    let mut state = TargetState::default();
    let mut ticker = tokio::time::interval(ctx.job.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = removed.cancelled() => {
                let stale = state.stale_all(now_ms());
                if !stale.is_empty() {
                    let rm = convert::resource_metrics(
                        convert::resource(&info, &[]),
                        stale,
                        &HashMap::new(),
                    );
                    deliver(&ctx, rm).await;
                }
                return;
            }
            _ = ticker.tick() => {}
        }
        let rm = scrape_once(&ctx, &target, &info, &mut state).await;
        deliver(&ctx, rm).await;
    }
}

async fn deliver(ctx: &JobContext, rm: opentelemetry_proto::tonic::metrics::v1::ResourceMetrics) {
    let batch = Batch::Metrics(vec![rm]);
    let points = batch.item_count() as u64;
    match ctx.consumer.consume(batch, &ClientInfo::default()).await {
        Ok(()) => ctx.accepted.increment(points),
        Err(e) => {
            ctx.refused.increment(points);
            tracing::warn!(receiver = %ctx.receiver, error = %e.message, "Scrape data could not be delivered to the pipeline.");
        }
    }
}

/// Scrapes `target` once and converts the result (or the failure) into one
/// `ResourceMetrics`.
pub async fn scrape_once(
    ctx: &JobContext,
    target: &Target,
    info: &TargetInfo,
    state: &mut TargetState,
) -> opentelemetry_proto::tonic::metrics::v1::ResourceMetrics {
    let scrape_ms = now_ms();
    let started = Instant::now();
    let fetched = fetch(ctx, target).await;
    let mut body_bytes = 0;
    let outcome = fetched.and_then(|(body, format)| {
        body_bytes = body.len() as u64;
        let families = parse::parse(&body, format)?;
        Ok(state.convert(&families, info, &ctx.options, scrape_ms)?)
    });
    let duration = started.elapsed();
    let (mut converted, report) = match outcome {
        Ok(converted) => {
            let stats = converted.stats;
            (
                converted,
                Report {
                    up: true,
                    duration,
                    stats,
                    body_bytes,
                },
            )
        }
        Err(e) => {
            tracing::warn!(
                receiver = %ctx.receiver,
                scrape_timestamp = scrape_ms,
                target = %target.url,
                target_labels = ?target.labels,
                error = %e,
                "Failed to scrape Prometheus endpoint"
            );
            (
                convert::Converted {
                    metrics: state.stale_all(scrape_ms),
                    ..convert::Converted::default()
                },
                Report {
                    up: false,
                    duration,
                    stats: convert::Stats::default(),
                    body_bytes,
                },
            )
        }
    };
    let own: convert::ScopeKey = (String::new(), String::new());
    converted.metrics.extend(
        convert::report_metrics(info, &ctx.options, &report, scrape_ms)
            .into_iter()
            .map(|m| (own.clone(), m)),
    );
    convert::resource_metrics(
        convert::resource(info, &converted.target_info),
        converted.metrics,
        &converted.scope_attributes,
    )
}

fn read_secret(path: &str) -> Result<String, ScrapeError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| ScrapeError::Credentials(format!("unable to read {path}: {e}")))
}

/// The `Authorization` header value for the job's auth settings, files re-read each call.
///
/// # Errors
/// A credentials file that cannot be read.
pub fn authorization_header(
    basic: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
    bearer_token: Option<&str>,
    bearer_token_file: Option<&str>,
) -> Result<Option<String>, ScrapeError> {
    use base64::Engine as _;
    if let Some(b) = basic {
        let user = match &b.username_file {
            Some(f) => read_secret(f)?,
            None => b.username.clone(),
        };
        let password = match (&b.password_file, &b.password) {
            (Some(f), _) => read_secret(f)?,
            (None, Some(p)) => p.clone(),
            (None, None) => String::new(),
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        return Ok(Some(format!("Basic {token}")));
    }
    if let Some(a) = authorization {
        let kind = a.kind.clone().unwrap_or_else(|| "Bearer".to_owned());
        let credentials = match (&a.credentials_file, &a.credentials) {
            (Some(f), _) => read_secret(f)?,
            (None, Some(c)) => c.clone(),
            (None, None) => return Ok(None),
        };
        return Ok(Some(format!("{kind} {credentials}")));
    }
    if let Some(f) = bearer_token_file {
        return Ok(Some(format!("Bearer {}", read_secret(f)?)));
    }
    Ok(bearer_token.map(|t| format!("Bearer {t}")))
}

async fn fetch(ctx: &JobContext, target: &Target) -> Result<(String, Format), ScrapeError> {
    let sc = &ctx.job.config;
    let mut request = ctx
        .client
        .get(&target.url)
        .header(http::header::ACCEPT, &ctx.job.accept)
        .header(
            http::header::ACCEPT_ENCODING,
            if ctx.job.compression {
                "gzip"
            } else {
                "identity"
            },
        )
        .header(
            http::header::USER_AGENT,
            format!("otelpipe/{}", env!("CARGO_PKG_VERSION")),
        )
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", ctx.job.timeout.as_secs_f64()),
        );
    for (name, values) in &sc.http_headers {
        for v in values.values.iter().chain(&values.secrets) {
            request = request.header(name.as_str(), v.as_str());
        }
        for f in &values.files {
            request = request.header(name.as_str(), read_secret(f)?);
        }
    }
    if let Some(auth) = authorization_header(
        sc.basic_auth.as_ref(),
        sc.authorization.as_ref(),
        sc.bearer_token.as_deref(),
        sc.bearer_token_file.as_deref(),
    )? {
        request = request.header(http::header::AUTHORIZATION, auth);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| ScrapeError::Http(describe(&e)))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(ScrapeError::Status(format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )));
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let content_type = header(http::header::CONTENT_TYPE);
    let encoding = header(http::header::CONTENT_ENCODING);
    let limit = match ctx.job.body_size_limit {
        0 => MAX_BODY_BYTES,
        n => n,
    };
    let mut raw: Vec<u8> = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ScrapeError::Http(describe(&e)))?
    {
        if (raw.len() + chunk.len()) as u64 > limit {
            return Err(ScrapeError::BodyTooLarge);
        }
        raw.extend_from_slice(&chunk);
    }
    let body = match Compression::parse(&encoding) {
        Ok(Compression::None) => raw,
        Ok(c) => {
            let cap = usize::try_from(limit).unwrap_or(usize::MAX);
            c.decompress(&raw, cap).map_err(|e| match e {
                crate::codec::DecompressError::TooLarge { .. } => ScrapeError::BodyTooLarge,
                other => ScrapeError::Decompress(other.to_string()),
            })?
        }
        Err(e) => return Err(ScrapeError::Decompress(e.to_string())),
    };
    let text = String::from_utf8(body).map_err(|_| ScrapeError::Utf8)?;
    Ok((text, Format::from_content_type(&content_type)))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "context deadline exceeded".to_owned();
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
