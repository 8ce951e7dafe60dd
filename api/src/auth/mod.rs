//! Authentication: bearer JWTs that name a person by e-mail address.
//!
//! Tokens come from an OpenID Connect provider (`[auth.oidc]`, see [`oidc`]: the e-mail
//! in a claim of its own, keys from the provider's JWKS), or are signed locally: HS256
//! with the configured secret (development, and `nhigov token`), or RS256 against a
//! configured public key, with the e-mail as `sub`. A token that names a key (`kid`)
//! goes to the provider when one is configured. A token is accepted only if its
//! signature and claims check out *and* it names a known, active person; anything else
//! is `UNAUTHENTICATED`. The principal is looked up on every request, so deactivating a
//! person takes effect at once.

pub mod oidc;

use std::path::Path;

use chrono::{Duration, Utc};
use graph_model::store::Store;
use graph_model::{Email, Person};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nhigov_schema::Principal;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::config::{AuthConfig, Mode};

/// The claims nhigov reads and writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The person's e-mail address.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Why a request is not authenticated. Deliberately coarse towards the client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("unknown or inactive person")]
    UnknownPerson,
    #[error("store: {0}")]
    Store(#[from] graph_model::store::StoreError),
}

/// Verifies tokens and, with the HS256 secret, mints them.
#[derive(Clone)]
pub struct Authenticator {
    /// The locally configured key, when there is one.
    local: Option<LocalKey>,
    /// The identity provider, when one is configured.
    oidc: Option<std::sync::Arc<oidc::Oidc>>,
}

/// A key configured here: an HS256 secret or an RS256 public key.
#[derive(Clone)]
struct LocalKey {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Authenticator {
    /// Build from configuration. In development with no key configured, a secret is
    /// generated once and kept in `secret_file` (beside the embedded store) so tokens
    /// survive restarts; in production a key must be configured.
    pub fn from_config(cfg: &AuthConfig, mode: Mode, secret_file: Option<&Path>) -> Result<Authenticator, String> {
        let oidc = cfg
            .oidc
            .clone()
            .map(|o| oidc::Oidc::new(o, mode == Mode::Production).map(std::sync::Arc::new))
            .transpose()?;
        let local = if let Some(path) = &cfg.jwt_public_key_file {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| format!("{} is not an RSA public key in PEM: {e}", path.display()))?;
            Some(LocalKey::new(cfg, key, None, Algorithm::RS256))
        } else {
            let secret = match (&cfg.jwt_secret, mode, secret_file) {
                (Some(s), _, _) => Some(s.clone()),
                (None, Mode::Production, _) if oidc.is_some() => None,
                (None, Mode::Development, Some(file)) => Some(load_or_create_secret(file)?),
                (None, Mode::Development, None) => Some(random_secret()),
                (None, Mode::Production, _) => {
                    return Err("production mode needs auth.oidc, auth.jwt_secret (NHIGOV_JWT_SECRET) or \
                                auth.jwt_public_key_file"
                        .into());
                }
            };
            secret.map(|secret| {
                let (decoding, encoding) =
                    (DecodingKey::from_secret(secret.as_bytes()), EncodingKey::from_secret(secret.as_bytes()));
                LocalKey::new(cfg, decoding, Some(encoding), Algorithm::HS256)
            })
        };
        Ok(Authenticator { local, oidc })
    }

    /// An authenticator with a known HS256 secret, for tests and tools.
    pub fn with_secret(secret: &str) -> Authenticator {
        let cfg = AuthConfig { jwt_secret: Some(secret.to_owned()), ..AuthConfig::default() };
        Authenticator::from_config(&cfg, Mode::Production, None).expect("a secret is configured")
    }

    /// Mint a token for `subject`, valid for `ttl`.
    pub fn mint(&self, subject: &Email, ttl: Duration) -> Result<String, String> {
        let local = self.local.as_ref().ok_or("tokens can only be minted with an HS256 secret")?;
        let key = local.encoding.as_ref().ok_or("tokens can only be minted with an HS256 secret")?;
        let now = Utc::now();
        let claims = Claims {
            sub: subject.as_str().to_owned(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
            iss: local.issuer.clone(),
            aud: local.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).map_err(|e| e.to_string())
    }

    /// The identity provider, when one is configured.
    pub fn provider(&self) -> Option<&oidc::Oidc> {
        self.oidc.as_deref()
    }

    /// Check a token's signature and claims; return the e-mail it signs in.
    pub async fn verify(&self, token: &str) -> Result<Email, AuthError> {
        // Only with a provider configured is the header read to route the token.
        let names_a_key = || jsonwebtoken::decode_header(token).map(|h| h.kid.is_some()).unwrap_or(false);
        match (&self.oidc, &self.local) {
            (Some(provider), _) if names_a_key() => provider.verify(token).await,
            (_, Some(local)) => local.verify(token),
            (Some(provider), None) => provider.verify(token).await,
            (None, None) => Err(AuthError::Invalid("no key is configured".into())),
        }
    }

    /// From an `Authorization` header value to the principal, or why not.
    pub async fn authenticate(&self, header: Option<&str>, store: &Store) -> Result<Principal, AuthError> {
        let token = bearer(header).ok_or(AuthError::Missing)?;
        if token.starts_with(graph_model::store::TOKEN_PREFIX) {
            let found = store.authenticate_token(token).await?.ok_or(AuthError::UnknownPerson)?;
            return Ok(Principal::token(found.person, found.roles));
        }
        let email = self.verify(token).await?;
        let person: Person = store.person_by_email(&email).await?.ok_or(AuthError::UnknownPerson)?;
        if !person.active {
            debug!(person = %person.id, "token of an inactive person refused");
            return Err(AuthError::UnknownPerson);
        }
        // A machine principal acts through its API tokens, which its roles bound and an
        // admin can revoke one by one; a signed-in session is for people.
        if person.machine {
            debug!(person = %person.id, "sign-in token of a machine principal refused");
            return Err(AuthError::UnknownPerson);
        }
        Ok(Principal::person(person))
    }
}

impl LocalKey {
    fn new(cfg: &AuthConfig, decoding: DecodingKey, encoding: Option<EncodingKey>, alg: Algorithm) -> LocalKey {
        let mut validation = Validation::new(alg);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &cfg.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &cfg.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        LocalKey { decoding, encoding, validation, issuer: cfg.issuer.clone(), audience: cfg.audience.clone() }
    }

    fn verify(&self, token: &str) -> Result<Email, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        Email::parse(&data.claims.sub).map_err(|_| AuthError::Invalid("the subject is not an e-mail address".into()))
    }
}

/// The token in `Bearer <token>`, scheme case-insensitive.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_or_create_secret(file: &Path) -> Result<String, String> {
    if let Ok(s) = std::fs::read_to_string(file) {
        let s = s.trim().to_owned();
        if s.len() >= 32 {
            return Ok(s);
        }
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let secret = random_secret();
    write_private(file, &secret).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(secret)
}

#[cfg(unix)]
fn write_private(file: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(file)?;
    f.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(file: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(file, content)
}

/// Parse a token lifetime such as `90s`, `30m`, `1h`, `7d`.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a lifetime such as 30m, 1h or 7d");
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let d = match unit {
        's' => Duration::seconds(n),
        'm' => Duration::minutes(n),
        'h' => Duration::hours(n),
        'd' => Duration::days(n),
        _ => return Err(bad()),
    };
    if n <= 0 || d > Duration::days(366) {
        return Err("a token lives between 1 second and 366 days".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::with_secret(&"k".repeat(32))
    }

    #[tokio::test]
    async fn a_minted_token_verifies_to_its_subject() {
        let email = Email::parse("ines@example.com").unwrap();
        let token = auth().mint(&email, Duration::hours(1)).unwrap();
        assert_eq!(auth().verify(&token).await.unwrap(), email);
    }

    #[tokio::test]
    async fn a_token_signed_with_another_secret_is_refused() {
        let email = Email::parse("ines@example.com").unwrap();
        let token = Authenticator::with_secret(&"x".repeat(32)).mint(&email, Duration::hours(1)).unwrap();
        assert!(matches!(auth().verify(&token).await, Err(AuthError::Invalid(_))));
    }

    #[tokio::test]
    async fn an_expired_token_is_refused() {
        let email = Email::parse("ines@example.com").unwrap();
        let token = auth().mint(&email, Duration::seconds(-120)).unwrap();
        assert!(matches!(auth().verify(&token).await, Err(AuthError::Invalid(_))));
    }

    #[test]
    fn only_bearer_headers_carry_tokens() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn lifetimes_parse_and_are_bounded() {
        assert_eq!(parse_ttl("1h").unwrap(), Duration::hours(1));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::minutes(30));
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("400d").is_err());
        assert!(parse_ttl("soon").is_err());
    }

    #[test]
    fn production_without_a_key_is_refused() {
        let cfg = AuthConfig::default();
        assert!(Authenticator::from_config(&cfg, Mode::Production, None).is_err());
    }

    #[tokio::test]
    async fn a_development_secret_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwt-secret");
        let cfg = AuthConfig::default();
        let email = Email::parse("a@example.com").unwrap();
        let token = Authenticator::from_config(&cfg, Mode::Development, Some(&file))
            .unwrap()
            .mint(&email, Duration::hours(1))
            .unwrap();
        let again = Authenticator::from_config(&cfg, Mode::Development, Some(&file)).unwrap();
        assert_eq!(again.verify(&token).await.unwrap(), email);
    }
}
