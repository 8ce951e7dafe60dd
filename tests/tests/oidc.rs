//! Single sign-on through an OpenID Connect provider the test serves itself (a discovery
//! document and a JWKS, Ed25519 keys): a token the provider signed signs its person in;
//! after the provider rotates its keys, a token with the new key does too; a flood of
//! tokens naming unknown keys asks the provider once per refresh interval, not once per
//! token; and a token is refused for the wrong issuer or audience, an unverified
//! e-mail, a lifetime past the maximum, a key the provider does not publish, or a
//! symmetric algorithm.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nhigov::auth::oidc::OidcConfig;
use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};
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
}

async fn discovery(State(p): State<Provider>) -> Json<Value> {
    Json(json!({ "issuer": p.issuer, "jwks_uri": format!("{}/jwks", p.issuer) }))
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
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
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

async fn start(p: &Provider, refresh_secs: u64) -> TestServer {
    let mut cfg = nhigov::config::Config::default();
    cfg.auth.oidc = Some(OidcConfig {
        issuer: Some(p.issuer.clone()),
        jwks_url: None,
        audience: Some(AUDIENCE.into()),
        email_claim: "email".into(),
        max_lifetime_secs: 3600,
        refresh_secs,
    });
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
    let cfg = OidcConfig {
        issuer: None,
        jwks_url: Some("https://idp.example/jwks".into()),
        audience: None,
        email_claim: "email".into(),
        max_lifetime_secs: 3600,
        refresh_secs: 30,
    };
    let err = nhigov::auth::oidc::Oidc::new(cfg.clone(), true).err().expect("refused in production");
    assert!(err.contains("issuer") && err.contains("audience"), "{err}");
    assert!(nhigov::auth::oidc::Oidc::new(cfg, false).is_ok(), "development may name the keys alone");
}
