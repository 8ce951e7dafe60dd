//! Sign-in tokens from an OpenID Connect provider (Okta, Entra ID, Keycloak, Google...):
//! ID or access tokens signed with the provider's published keys.
//!
//! The keys come from a JWKS URL, given or found through the issuer's discovery document
//! (`/.well-known/openid-configuration`, whose `issuer` must be the one configured). They
//! are cached by `kid`; a token naming a `kid` the cache lacks makes the provider be asked
//! again (the provider rotated its keys), at most once per [`OidcConfig::refresh_secs`],
//! so a flood of tokens with made-up `kid`s cannot hammer the provider. Only asymmetric
//! keys and algorithms are accepted (RSA, EC, Ed25519): a symmetric `oct` key in a JWKS
//! would let anyone who read the JWKS sign tokens.
//!
//! A token passes when its signature verifies with the key its `kid` names, its `alg`
//! is the key's, it carries `exp` and `iat` and lives no longer than
//! `max_lifetime_secs`, its `iss` and `aud` are the configured ones (both required in
//! production), and the configured e-mail claim holds an address; a provider that sends
//! `email_verified: false` is refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graph_model::Email;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use tracing::{info, warn};

use super::AuthError;

/// `[auth.oidc]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL (`https://login.example.com/realms/corp`): tokens must
    /// carry it as `iss`, and its discovery document names the JWKS URL unless
    /// `jwks_url` does.
    pub issuer: Option<String>,
    /// The JWKS URL, when the provider publishes no discovery document (or to skip it).
    pub jwks_url: Option<String>,
    /// The `aud` tokens must carry: the client id nhigov is registered under.
    pub audience: Option<String>,
    /// The claim holding the person's e-mail address.
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    /// The longest a token may live (`exp - iat`), in seconds.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_secs: u64,
    /// The least time between two fetches of the keys.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

fn default_email_claim() -> String {
    "email".into()
}
fn default_max_lifetime() -> u64 {
    86_400
}
fn default_refresh() -> u64 {
    30
}

/// Algorithms a provider's key may sign with: asymmetric only.
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A key of the provider's, ready to verify with.
struct Key {
    decoding: DecodingKey,
    /// The algorithm the JWKS pins the key to, if it does.
    alg: Option<Algorithm>,
}

/// Verifies tokens against an OpenID Connect provider's keys.
pub struct Oidc {
    cfg: OidcConfig,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<Key>>>,
    /// When the keys were last asked for, and the JWKS URL once known.
    fetch: Mutex<Fetch>,
}

#[derive(Default)]
struct Fetch {
    last: Option<Instant>,
    jwks_url: Option<String>,
}

impl Oidc {
    /// Check the configuration; nothing is fetched until the first token arrives.
    pub fn new(cfg: OidcConfig, production: bool) -> Result<Oidc, String> {
        if cfg.issuer.is_none() && cfg.jwks_url.is_none() {
            return Err("auth.oidc needs issuer (its discovery names the keys) or jwks_url".into());
        }
        if production && (cfg.issuer.is_none() || cfg.audience.is_none()) {
            return Err("production mode needs auth.oidc.issuer and auth.oidc.audience: a token from another \
                        issuer, or meant for another application, must not sign anyone in"
                .into());
        }
        if cfg.email_claim.trim().is_empty() {
            return Err("auth.oidc.email_claim names no claim".into());
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("the HTTP client for the identity provider: {e}"))?;
        let fetch = Fetch { last: None, jwks_url: cfg.jwks_url.clone() };
        Ok(Oidc { cfg, client, keys: RwLock::default(), fetch: Mutex::new(fetch) })
    }

    /// The person a token signs in, or why not.
    pub async fn verify(&self, token: &str) -> Result<Email, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e.to_string()))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(invalid("the token is not signed with an asymmetric algorithm"));
        }
        let kid = header.kid.ok_or_else(|| invalid("the token names no key (kid)"))?;
        let key = self.key(&kid).await?;
        if key.alg.is_some_and(|a| a != header.alg) {
            return Err(invalid("the token's algorithm is not its key's"));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iat"]);
        match &self.cfg.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.cfg.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .map_err(|e| invalid(&e.to_string()))?;
        let claims = data.claims;
        let (exp, iat) = (claims["exp"].as_i64(), claims["iat"].as_i64());
        let max = i64::try_from(self.cfg.max_lifetime_secs).unwrap_or(i64::MAX);
        match (exp, iat) {
            (Some(exp), Some(iat)) if exp.checked_sub(iat).is_some_and(|life| life <= max) => {}
            (Some(_), Some(_)) => return Err(invalid("the token lives longer than auth.oidc.max_lifetime_secs")),
            _ => return Err(invalid("the token's exp and iat are not numbers")),
        }
        if claims.get("email_verified").and_then(serde_json::Value::as_bool) == Some(false) {
            return Err(invalid("the provider has not verified the e-mail address"));
        }
        let email = claims
            .get(&self.cfg.email_claim)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| invalid(&format!("the token has no `{}` claim", self.cfg.email_claim)))?;
        Email::parse(email).map_err(|_| invalid("the e-mail claim is not an e-mail address"))
    }

    /// The key `kid` names: cached, or fetched when the cache lacks it and the last fetch
    /// is old enough.
    async fn key(&self, kid: &str) -> Result<Arc<Key>, AuthError> {
        if let Some(k) = self.keys.read().await.get(kid) {
            return Ok(k.clone());
        }
        {
            let mut fetch = self.fetch.lock().await;
            // Another request may have fetched while this one waited.
            if let Some(k) = self.keys.read().await.get(kid) {
                return Ok(k.clone());
            }
            let recent = fetch.last.is_some_and(|t| t.elapsed() < Duration::from_secs(self.cfg.refresh_secs));
            if !recent {
                fetch.last = Some(Instant::now());
                match self.fetch_keys(&mut fetch).await {
                    Ok(keys) => {
                        info!(keys = keys.len(), "identity provider keys fetched");
                        *self.keys.write().await = keys;
                    }
                    Err(e) => warn!(error = %e, "fetching the identity provider's keys failed"),
                }
            }
        }
        self.keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or_else(|| invalid("the token names a key the provider does not publish"))
    }

    async fn fetch_keys(&self, fetch: &mut Fetch) -> Result<HashMap<String, Arc<Key>>, String> {
        let url = match &fetch.jwks_url {
            Some(url) => url.clone(),
            None => {
                let url = self.discover().await?;
                fetch.jwks_url = Some(url.clone());
                url
            }
        };
        let set: JwkSet = self.get_json(&url).await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else { continue };
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                warn!(%kid, "a symmetric key in the provider's JWKS is ignored");
                continue;
            }
            let alg = match &jwk.common.key_algorithm {
                Some(a) => match a.to_string().parse::<Algorithm>() {
                    Ok(a) if ASYMMETRIC.contains(&a) => Some(a),
                    _ => continue,
                },
                None => None,
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(decoding) => {
                    keys.insert(kid.clone(), Arc::new(Key { decoding, alg }));
                }
                Err(e) => warn!(%kid, error = %e, "a key of the provider's JWKS could not be read"),
            }
        }
        Ok(keys)
    }

    /// The JWKS URL the issuer's discovery document names.
    async fn discover(&self) -> Result<String, String> {
        let issuer = self.cfg.issuer.as_deref().ok_or("no issuer to discover")?;
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let doc: serde_json::Value = self.get_json(&url).await?;
        if doc["issuer"].as_str() != Some(issuer) {
            return Err(format!("{url} names another issuer: {}", doc["issuer"]));
        }
        doc["jwks_uri"].as_str().map(str::to_owned).ok_or_else(|| format!("{url} names no jwks_uri"))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let resp = self.client.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: {}", resp.status()));
        }
        resp.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

fn invalid(why: &str) -> AuthError {
    AuthError::Invalid(why.to_owned())
}
