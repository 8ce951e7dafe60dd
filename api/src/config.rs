//! Configuration, read in one place.
//!
//! Built-in defaults run as they are (embedded store under `./data`, development mode);
//! an optional TOML file (`--config FILE`, or `nhigov.toml` when present) and then
//! `NHIGOV_*` environment variables override them, and command-line flags override all.
//! Unknown keys are refused so a typo never silently falls back to a default. Secrets
//! (`auth.jwt_secret`, `db.password`) are never printed: [`Config`]'s `Debug` hides them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use crate::webhooks::{WebhookEndpoint, WebhooksConfig};

/// Whether the server runs for development (GraphiQL served, a JWT secret generated
/// when none is set) or production (neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Development,
    Production,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the server listens on.
    pub bind: SocketAddr,
    pub mode: Mode,
    pub log_format: LogFormat,
    pub db: DbConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub governance: GovernanceConfig,
    pub graph: GraphConfig,
    pub metrics: MetricsConfig,
    pub webhooks: WebhooksConfig,
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// Feed sources by name (the `source` of their documents).
    #[serde(default)]
    pub feeds: std::collections::BTreeMap<String, FeedConfig>,
    #[serde(default)]
    pub cors: CorsConfig,
    /// How long operational records are kept (`[retention]`); the record an auditor
    /// relies on is kept for ever (see `graph_model::store::Retention`).
    #[serde(default)]
    pub retention: graph_model::store::Retention,
    /// Signed checkpoints of the decision chain (`[checkpoints]`); none without a key.
    #[serde(default)]
    pub checkpoints: crate::checkpoints::CheckpointConfig,
}

/// Browser clients on other origins (`[cors]`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins (`https://portal.example.com`, scheme, host and port only) whose pages may
    /// call the API from a browser. None by default: no page on another origin may.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl CorsConfig {
    /// Each origin is `scheme://host[:port]`, nothing more: a browser sends exactly that.
    fn validate(&self) -> Result<(), String> {
        for o in &self.allowed_origins {
            let (scheme, rest) =
                o.split_once("://").ok_or_else(|| format!("cors.allowed_origins: {o} has no scheme"))?;
            if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains(['/', '?', '#', '*']) {
                return Err(format!(
                    "cors.allowed_origins: {o} is not an origin (scheme://host[:port], no path, no wildcard)"
                ));
            }
        }
        Ok(())
    }
}

/// One feed source (`[feeds.<source>]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// When the source's last committed run is older than this many hours (or it has
    /// never run), it is stale: the automation its data drives pauses (closing the
    /// edges a complete run no longer reports, ungoverned-access alerts) until a run
    /// repairs it, and `/readyz` and the `feeds` query say so.
    pub freshness_hours: u32,
}

/// `GET /metrics`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// When set, `/metrics` answers only requests bearing this token; otherwise anyone
    /// who reaches the port can scrape it.
    pub token: Option<String>,
}

/// Bounds on graph traversals.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// The largest `maxHops` a traversal may ask for; more is refused.
    pub max_hops: u32,
    /// The most nodes one traversal lists; beyond it the answer is `truncated`, and its
    /// totals still count every node within the hop cap.
    pub node_cap: usize,
    /// How long, in milliseconds, the in-process graph index may go without re-reading
    /// other replicas' writes from the database. This server's own writes are seen at once.
    pub refresh_ms: u64,
}

/// Case handling.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// Hours a case of each severity may stay open before it is overdue.
    pub sla_hours: graph_model::SlaHours,
    /// How often the server looks for break-glass access past its approval window
    /// (and raises an alert for each), in seconds.
    pub sweep_secs: u64,
    /// How often every control is evaluated again, in seconds, for the checks that
    /// turn on the clock (rotation age, unused access, review dates) and for other
    /// replicas' writes. This server's own writes wake an evaluation at once.
    pub controls_secs: u64,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbConfig {
    /// `data` (a SurrealKV directory), `surrealkv://PATH`, `mem://`, `ws://HOST:PORT`,
    /// `wss://HOST:PORT`.
    pub url: String,
    pub namespace: String,
    pub database: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// On a SurrealDB server, whom `username` names: `database` (default), a user of
    /// `namespace`/`database` as `nhigov db-user` creates it, the least the service
    /// needs; or `root`.
    #[serde(default)]
    pub user_level: graph_model::store::UserLevel,
    /// An embedded store's block cache, in MiB (blocks read from disk kept in memory).
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
    /// An embedded store's memtable, in MiB (writes held before a flush to disk).
    #[serde(default = "default_memtable_mb")]
    pub memtable_mb: u64,
}

fn default_cache_mb() -> u64 {
    graph_model::store::EmbeddedMemory::DEFAULT.block_cache_bytes >> 20
}

fn default_memtable_mb() -> u64 {
    graph_model::store::EmbeddedMemory::DEFAULT.memtable_bytes >> 20
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret (at least 32 bytes). In development, when unset, one is generated
    /// and kept in `<data dir>/jwt-secret`.
    pub jwt_secret: Option<String>,
    /// PEM file of an RS256 public key; when set, tokens are verified with it instead.
    pub jwt_public_key_file: Option<PathBuf>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Sign-in through an OpenID Connect provider (`[auth.oidc]`).
    #[serde(default)]
    pub oidc: Option<crate::auth::oidc::OidcConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted, in bytes.
    pub body_bytes: usize,
    /// Longest a request may take, in seconds.
    pub request_timeout_secs: u64,
    /// Operations in one batched request.
    pub max_batch: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    /// Nesting of brackets in the query text.
    pub max_nesting: usize,
    /// How long a WebSocket client may take to send `connection_init`, in milliseconds.
    pub ws_init_timeout_ms: u64,
    /// How often the server pings WebSocket clients and re-checks their credentials,
    /// in seconds.
    pub ws_keepalive_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8080".parse().expect("a valid literal address"),
            mode: Mode::Development,
            log_format: LogFormat::Text,
            db: DbConfig {
                url: "data".into(),
                namespace: "nhigov".into(),
                database: "main".into(),
                username: None,
                password: None,
                user_level: Default::default(),
                cache_mb: default_cache_mb(),
                memtable_mb: default_memtable_mb(),
            },
            auth: AuthConfig::default(),
            limits: LimitsConfig {
                body_bytes: 1024 * 1024,
                request_timeout_secs: 30,
                max_batch: 10,
                max_depth: 16,
                max_complexity: 2_000,
                max_aliases: 64,
                max_nesting: 48,
                ws_init_timeout_ms: 10_000,
                ws_keepalive_secs: 30,
            },
            governance: GovernanceConfig {
                sla_hours: graph_model::SlaHours::default(),
                sweep_secs: 60,
                controls_secs: 300,
            },
            graph: GraphConfig { max_hops: 6, node_cap: 10_000, refresh_ms: 500 },
            metrics: MetricsConfig::default(),
            webhooks: WebhooksConfig::default(),
            telemetry: crate::telemetry::TelemetryConfig::default(),
            feeds: Default::default(),
            cors: CorsConfig::default(),
            retention: Default::default(),
            checkpoints: Default::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("mode", &self.mode)
            .field("db.url", &redact_url(&self.db.url))
            .field("db.username", &self.db.username)
            .field("db.password", &self.db.password.as_ref().map(|_| "***"))
            .field("auth.jwt_secret", &self.auth.jwt_secret.as_ref().map(|_| "***"))
            .field("metrics.token", &self.metrics.token.as_ref().map(|_| "***"))
            .field("auth.jwt_public_key_file", &self.auth.jwt_public_key_file)
            .field("limits", &self.limits)
            .field(
                "webhooks",
                &self.webhooks.endpoints.iter().map(|e| (&e.name, redact_url(&e.url))).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// The configuration's top-level keys: an `NHIGOV_*` variable naming none of them (say
/// `NHIGOV_BIN` in a deploy script) is not configuration, and is left alone. Inside a
/// known section an unknown key is still refused, so a typo never falls back silently.
const TOP_LEVEL: &[&str] = &[
    "bind",
    "mode",
    "log_format",
    "db",
    "jwt_secret",
    "auth",
    "limits",
    "governance",
    "graph",
    "metrics",
    "webhooks",
    "telemetry",
    "feeds",
    "cors",
    "retention",
    "checkpoints",
];

/// Whether an `NHIGOV_` variable's name (without the prefix) starts with a section.
fn names_section(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    TOP_LEVEL.contains(&key.split("__").next().unwrap_or_default())
}

/// `NHIGOV_*` variables read on their own, not as configuration keys.
const OWN_VARIABLES: &[&str] = &["NHIGOV_CONFIG", "NHIGOV_LOG", "NHIGOV_DB_USER_PASSWORD"];

/// The `NHIGOV_*` variables of the environment that name no configuration section and
/// are not read on their own: left alone, and named in a warning at start (a misspelt
/// section, `NHIGOV_LIMTS__MAX_BATCH`, shows up there rather than nowhere).
pub fn ignored_variables() -> Vec<String> {
    let mut ignored: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("NHIGOV_") && !k.starts_with("NHIGOV_TEST_"))
        .filter(|k| !OWN_VARIABLES.contains(&k.as_str()))
        .filter(|k| !names_section(&k["NHIGOV_".len()..]))
        .collect();
    ignored.sort();
    ignored
}

/// Environment variables, mapped to keys: `NHIGOV_DB` is `db.url`, `NHIGOV_JWT_SECRET`
/// is `auth.jwt_secret`, and `NHIGOV_A__B` is `a.b` for everything else.
fn env_provider() -> Env {
    Env::prefixed("NHIGOV_").filter(|key| names_section(key.as_str())).map(|key| {
        match key.as_str().to_ascii_lowercase().as_str() {
            "db" => "db.url".into(),
            "jwt_secret" => "auth.jwt_secret".into(),
            other => other.replace("__", ".").into(),
        }
    })
}

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(format!("configuration file {} does not exist", path.display()));
                }
                fig = fig.merge(Toml::file(path));
            }
            None if Path::new("nhigov.toml").exists() => fig = fig.merge(Toml::file("nhigov.toml")),
            None => {}
        }
        fig = fig.merge(env_provider());
        let cfg: Config = fig.extract().map_err(|e| format!("configuration: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        crate::webhooks::Filter::check_config(&self.webhooks)?;
        graph_model::store::EmbeddedMemory::from_mib(self.db.cache_mb, self.db.memtable_mb)
            .map_err(|e| format!("configuration: db.cache_mb, db.memtable_mb: {e}"))?;
        self.telemetry.validate()?;
        if let Some(s) = &self.auth.jwt_secret
            && s.len() < 32
        {
            return Err("configuration: auth.jwt_secret must be at least 32 bytes".into());
        }
        if self.limits.ws_init_timeout_ms == 0 || self.limits.ws_keepalive_secs == 0 {
            return Err("configuration: limits.ws_init_timeout_ms and limits.ws_keepalive_secs must be positive".into());
        }
        self.cors.validate()?;
        if let Some((source, _)) = self.feeds.iter().find(|(_, f)| f.freshness_hours == 0) {
            return Err(format!("configuration: feeds.{source}.freshness_hours must be at least 1"));
        }
        if self.limits.body_bytes < 1024 || self.limits.max_batch == 0 || self.limits.request_timeout_secs == 0 {
            return Err("configuration: limits must allow at least a 1 KiB body, one operation and one second".into());
        }
        Ok(())
    }

    /// The directory an embedded store lives in, if the store is embedded on disk.
    pub fn data_dir(&self) -> Option<PathBuf> {
        let url = self.db.url.trim();
        if url.starts_with("mem://") || url == "memory" || url.starts_with("ws://") || url.starts_with("wss://") {
            return None;
        }
        let path = url.strip_prefix("surrealkv://").unwrap_or(url);
        Some(PathBuf::from(path.split('?').next().unwrap_or(path)))
    }

    pub fn store_config(&self) -> graph_model::store::StoreConfig {
        graph_model::store::StoreConfig {
            url: self.db.url.clone(),
            namespace: self.db.namespace.clone(),
            database: self.db.database.clone(),
            username: self.db.username.clone(),
            password: self.db.password.clone(),
            user_level: self.db.user_level,
            graph_refresh: std::time::Duration::from_millis(self.graph.refresh_ms),
            change_margin: graph_model::store::StoreConfig::CHANGE_MARGIN,
            feed_freshness: graph_model::domain::feeds::FeedFreshness::from_hours(
                self.feeds.iter().map(|(source, f)| (source.as_str(), f.freshness_hours)),
            ),
            // Checked by `validate`; a configuration built in code past it gets the default.
            memory: graph_model::store::EmbeddedMemory::from_mib(self.db.cache_mb, self.db.memtable_mb)
                .unwrap_or_default(),
            evaluation_part: graph_model::store::StoreConfig::EVALUATION_PART,
        }
    }
}

#[cfg(test)]
// figment's test jail returns its large error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_an_embedded_store_in_development() {
        let cfg = Config::default();
        assert_eq!(cfg.mode, Mode::Development);
        assert_eq!(cfg.data_dir(), Some(PathBuf::from("data")));
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "bind = \"127.0.0.1:1\"\ncolour = \"blue\"\n")?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err();
            assert!(err.contains("colour"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unrelated_nhigov_variables_are_left_alone_and_typos_inside_a_section_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("NHIGOV_BIN", "/usr/local/bin/nhigov");
            jail.set_env("NHIGOV_VERSION", "1.2.3");
            jail.set_env("NHIGOV_LOG", "info");
            assert!(Config::load(None).is_ok());
            let ignored = ignored_variables();
            assert!(ignored.contains(&"NHIGOV_BIN".to_owned()) && ignored.contains(&"NHIGOV_VERSION".to_owned()));
            assert!(!ignored.contains(&"NHIGOV_LOG".to_owned()), "read on its own: {ignored:?}");
            jail.set_env("NHIGOV_LIMITS__MAX_BACH", "3");
            let err = Config::load(None).unwrap_err();
            assert!(err.contains("max_bach"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn embedded_memory_is_set_in_mib_and_bounded() {
        figment::Jail::expect_with(|jail| {
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.store_config().memory, graph_model::store::EmbeddedMemory::DEFAULT);
            jail.create_file("ok.toml", "[db]\ncache_mb = 64\nmemtable_mb = 32\n")?;
            let memory = Config::load(Some(Path::new("ok.toml"))).unwrap().store_config().memory;
            assert_eq!((memory.block_cache_bytes, memory.memtable_bytes), (64 << 20, 32 << 20));
            for bad in ["8", "18446744073709551615"] {
                jail.set_env("NHIGOV_DB__CACHE_MB", bad);
                let err = Config::load(Some(Path::new("ok.toml"))).unwrap_err();
                assert!(err.contains("db.cache_mb") && err.contains("16 MiB to 1 TiB"), "{bad}: {err}");
            }
            Ok(())
        });
    }

    #[test]
    fn cors_origins_are_plain_origins() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "ok.toml",
                "[cors]\nallowed_origins = [\"https://portal.example\", \"http://localhost:3000\"]\n",
            )?;
            assert_eq!(Config::load(Some(Path::new("ok.toml"))).unwrap().cors.allowed_origins.len(), 2);
            for bad in ["*", "https://portal.example/app", "portal.example", "ftp://x.example", "https://*.example"] {
                jail.create_file("bad.toml", &format!("[cors]\nallowed_origins = [\"{bad}\"]\n"))?;
                let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err();
                assert!(err.contains("cors.allowed_origins"), "{bad}: {err}");
            }
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[db]\nurl = \"from-file\"\n")?;
            jail.set_env("NHIGOV_DB", "mem://");
            jail.set_env("NHIGOV_LIMITS__MAX_BATCH", "3");
            let cfg = Config::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(cfg.db.url, "mem://");
            assert_eq!(cfg.limits.max_batch, 3);
            assert_eq!(cfg.data_dir(), None);
            Ok(())
        });
    }

    #[test]
    fn an_identity_provider_is_configured_from_the_file_or_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[auth.oidc]\nissuer = \"https://idp.example\"\nrefresh_secs = 60\n")?;
            jail.set_env("NHIGOV_AUTH__OIDC__AUDIENCE", "nhigov");
            let cfg = Config::load(Some(Path::new("c.toml"))).unwrap();
            let oidc = cfg.auth.oidc.expect("[auth.oidc] read");
            assert_eq!(oidc.issuer.as_deref(), Some("https://idp.example"));
            assert_eq!(oidc.audience.as_deref(), Some("nhigov"));
            assert_eq!((oidc.email_claim.as_str(), oidc.max_lifetime_secs, oidc.refresh_secs), ("email", 86_400, 60));
            Ok(())
        });
    }

    #[test]
    fn webhook_endpoints_are_checked_when_loaded() {
        figment::Jail::expect_with(|jail| {
            let endpoint = |name: &str, url: &str, secret: &str, extra: &str| {
                format!("[[webhooks.endpoints]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{secret}\"\n{extra}")
            };
            let good = endpoint("grc", "https://grc.example/hook", "0123456789abcdef", "kinds = [\"decision\"]\n");
            jail.create_file("ok.toml", &good)?;
            let cfg = Config::load(Some(Path::new("ok.toml"))).unwrap();
            assert_eq!(cfg.webhooks.endpoints.len(), 1);
            assert!(!format!("{cfg:?}").contains("0123456789abcdef"), "the secret stays out of logs");
            for (bad, says) in [
                (endpoint("Bad Name", "https://x.example", "0123456789abcdef", ""), "not a name"),
                (endpoint("grc", "ftp://x.example", "0123456789abcdef", ""), "url"),
                (endpoint("grc", "https://x.example", "short", ""), "secret"),
                (endpoint("grc", "https://x.example", "0123456789abcdef", "kinds = [\"everything\"]\n"), "kinds"),
                (endpoint("grc", "https://x.example", "0123456789abcdef", "outcomes = [\"maybe\"]\n"), "outcomes"),
                (endpoint("grc", "https://x.example", "0123456789abcdef", "min_severity = \"dire\"\n"), "min_severity"),
                (format!("{good}{good}"), "used twice"),
            ] {
                jail.create_file("bad.toml", &bad)?;
                let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err();
                assert!(err.contains(says), "{says}: {err}");
            }
            Ok(())
        });
    }

    #[test]
    fn secrets_are_hidden_from_debug_output() {
        let mut cfg = Config::default();
        cfg.auth.jwt_secret = Some("s".repeat(40));
        cfg.db.password = Some("hunter2".into());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("sss") && !shown.contains("hunter2"));
    }

    #[test]
    fn short_secrets_are_refused() {
        let mut cfg = Config::default();
        cfg.auth.jwt_secret = Some("short".into());
        assert!(cfg.validate().is_err());
    }
}
