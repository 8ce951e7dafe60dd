//! `bootstrap` (the genesis: the first people's roles), `db-user` (the SurrealDB
//! user the service signs in as) and `token` (a development token).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use graph_model::inventory::NodeSpec;
use graph_model::store::StoreError;
use graph_model::{Email, Name, NewPerson, Role, Text};

use super::open_store;
use crate::auth::parse_ttl;
use crate::config::{Config, Mode};

/// See [`Command::DbUser`].
pub(super) async fn db_user(cfg: &Config, user: &str, apply: bool) -> Result<()> {
    let (password, generated) = match std::env::var("NHIGOV_DB_USER_PASSWORD") {
        Ok(p) => (p, false),
        Err(_) => (format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()), true),
    };
    let (ns, db) = (&cfg.db.namespace, &cfg.db.database);
    let sql = graph_model::store::database_user_sql(ns, db, user, &password)
        .map_err(|e| anyhow!("NHIGOV_DB_USER_PASSWORD: {e}"))?;
    if !apply {
        println!("-- Run as the server's root user:");
        print!("{sql}");
    } else {
        let store_cfg =
            graph_model::store::StoreConfig { user_level: graph_model::store::UserLevel::Root, ..cfg.store_config() };
        graph_model::store::define_database_user(&store_cfg, user, &password)
            .await
            .with_context(|| format!("defining user `{user}` on {ns}/{db} at {}", cfg.db.url))?;
        println!("User `{user}` defined on database {ns}/{db} with the EDITOR role.");
    }
    if generated {
        println!("Its password (shown once): {password}");
    }
    println!(
        "Run the service with NHIGOV_DB__USERNAME={user} NHIGOV_DB__PASSWORD=<its password> NHIGOV_DB__USER_LEVEL=database"
    );
    Ok(())
}

/// The genesis: every initial role in one decision (see `Command::Bootstrap`).
pub(super) async fn bootstrap(cfg: &Config, admins: &[String], roles: Option<&Path>) -> Result<()> {
    if cfg.mode == Mode::Production && admins.len() < 2 {
        bail!("production needs at least two --admin: a role grant waits for a second admin");
    }
    let mut wanted: Vec<(String, Vec<Role>)> = admins.iter().map(|a| (a.clone(), vec![Role::Admin])).collect();
    if let Some(file) = roles {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let map: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(&text)
            .with_context(|| format!("{}: expected {{\"e-mail\": [\"role\", ...]}}", file.display()))?;
        for (email, names) in map {
            let mut roles = Vec::new();
            for n in names {
                roles.push(Role::parse(&n).map_err(|e| anyhow!("{}: {email}: {}", file.display(), e.message))?);
            }
            match wanted.iter_mut().find(|(e, _)| *e == email) {
                Some((_, held)) => held.extend(roles.into_iter().filter(|r| *r != Role::Admin)),
                None => wanted.push((email, roles)),
            }
        }
    }
    let store = open_store(cfg).await?;
    // Checked before anyone is created, so a refused bootstrap leaves nothing behind;
    // the genesis checks it again as it commits.
    if store.chain_head().await?.seq != 0 {
        bail!("the decision chain has begun: roles are now granted by governed changes (updatePerson)");
    }
    let mut grants = Vec::new();
    for (email, roles) in wanted {
        let parsed = Email::parse(&email).map_err(|e| anyhow!("{email}: {}", e.message))?;
        let id = match store.person_by_email(&parsed).await? {
            Some(p) => p.id,
            None => {
                let name = email.split('@').next().unwrap_or(&email).to_owned();
                let spec = NodeSpec::Person(NewPerson {
                    name: Name::parse(&name).map_err(|e| anyhow!("{email}: {}", e.message))?,
                    email: parsed,
                    active: true,
                    machine: false,
                });
                store.create_node(&spec).await?.id().clone()
            }
        };
        grants.push((id, roles));
    }
    let rationale = Text::parse("the first roles, given at bootstrap").map_err(|e| anyhow!(e.message))?;
    let decision = store.genesis(&grants, &rationale, false).await.map_err(|e| match e {
        StoreError::Conflict(m) => anyhow!("{m}"),
        e => anyhow!("the genesis failed: {e}"),
    })?;
    println!("genesis recorded as {} (seq {}): {} people given their roles", decision.id, decision.seq, grants.len());
    store.close().await;
    Ok(())
}

/// `token`: a development token for `subject`, valid for `ttl`.
pub(super) fn token(cfg: &Config, subject: &str, ttl: &str) -> Result<()> {
    if cfg.mode == Mode::Production {
        bail!("`nhigov token` works in development mode only: in production, tokens come from the identity provider");
    }
    let email = Email::parse(subject).map_err(|e| anyhow!("--subject: {}", e.message))?;
    let ttl = parse_ttl(ttl).map_err(|e| anyhow!("--ttl: {e}"))?;
    let auth = super::authenticator(cfg)?;
    println!("{}", auth.mint(&email, ttl).map_err(|e| anyhow!(e))?);
    Ok(())
}
