//! Browser sign-in through the OpenID Connect provider: the authorization code flow
//! with PKCE (RFC 7636, S256), for the console and GraphiQL.
//!
//! `GET /auth/login?to=console|graphiql` makes a state, a nonce and a PKCE verifier,
//! keeps them in a short-lived `HttpOnly` cookie scoped to `/auth/callback` (so any
//! replica can finish the sign-in, and nothing is held in memory), and sends the browser
//! to the provider's authorization endpoint with the verifier's S256 challenge.
//! `GET /auth/callback?code&state` refuses a state that is not the cookie's (a sign-in
//! the browser did not start), exchanges the code with the verifier at the token
//! endpoint, checks the ID token as any token is checked (signature, issuer, audience,
//! lifetime, e-mail, and its nonce), and sends the browser back to the page it came from
//! with the token in the URL fragment, which never reaches a server and which the page
//! moves into its tab's storage at once. Where to go back is one of two names, never a
//! URL, so the callback cannot be made to send a token elsewhere.
//!
//! `GET /auth/config` tells a page whether browser sign-in is configured.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::AppState;
use super::respond::{Media, error};

/// The cookie that carries a sign-in in progress from `/auth/login` to `/auth/callback`.
const COOKIE: &str = "nhigov_signin";
/// How long a sign-in may take at the provider.
const COOKIE_SECS: u32 = 600;

/// The pages a sign-in returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Console,
    Graphiql,
}

impl Page {
    fn as_str(self) -> &'static str {
        match self {
            Page::Console => "console",
            Page::Graphiql => "graphiql",
        }
    }

    fn parse(s: &str) -> Option<Page> {
        [Page::Console, Page::Graphiql].into_iter().find(|p| p.as_str() == s)
    }

    fn path(self) -> &'static str {
        match self {
            Page::Console => "/console/",
            Page::Graphiql => "/",
        }
    }
}

pub async fn config(State(state): State<AppState>) -> Json<serde_json::Value> {
    let available = state.auth.provider().and_then(|p| p.browser_client()).is_some();
    Json(json!({ "browserSignIn": available, "login": available.then_some("/auth/login") }))
}

#[derive(Deserialize)]
pub struct LoginQuery {
    to: Option<String>,
}

pub async fn login(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let Some((provider, client)) = state.auth.provider().and_then(|p| p.browser_client().map(|c| (p, c))) else {
        return refused(StatusCode::NOT_FOUND, "browser sign-in is not configured (auth.oidc.redirect_url)");
    };
    let endpoints = match provider.endpoints().await {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "the identity provider's endpoints could not be read");
            return refused(StatusCode::BAD_GATEWAY, "the identity provider could not be reached; try again");
        }
    };
    let page = match q.to.as_deref() {
        None => Page::Console,
        Some(to) => match Page::parse(to) {
            Some(page) => page,
            None => return refused(StatusCode::BAD_REQUEST, "`to` is `console` or `graphiql`"),
        },
    };
    let (state_token, nonce, verifier) = (random(), random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let url = reqwest::Url::parse_with_params(
        &endpoints.authorization,
        &[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_url.as_str()),
            ("scope", client.scopes.as_str()),
            ("state", state_token.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    let Ok(url) = url else {
        return refused(StatusCode::BAD_GATEWAY, "the identity provider's authorization endpoint is not a URL");
    };
    let secure = if client.redirect_url.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={state_token}.{nonce}.{verifier}.{page}; Path=/auth/callback; Max-Age={COOKIE_SECS}; HttpOnly; SameSite=Lax{secure}",
        page = page.as_str(),
    );
    redirect(StatusCode::FOUND, url.as_str(), Some(&cookie))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<CallbackQuery>) -> Response {
    let Some(provider) = state.auth.provider() else {
        return refused(StatusCode::NOT_FOUND, "browser sign-in is not configured (auth.oidc.redirect_url)");
    };
    if let Some(e) = q.error {
        let why = q.error_description.unwrap_or(e);
        return refused(StatusCode::UNAUTHORIZED, &format!("the identity provider did not sign you in: {why}"));
    }
    let Some(pending) = pending(&headers) else {
        return refused(StatusCode::BAD_REQUEST, "no sign-in in progress in this browser (or it took over 10 minutes)");
    };
    let (Some(code), Some(returned)) = (q.code, q.state) else {
        return refused(StatusCode::BAD_REQUEST, "the provider sent back no code and state");
    };
    if returned != pending.state {
        warn!("a sign-in callback with a state this browser did not start was refused");
        return refused(StatusCode::BAD_REQUEST, "this sign-in was not started in this browser");
    }
    match provider.exchange(&code, &pending.verifier, &pending.nonce).await {
        Ok((email, token)) => {
            info!(%email, "signed in through the identity provider");
            let to = format!("{}#token={token}", pending.page.path());
            let clear = format!("{COOKIE}=; Path=/auth/callback; Max-Age=0; HttpOnly; SameSite=Lax");
            redirect(StatusCode::SEE_OTHER, &to, Some(&clear))
        }
        Err(e) => {
            warn!(error = %e, "a browser sign-in failed");
            refused(StatusCode::UNAUTHORIZED, &format!("sign-in failed: {e}"))
        }
    }
}

/// A sign-in in progress, as its cookie holds it.
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    page: Page,
}

fn pending(headers: &HeaderMap) -> Option<Pending> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
    let mut parts = value.split('.');
    let (state, nonce, verifier, page) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [state, nonce, verifier].iter().any(|p| p.len() != 43) {
        return None;
    }
    Some(Pending { state: state.into(), nonce: nonce.into(), verifier: verifier.into(), page: Page::parse(page)? })
}

/// 32 random bytes, base64url: a state, a nonce or a PKCE verifier (43 characters, the
/// RFC's recommended length).
fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn redirect(status: StatusCode, to: &str, cookie: Option<&str>) -> Response {
    let mut resp = status.into_response();
    if let Ok(to) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, to);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

fn refused(status: StatusCode, message: &str) -> Response {
    error(status, Media::Json, "SIGN_IN_FAILED", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_reads_back_from_its_cookie_and_nothing_else_does() {
        let (s, n, v) = (random(), random(), random());
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("a=b; {COOKIE}={s}.{n}.{v}.graphiql; c=d")).unwrap());
        let p = pending(&h).unwrap();
        assert_eq!((p.state, p.nonce, p.verifier, p.page), (s.clone(), n.clone(), v.clone(), Page::Graphiql));
        for bad in [
            format!("{COOKIE}={s}.{n}.{v}.elsewhere"),
            format!("{COOKIE}={s}.{n}.short.console"),
            format!("{COOKIE}={s}.{n}"),
            "other=1".into(),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_str(&bad).unwrap());
            assert!(pending(&h).is_none(), "{bad}");
        }
    }
}
