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
//!
//! Browser sign-in (the console, GraphiQL) is the authorization code flow with PKCE
//! (RFC 7636, S256) when `redirect_url` is set: see `server::signin`. The server makes
//! the code exchange at the provider's token endpoint itself, so confidential clients
//! (a `client_secret`, as Google's web clients need) and public ones both work, and the
//! ID token it gets is checked here like any other, its `nonce` too.

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
    /// Browser sign-in: the public URL of this server's `/auth/callback`, as registered
    /// with the provider. Unset, the console and GraphiQL take a pasted token only.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// The client id nhigov is registered under at the provider, for browser sign-in;
    /// `audience` when unset (an ID token's `aud` is the client id).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The client secret, for providers that register web clients as confidential.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The scopes browser sign-in asks for.
    #[serde(default = "default_scopes")]
    pub scopes: String,
}

fn default_scopes() -> String {
    "openid email".into()
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
    /// The authorization and token endpoints, once discovered.
    endpoints: Option<Endpoints>,
}

/// Where a browser is sent to sign in, and where the code it brings back is exchanged.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
}

/// What browser sign-in sends the provider: the client, where to come back, and what to
/// ask for.
#[derive(Clone, Debug)]
pub struct BrowserClient {
    pub client_id: String,
    pub redirect_url: String,
    pub scopes: String,
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
        if cfg.redirect_url.is_some() {
            if cfg.issuer.is_none() {
                return Err("auth.oidc.redirect_url (browser sign-in) needs auth.oidc.issuer: its discovery \
                            document names the authorization and token endpoints"
                    .into());
            }
            if cfg.client_id.is_none() && cfg.audience.is_none() {
                return Err("auth.oidc.redirect_url (browser sign-in) needs auth.oidc.client_id or audience".into());
            }
            if let (Some(client), Some(aud)) = (&cfg.client_id, &cfg.audience)
                && client != aud
            {
                return Err(format!(
                    "auth.oidc.client_id `{client}` is not auth.oidc.audience `{aud}`: the ID tokens browser \
                     sign-in gets name the client id as their audience, and would be refused"
                ));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("the HTTP client for the identity provider: {e}"))?;
        let fetch = Fetch { jwks_url: cfg.jwks_url.clone(), ..Fetch::default() };
        Ok(Oidc { cfg, client, keys: RwLock::default(), fetch: Mutex::new(fetch) })
    }

    /// The person a token signs in, or why not.
    pub async fn verify(&self, token: &str) -> Result<Email, AuthError> {
        self.verify_claims(token).await.map(|(email, _)| email)
    }

    /// The client browser sign-in speaks as, when it is configured.
    pub fn browser_client(&self) -> Option<BrowserClient> {
        let redirect_url = self.cfg.redirect_url.clone()?;
        let client_id = self.cfg.client_id.clone().or_else(|| self.cfg.audience.clone())?;
        Some(BrowserClient { client_id, redirect_url, scopes: self.cfg.scopes.clone() })
    }

    /// The provider's authorization and token endpoints, from its discovery document.
    pub async fn endpoints(&self) -> Result<Endpoints, String> {
        let mut fetch = self.fetch.lock().await;
        if let Some(e) = &fetch.endpoints {
            return Ok(e.clone());
        }
        let doc = self.discovery().await?;
        let field = |name: &str| {
            doc[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("the provider's discovery document names no {name}"))
        };
        let endpoints = Endpoints { authorization: field("authorization_endpoint")?, token: field("token_endpoint")? };
        fetch.endpoints = Some(endpoints.clone());
        Ok(endpoints)
    }

    /// Exchange an authorization code (with the PKCE verifier it was asked with) for the
    /// provider's ID token, checked like any token, its `nonce` the one sent.
    pub async fn exchange(&self, code: &str, verifier: &str, nonce: &str) -> Result<(Email, String), String> {
        let client = self.browser_client().ok_or("browser sign-in is not configured")?;
        let endpoints = self.endpoints().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_url.as_str()),
            ("client_id", client.client_id.as_str()),
            ("code_verifier", verifier),
        ];
        if let Some(secret) = &self.cfg.client_secret {
            form.push(("client_secret", secret.as_str()));
        }
        let resp = self
            .client
            .post(&endpoints.token)
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("{}: {e}", endpoints.token))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| format!("{}: {e}", endpoints.token))?;
        if !status.is_success() {
            return Err(format!(
                "the provider refused the code: {}",
                body["error"].as_str().unwrap_or(status.as_str())
            ));
        }
        let token = body["id_token"].as_str().ok_or("the provider's answer holds no id_token")?.to_owned();
        let (email, claims) = self.verify_claims(&token).await.map_err(|e| e.to_string())?;
        if claims["nonce"].as_str() != Some(nonce) {
            return Err("the ID token's nonce is not the one this sign-in sent".into());
        }
        Ok((email, token))
    }

    /// The person a token signs in and its claims, or why not.
    async fn verify_claims(&self, token: &str) -> Result<(Email, serde_json::Value), AuthError> {
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
        let email = Email::parse(email).map_err(|_| invalid("the e-mail claim is not an e-mail address"))?;
        Ok((email, claims))
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
        let doc = self.discovery().await?;
        doc["jwks_uri"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the provider's discovery document names no jwks_uri".into())
    }

    /// The issuer's discovery document, which must name the issuer configured.
    async fn discovery(&self) -> Result<serde_json::Value, String> {
        let issuer = self.cfg.issuer.as_deref().ok_or("no issuer to discover")?;
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let doc: serde_json::Value = self.get_json(&url).await?;
        if doc["issuer"].as_str() != Some(issuer) {
            return Err(format!("{url} names another issuer: {}", doc["issuer"]));
        }
        Ok(doc)
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
