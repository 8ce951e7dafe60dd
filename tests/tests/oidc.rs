//! Single sign-on through an OpenID Connect provider the test serves itself (a discovery
//! document and a JWKS, Ed25519 keys): a token the provider signed signs its person in;
//! after the provider rotates its keys, a token with the new key does too; a flood of
//! tokens naming unknown keys asks the provider once per refresh interval, not once per
//! token; and a token is refused for the wrong issuer or audience, an unverified
//! e-mail, a lifetime past the maximum, a key the provider does not publish, or a
//! symmetric algorithm.
//!
//! Browser sign-in (authorization code with PKCE) runs against the same provider's
//! authorization and token endpoints: the code comes back to `/auth/callback`, is
//! exchanged with the verifier only the server and the browser's cookie hold, and the ID
//! token signs its person in; a replayed code, a state the browser did not start, a
//! verifier that does not match the challenge, a wrong nonce and a page that is not one
//! of the two sign-in pages are refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nhigov::auth::oidc::OidcConfig;
use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

const AUDIENCE: &str = "nhigov-portal";
const INES: &str = "ines.ortega@corvid.example";

/// An Ed25519 key of the provider's: its id, the key to sign with, its JWK.
struct Key {
    kid: &'static str,
    encoding: EncodingKey,
    jwk: Value,
}

fn key(kid: &'static str, seed: u8) -> Key {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    // PKCS#8 v1 of an Ed25519 private key: a fixed prefix, then the 32-byte seed.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&[seed; 32]);
    let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
    Key {
        kid,
        encoding: EncodingKey::from_ed_der(&der),
        jwk: json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig" }),
    }
}

#[derive(Clone)]
struct Provider {
    issuer: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    /// Codes issued and not yet exchanged, with what they were asked with.
    codes: Arc<Mutex<HashMap<String, HashMap<String, String>>>>,
    /// The key the token endpoint signs with, and the nonce it puts in (the one asked
    /// for unless a test forges another).
    signer: Arc<Mutex<Option<(&'static str, EncodingKey)>>>,
    forged_nonce: Arc<Mutex<Option<String>>>,
}

async fn discovery(State(p): State<Provider>) -> Json<Value> {
    Json(json!({ "issuer": p.issuer, "jwks_uri": format!("{}/jwks", p.issuer),
                 "authorization_endpoint": format!("{}/authorize", p.issuer),
                 "token_endpoint": format!("{}/token", p.issuer) }))
}

/// The provider's sign-in page, which signs Ines in at once: a code for the client, sent
/// back to its redirect URI with the state.
async fn authorize(State(p): State<Provider>, Query(q): Query<HashMap<String, String>>) -> Response {
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("client_id").map(String::as_str) == Some(AUDIENCE)
        && q.get("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid"))
        && q.contains_key("code_challenge")
        && q.contains_key("nonce");
    if !ok {
        return (axum::http::StatusCode::BAD_REQUEST, "not a PKCE authorization request").into_response();
    }
    let code = format!("code-{}", p.codes.lock().await.len());
    let back = format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]);
    p.codes.lock().await.insert(code, q);
    Redirect::to(&back).into_response()
}

/// The token endpoint: a code once, for the client and redirect URI it was issued to,
/// with the verifier whose S256 digest is the challenge.
async fn token(State(p): State<Provider>, Form(f): Form<HashMap<String, String>>) -> Response {
    let refuse = |e: &str| (axum::http::StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response();
    let asked = match f.get("code") {
        Some(c) => p.codes.lock().await.remove(c),
        None => None,
    };
    let Some(asked) = asked else {
        return refuse("invalid_grant");
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(f.get("code_verifier").cloned().unwrap_or_default()));
    if f.get("grant_type").map(String::as_str) != Some("authorization_code")
        || f.get("client_id") != asked.get("client_id")
        || f.get("redirect_uri") != asked.get("redirect_uri")
        || Some(&challenge) != asked.get("code_challenge")
    {
        return refuse("invalid_grant");
    }
    let mut claims = claims(&p, INES);
    claims["nonce"] = json!(p.forged_nonce.lock().await.clone().unwrap_or_else(|| asked["nonce"].clone()));
    let signer = p.signer.lock().await;
    let (kid, key) = signer.as_ref().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some((*kid).into());
    let id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    Json(json!({ "id_token": id_token, "access_token": "opaque", "token_type": "Bearer", "expires_in": 600 }))
        .into_response()
}

async fn jwks(State(p): State<Provider>) -> Json<Value> {
    p.fetches.fetch_add(1, Ordering::SeqCst);
    Json(p.jwks.lock().await.clone())
}

async fn serve_provider(keys: &[&Key]) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let provider = Provider {
        issuer,
        jwks: Arc::new(Mutex::new(json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }))),
        fetches: Arc::default(),
        codes: Arc::default(),
        signer: Arc::new(Mutex::new(keys.first().map(|k| (k.kid, k.encoding.clone())))),
        forged_nonce: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(provider.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    provider
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.into());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn claims(p: &Provider, email: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "iss": p.issuer, "aud": AUDIENCE, "sub": "00u-opaque-id", "email": email, "email_verified": true,
            "iat": now, "exp": now + 600 })
}

async fn me(s: &TestServer, token: &str) -> Value {
    s.gql(token, "{ me { email } }", json!({})).await.1
}

/// Where the provider sends the browser back: this server's callback, as registered.
const REDIRECT: &str = "https://nhigov.test/auth/callback";

fn oidc_config(
    issuer: Option<String>,
    jwks_url: Option<String>,
    audience: Option<&str>,
    refresh_secs: u64,
) -> OidcConfig {
    OidcConfig {
        issuer,
        jwks_url,
        audience: audience.map(Into::into),
        email_claim: "email".into(),
        max_lifetime_secs: 3600,
        refresh_secs,
        redirect_url: Some(REDIRECT.into()),
        client_id: None,
        client_secret: None,
        scopes: "openid email".into(),
    }
}

async fn start(p: &Provider, refresh_secs: u64) -> TestServer {
    let mut cfg = nhigov::config::Config::default();
    cfg.auth.oidc = Some(oidc_config(Some(p.issuer.clone()), None, Some(AUDIENCE), refresh_secs));
    let s = TestServer::start_with(cfg).await;
    nhigov::demo::load(&s.store).await.unwrap();
    s
}

#[tokio::test]
async fn a_providers_token_signs_its_person_in_and_keeps_working_across_a_key_rotation() {
    let (a, b) = (key("key-a", 7), key("key-b", 8));
    let p = serve_provider(&[&a]).await;
    let s = start(&p, 1).await;

    let body = me(&s, &sign(&a, &claims(&p, INES))).await;
    assert_eq!(body["data"]["me"]["email"], INES, "{body}");
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1, "the keys are fetched once, then cached");
    let body = me(&s, &sign(&a, &claims(&p, INES))).await;
    assert_eq!(body["data"]["me"]["email"], INES);
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1);

    // The provider rotates: key B replaces key A.
    *p.jwks.lock().await = json!({ "keys": [b.jwk.clone()] });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let body = me(&s, &sign(&b, &claims(&p, INES))).await;
    assert_eq!(body["data"]["me"]["email"], INES, "a token with the new key: {body}");
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2, "the unknown kid made the keys be fetched again");
    let body = me(&s, &sign(&a, &claims(&p, INES))).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "the retired key signs no one in: {body}");

    // A flood of made-up kids: at most one more fetch within the refresh interval.
    let before = p.fetches.load(Ordering::SeqCst);
    for i in 0..50 {
        let mut forged = key("key-x", 9);
        forged.kid = if i % 2 == 0 { "made-up-1" } else { "made-up-2" };
        let body = me(&s, &sign(&forged, &claims(&p, INES))).await;
        assert_eq!(code(&body), "UNAUTHENTICATED");
    }
    let asked = p.fetches.load(Ordering::SeqCst) - before;
    assert!(asked <= 1, "50 unknown kids asked the provider {asked} times");

    // Development's HS256 tokens still work beside the provider.
    let body = me(&s, &s.token(INES)).await;
    assert_eq!(body["data"]["me"]["email"], INES);
}

#[tokio::test]
async fn a_token_is_refused_for_the_wrong_issuer_audience_lifetime_or_algorithm_or_an_unverified_email() {
    let a = key("key-a", 7);
    let p = serve_provider(&[&a]).await;
    let s = start(&p, 30).await;
    let good = claims(&p, INES);
    assert_eq!(me(&s, &sign(&a, &good)).await["data"]["me"]["email"], INES);

    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut c = good.clone();
    c["iss"] = json!("https://another-issuer.example");
    cases.push(("another issuer", c));
    let mut c = good.clone();
    c["aud"] = json!("another-application");
    cases.push(("another audience", c));
    let mut c = good.clone();
    c["email_verified"] = json!(false);
    cases.push(("an unverified e-mail", c));
    let mut c = good.clone();
    c["exp"] = json!(good["iat"].as_i64().unwrap() + 7200);
    cases.push(("a lifetime past the maximum", c));
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("email");
    cases.push(("no e-mail claim", c));
    let mut c = good.clone();
    c["email"] = json!("nobody@corvid.example");
    cases.push(("an unknown person", c));
    for (why, claims) in cases {
        let body = me(&s, &sign(&a, &claims)).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{why}: {body}");
    }

    // HS256 with the provider's public key as the secret, naming the provider's kid: the
    // algorithm confusion an asymmetric-only check refuses.
    let public = a.jwk["x"].as_str().unwrap().as_bytes().to_vec();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(a.kid.into());
    let forged = jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(&public)).unwrap();
    assert_eq!(code(&me(&s, &forged).await), "UNAUTHENTICATED");
}

#[test]
fn production_needs_the_issuer_and_the_audience() {
    let cfg = OidcConfig { redirect_url: None, ..oidc_config(None, Some("https://idp.example/jwks".into()), None, 30) };
    let err = nhigov::auth::oidc::Oidc::new(cfg.clone(), true).err().expect("refused in production");
    assert!(err.contains("issuer") && err.contains("audience"), "{err}");
    assert!(nhigov::auth::oidc::Oidc::new(cfg, false).is_ok(), "development may name the keys alone");
}

/// One browser's sign-in: `/auth/login`, the provider's page, and back to the callback.
/// Returns the cookie the login set and the callback URL (on the test server) the
/// provider sent the browser to.
async fn begin_sign_in(s: &TestServer, browser: &reqwest::Client, to: &str) -> (String, String) {
    let resp = browser.get(s.url(&format!("/auth/login?to={to}"))).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{:?}", resp.text().await);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Secure"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let at_provider = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = browser.get(&at_provider).send().await.unwrap();
    assert_eq!(resp.status(), 303, "the provider signs in at once: {:?}", resp.text().await);
    let back = resp.headers()["location"].to_str().unwrap();
    let query = back.strip_prefix(&format!("{REDIRECT}?")).expect("sent back to the registered callback");
    (cookie, s.url(&format!("/auth/callback?{query}")))
}

async fn finish_sign_in(browser: &reqwest::Client, callback: &str, cookie: &str) -> (u16, String, Value) {
    let resp = browser.get(callback).header("cookie", cookie).send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, location, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_browser_signs_in_through_the_provider_with_pkce_and_nothing_else_gets_a_token() {
    let (a, b) = (key("key-a", 7), key("key-b", 8));
    let p = serve_provider(&[&a]).await;
    let s = start(&p, 1).await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cfg: Value = browser.get(s.url("/auth/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(cfg, json!({ "browserSignIn": true, "login": "/auth/login" }));

    // The console's sign-in: back to the console with the provider's token in the fragment.
    let (cookie, callback) = begin_sign_in(&s, &browser, "console").await;
    let (status, location, _) = finish_sign_in(&browser, &callback, &cookie).await;
    assert_eq!(status, 303);
    let token = location.strip_prefix("/console/#token=").expect("back to the console");
    assert_eq!(me(&s, token).await["data"]["me"]["email"], INES);

    // The code is spent: the same callback again gets nothing.
    let (status, _, body) = finish_sign_in(&browser, &callback, &cookie).await;
    assert_eq!((status, code(&body)), (401, "SIGN_IN_FAILED"), "{body}");

    // GraphiQL's sign-in goes back to GraphiQL; after a key rotation too.
    *p.jwks.lock().await = json!({ "keys": [b.jwk.clone()] });
    *p.signer.lock().await = Some((b.kid, b.encoding.clone()));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (cookie, callback) = begin_sign_in(&s, &browser, "graphiql").await;
    let (status, location, body) = finish_sign_in(&browser, &callback, &cookie).await;
    assert_eq!(status, 303, "{body}");
    let token = location.strip_prefix("/#token=").expect("back to GraphiQL");
    assert_eq!(me(&s, token).await["data"]["me"]["email"], INES);

    // A callback carrying a state this browser did not start (a login forced on it), or
    // none at all: refused before any code is spent.
    let (theirs, their_callback) = begin_sign_in(&s, &browser, "console").await;
    let (mine, _) = begin_sign_in(&s, &browser, "console").await;
    let (status, _, body) = finish_sign_in(&browser, &their_callback, &mine).await;
    assert_eq!((status, code(&body)), (400, "SIGN_IN_FAILED"), "{body}");
    let (status, _, body) = finish_sign_in(&browser, &their_callback, "").await;
    assert_eq!((status, code(&body)), (400, "SIGN_IN_FAILED"), "{body}");
    let (status, _, _) = finish_sign_in(&browser, &their_callback, &theirs).await;
    assert_eq!(status, 303, "the code was still good for the browser that started it");

    // A verifier that is not the one the challenge was made from: the provider refuses.
    let (cookie, callback) = begin_sign_in(&s, &browser, "console").await;
    let mut parts: Vec<String> = cookie.split('.').map(str::to_owned).collect();
    parts[2] = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let (status, _, body) = finish_sign_in(&browser, &callback, &parts.join(".")).await;
    assert_eq!((status, code(&body)), (401, "SIGN_IN_FAILED"), "{body}");

    // An ID token with another sign-in's nonce: refused.
    *p.forged_nonce.lock().await = Some("someone-elses-nonce".into());
    let (cookie, callback) = begin_sign_in(&s, &browser, "console").await;
    let (status, _, body) = finish_sign_in(&browser, &callback, &cookie).await;
    assert_eq!((status, code(&body)), (401, "SIGN_IN_FAILED"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("nonce"), "{body}");

    // Back only to the two sign-in pages: never to a URL the request names.
    let resp = browser.get(s.url("/auth/login?to=https://evil.example/")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "SIGN_IN_FAILED", "{body}");
}

/// The whole chain in Chromium (`node-clients/signin.mjs`): the console's sign-in button
/// to the provider and back signed in; GraphiQL sent to sign-in and back, its HTTP
/// requests and its WebSocket client's `connection_init` carrying the token, a live
/// subscription among them.
#[tokio::test]
async fn in_chromium_the_console_and_graphiql_sign_in_through_the_provider_and_graphiqls_subscriptions_carry_the_token()
{
    let dir = crate::node_clients::node_clients();
    let a = key("key-a", 7);
    let p = serve_provider(&[&a]).await;
    let s = start(&p, 30).await;
    let (url, origin) = (s.url(""), REDIRECT.trim_end_matches("/auth/callback").to_owned());
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").arg("signin.mjs").arg(url).arg(origin).current_dir(dir).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "signin.mjs failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("signin.mjs printed no summary ({e}):\n{stdout}"));
    assert_eq!(seen["problems"], json!([]), "{seen:#}");

    // The console: signed in as the provider's person, the token out of the address bar.
    assert!(seen["console"]["who"].as_str().unwrap().contains("Ines"), "{seen:#}");
    assert_eq!(seen["console"]["stored"], true, "{seen:#}");
    assert_eq!(seen["console"]["url"], s.url("/console/#/search"), "{seen:#}");

    // GraphiQL: back without the token in the address bar; over HTTP and over the
    // WebSocket, Ines.
    let g = &seen["graphiql"];
    assert_eq!(g["url"], s.url("/"), "{seen:#}");
    assert_eq!(g["options"]["subscriptionUrl"], format!("ws://{}/graphql/ws", s.addr), "{seen:#}");
    assert_eq!(g["options"]["wsConnectionParams"], Value::Null, "the page names no token: the script adds it");
    assert_eq!(g["http"]["data"]["me"]["email"], INES, "{seen:#}");
    assert_eq!(g["wsQuery"]["results"][0]["data"]["me"]["email"], INES, "{seen:#}");
    assert!(g["caseId"].as_str().is_some_and(|c| c.starts_with("case:")), "{seen:#}");
    assert_eq!(g["event"]["data"]["caseEvents"]["actor"]["email"], INES, "{seen:#}");
}

#[tokio::test]
async fn without_a_redirect_url_there_is_no_browser_sign_in() {
    let a = key("key-a", 7);
    let p = serve_provider(&[&a]).await;
    let mut cfg = nhigov::config::Config::default();
    cfg.auth.oidc =
        Some(OidcConfig { redirect_url: None, ..oidc_config(Some(p.issuer.clone()), None, Some(AUDIENCE), 30) });
    let s = TestServer::start_with(cfg).await;
    let cfg: Value = s.http.get(s.url("/auth/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(cfg["browserSignIn"], false);
    let resp = s.http.get(s.url("/auth/login")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    // A client id that is not the audience would get ID tokens the API refuses.
    let mut wrong = oidc_config(Some(p.issuer.clone()), None, Some(AUDIENCE), 30);
    wrong.client_id = Some("another-client".into());
    let err = nhigov::auth::oidc::Oidc::new(wrong, false).err().expect("refused");
    assert!(err.contains("client_id"), "{err}");
}
