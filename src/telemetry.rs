//! Logs and traces. `tracing` everywhere; this module installs the subscriber once, in the
//! binary: human-readable or JSON lines (`GATEWAY_LOG_FORMAT`), filtered by `RUST_LOG`, and,
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and the `otlp` feature is built), spans
//! exported over OTLP/HTTP (protobuf). One span per GraphQL operation (`graphql.operation`)
//! and one per upstream request (`upstream.request`, opened in the shared HTTP core). Span
//! names are static; fields carry route templates and operation names, never ids of people
//! or secrets.

use std::time::Duration;

use tracing::Span;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt};

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info";

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `GATEWAY_LOG_FORMAT` holds something else than `json` or `text`.
    #[error("GATEWAY_LOG_FORMAT: {0:?} is neither \"json\" nor \"text\"")]
    LogFormat(String),
    /// `RUST_LOG` is not a valid filter.
    #[error("RUST_LOG: {0}")]
    Filter(String),
    /// An OTLP endpoint is set but this build has no OTLP exporter.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build has no `otlp` feature")]
    OtlpNotBuilt,
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Otlp(String),
    /// A global subscriber was installed before.
    #[error("logging was already set up: {0}")]
    AlreadySet(String),
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, with the current span's fields.
    Json,
}

impl LogFormat {
    /// Reads `GATEWAY_LOG_FORMAT`'s value; unset means text.
    pub fn parse(value: Option<&str>) -> Result<Self, TelemetryError> {
        match value.map(str::trim) {
            None | Some("") => Ok(Self::Text),
            Some(text) if text.eq_ignore_ascii_case("text") => Ok(Self::Text),
            Some(json) if json.eq_ignore_ascii_case("json") => Ok(Self::Json),
            Some(other) => Err(TelemetryError::LogFormat(other.to_owned())),
        }
    }
}

/// What the environment asks for.
#[derive(Debug, Clone, Default)]
pub struct TelemetrySettings {
    /// Log line format.
    pub format: LogFormat,
    /// The `RUST_LOG` directives ([`DEFAULT_FILTER`] when unset).
    pub filter: String,
    /// Where OTLP/HTTP spans go (full URL of the traces endpoint); `None`: no export.
    pub otlp_traces_endpoint: Option<String>,
}

impl TelemetrySettings {
    /// Reads `GATEWAY_LOG_FORMAT`, `RUST_LOG` and the OTLP endpoints from the process
    /// environment (the configuration reference declares them with the rest).
    pub fn from_env() -> Result<Self, TelemetryError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let non_empty = |key: &str| lookup(key).filter(|value| !value.trim().is_empty());
        let otlp_traces_endpoint = non_empty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            // Per the OTLP specification the signal path is appended to the base endpoint.
            non_empty("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim().trim_end_matches('/')))
        });
        Ok(Self {
            format: LogFormat::parse(lookup("GATEWAY_LOG_FORMAT").as_deref())?,
            filter: non_empty("RUST_LOG").unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
            otlp_traces_endpoint,
        })
    }
}

/// Installed telemetry; [`Telemetry::shutdown`] flushes spans still buffered.
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exports_spans(&self) -> bool {
        #[cfg(feature = "otlp")]
        {
            self.provider.is_some()
        }
        #[cfg(not(feature = "otlp"))]
        {
            false
        }
    }

    /// Sends the spans still buffered and stops the exporter (bounded by its timeout).
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(%error, "could not flush the last spans");
        }
    }
}

/// Installs the global subscriber: logs to stdout, and spans to OTLP when configured.
pub fn init(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    let (layers, telemetry) = layers(settings, std::io::stdout)?;
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|error| TelemetryError::AlreadySet(error.to_string()))?;
    Ok(telemetry)
}

/// The filtered log (and span export) layers writing lines to `writer`.
pub fn layers<W>(
    settings: &TelemetrySettings,
    writer: W,
) -> Result<(Box<dyn Layer<Registry> + Send + Sync>, Telemetry), TelemetryError>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.filter).map_err(|error| TelemetryError::Filter(error.to_string()))?;
    let log_lines = tracing_subscriber::fmt::layer().with_writer(writer);
    let log_layer: Box<dyn Layer<Registry> + Send + Sync> = match settings.format {
        LogFormat::Text => log_lines.boxed(),
        LogFormat::Json => log_lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    #[cfg(feature = "otlp")]
    let (layers, telemetry) = {
        let provider = match &settings.otlp_traces_endpoint {
            Some(endpoint) => Some(otlp::provider(endpoint)?),
            None => None,
        };
        let layers = match &provider {
            Some(provider) => vec![log_layer, otlp::layer(provider)],
            None => vec![log_layer],
        };
        (layers, Telemetry { provider })
    };
    #[cfg(not(feature = "otlp"))]
    let (layers, telemetry) = {
        if settings.otlp_traces_endpoint.is_some() {
            return Err(TelemetryError::OtlpNotBuilt);
        }
        (vec![log_layer], Telemetry {})
    };
    Ok((layers.with_filter(filter).boxed(), telemetry))
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
    use tracing_subscriber::{Layer, Registry};

    use super::TelemetryError;

    /// A tracer provider batching spans to the OTLP/HTTP endpoint (on its own thread).
    pub(super) fn provider(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
        // reqwest is built without a bundled crypto provider; an https endpoint needs one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .build()
            .map_err(|error| TelemetryError::Otlp(error.to_string()))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(env!("CARGO_PKG_NAME"));
        }
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build())
    }

    /// The layer turning `tracing` spans into OpenTelemetry spans.
    pub(super) fn layer(provider: &SdkTracerProvider) -> Box<dyn Layer<Registry> + Send + Sync> {
        let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
        tracing_opentelemetry::layer().with_tracer(tracer).boxed()
    }
}

/// The span of one GraphQL operation; `operation` is a bounded label, never caller data
/// beyond a well-formed operation name.
pub fn operation_span(operation: &str, kind: &'static str) -> Span {
    tracing::info_span!(
        "graphql.operation",
        otel.name = %format_args!("{kind} {operation}"),
        operation,
        kind,
        outcome = tracing::field::Empty,
        elapsed_ms = tracing::field::Empty,
    )
}

/// Records how an operation ended, on its span and as one log line.
pub fn operation_finished(span: &Span, outcome: &'static str, elapsed: Duration) {
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    span.record("outcome", outcome);
    span.record("elapsed_ms", elapsed_ms);
    tracing::info!(parent: span, outcome, elapsed_ms, "operation finished");
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        io::Write,
        sync::{Arc, Mutex},
    };

    use super::*;

    /// Log lines written to memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'writer> MakeWriter<'writer> for Lines {
        type Writer = Lines;

        fn make_writer(&'writer self) -> Self::Writer {
            self.clone()
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<TelemetrySettings, TelemetryError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        TelemetrySettings::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn settings_come_from_the_environment_names() {
        let defaults = settings(&[]).expect("defaults");
        assert_eq!(defaults.format, LogFormat::Text);
        assert_eq!(defaults.filter, DEFAULT_FILTER);
        assert_eq!(defaults.otlp_traces_endpoint, None);
        let set = settings(&[
            ("GATEWAY_LOG_FORMAT", "JSON"),
            ("RUST_LOG", "debug"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ])
        .expect("valid");
        assert_eq!(set.format, LogFormat::Json);
        assert_eq!(set.filter, "debug");
        assert_eq!(
            set.otlp_traces_endpoint.as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        let error = settings(&[("GATEWAY_LOG_FORMAT", "yaml")]).expect_err("unknown format");
        assert!(error.to_string().contains("GATEWAY_LOG_FORMAT"), "{error}");
    }

    #[test]
    fn json_lines_carry_the_operation_span_fields() {
        let lines = Lines::default();
        let (layer, _telemetry) = layers(
            &settings(&[("GATEWAY_LOG_FORMAT", "json")]).expect("settings"),
            lines.clone(),
        )
        .expect("layers");
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = operation_span("PersonCard", "query");
            operation_finished(&span, "ok", Duration::from_millis(12));
        });
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        let line: serde_json::Value =
            serde_json::from_str(text.lines().next().expect("one line")).expect("a JSON object per line");
        assert_eq!(line["message"], "operation finished");
        assert_eq!(line["outcome"], "ok");
        assert_eq!(line["span"]["operation"], "PersonCard");
        assert_eq!(line["span"]["kind"], "query");
    }

    #[test]
    fn the_filter_drops_what_rust_log_excludes() {
        let lines = Lines::default();
        let (layer, _telemetry) =
            layers(&settings(&[("RUST_LOG", "warn")]).expect("settings"), lines.clone()).expect("layers");
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::info!("hidden");
            tracing::warn!("shown");
        });
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        assert!(text.contains("shown") && !text.contains("hidden"), "{text}");
    }

    #[cfg(feature = "otlp")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_are_exported_over_otlp_http() {
        use axum::{Router, body::Bytes, http::HeaderMap, routing::post};

        let received: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
        let sink = received.clone();
        let collector = Router::new().route(
            "/v1/traces",
            post(move |headers: HeaderMap, body: Bytes| {
                let sink = sink.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    sink.lock().expect("sink").push((content_type, body.len()));
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, collector).await });

        let endpoint = format!("http://{address}");
        let settings = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).expect("settings");
        let (layer, telemetry) = layers(&settings, Lines::default()).expect("layers");
        assert!(telemetry.exports_spans());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = operation_span("Exported", "query");
            operation_finished(&span, "ok", Duration::from_millis(1));
        });
        // The batch exporter sends from its own thread; shutting down flushes it.
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .expect("flushed");
        let received = received.lock().expect("received").clone();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0].0, "application/x-protobuf");
        assert!(received[0].1 > 0);
    }
}
