//! OpenTelemetry traces over OTLP (gRPC), when `[telemetry] otlp_endpoint` is set.
//!
//! `main` reads the configuration of `serve` before it sets up logging, starts the
//! exporter inside the runtime ([`start`]) and puts [`Telemetry::layer`] first on the
//! `tracing` registry, so every span `tracing` records at the configured level becomes
//! an OpenTelemetry span: the HTTP request (`request`, with the W3C `traceparent` a
//! caller sent as its parent), the GraphQL operation (`graphql.operation`,
//! `graphql.outcome`), and every statement batch sent to SurrealDB (`db`). (The layer
//! cannot be added later through a reload slot: `tracing-opentelemetry` finds itself
//! by downcasting the subscriber, which a reload layer does not pass through, and
//! parents from `traceparent` would be lost.)
//!
//! Spans leave in batches from the SDK's own thread; the tonic exporter it calls runs on
//! the Tokio runtime it was built in, so nothing here blocks a request. [`Telemetry`]
//! flushes what is left when the process stops.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// `[telemetry]` in the configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Where an OTLP collector listens for gRPC (`http://collector:4317`); unset, no
    /// traces leave the process.
    pub otlp_endpoint: Option<String>,
    /// `service.name` on every span.
    pub service_name: String,
    /// The share of traces kept (0.0 to 1.0) when the caller did not decide: a request
    /// whose `traceparent` says sampled is always kept.
    pub sample_ratio: f64,
    /// How often a batch of spans is sent, in milliseconds.
    pub export_interval_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "nhigov".into(),
            sample_ratio: 1.0,
            export_interval_ms: 5_000,
        }
    }
}

impl TelemetryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err("configuration: telemetry.sample_ratio is between 0.0 and 1.0".into());
        }
        if self.export_interval_ms == 0 {
            return Err("configuration: telemetry.export_interval_ms must be positive".into());
        }
        if let Some(url) = &self.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("configuration: telemetry.otlp_endpoint `{url}` is an http:// or https:// URL"));
        }
        Ok(())
    }
}

/// The exporter, kept alive while the process runs; [`Telemetry::shutdown`] sends what
/// is buffered.
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    endpoint: String,
}

/// Start exporting spans, if an endpoint is configured. Call inside the Tokio runtime.
pub fn start(cfg: &TelemetryConfig) -> anyhow::Result<Option<Telemetry>> {
    let Some(endpoint) = &cfg.otlp_endpoint else {
        return Ok(None);
    };
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .with_timeout(Duration::from_secs(10));
    if endpoint.starts_with("https://") {
        exporter = exporter.with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
    }
    let exporter = exporter.build().map_err(|e| anyhow::anyhow!("telemetry: the OTLP exporter: {e}"))?;
    let batch =
        BatchConfigBuilder::default().with_scheduled_delay(Duration::from_millis(cfg.export_interval_ms)).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batch).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(cfg.sample_ratio))))
        .with_resource(Resource::builder().with_service_name(cfg.service_name.clone()).build())
        .build();
    let tracer = provider.tracer("nhigov");
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    Ok(Some(Telemetry { provider, tracer, endpoint: endpoint.clone() }))
}

impl Telemetry {
    /// The layer that turns `tracing` spans into OpenTelemetry spans: first on the
    /// registry.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone())
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Send the spans still buffered and stop the exporter.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // The SDK waits for its export thread, which needs this runtime to send: wait
        // off the runtime's worker threads.
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "telemetry: flushing spans at shutdown");
        }
    }
}

/// The parent a request's `traceparent` (W3C Trace Context) names, set on its span.
pub fn adopt_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Headers<'a>(&'a axum::http::HeaderMap);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    if !headers.contains_key("traceparent") {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    let _ = span.set_parent(cx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_by_name() {
        let bad = |f: fn(&mut TelemetryConfig)| {
            let mut c = TelemetryConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.sample_ratio = 1.5).contains("sample_ratio"));
        assert!(bad(|c| c.export_interval_ms = 0).contains("export_interval_ms"));
        assert!(bad(|c| c.otlp_endpoint = Some("collector:4317".into())).contains("otlp_endpoint"));
        assert!(TelemetryConfig::default().validate().is_ok());
    }
}
