//! API tokens for machine principals (scanners, automation).
//!
//! A token is shown once, when it is made; the store keeps only its SHA-256, so a copy
//! of the database yields no usable token. A token acts for a person record (the
//! machine principal) with at most the roles in its scopes, and stops working the
//! moment it is revoked, expires, or its principal is deactivated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dt;
use crate::domain::*;
use crate::store::{Content, Result, Store, StoreError, Vars, rid, take};

/// The prefix every token starts with, so they are recognisable (and scannable) in
/// configuration and logs.
pub const TOKEN_PREFIX: &str = "nhg_";

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub principal: NodeId,
    pub scopes: Vec<Role>,
    pub created_at: DateTime<Utc>,
    pub created_by: NodeId,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who a presented token acts for, and with which roles.
#[derive(Debug, Clone)]
pub struct TokenPrincipal {
    pub person: Person,
    /// The principal's roles limited to the token's scopes.
    pub roles: Vec<Role>,
}

fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

impl Store {
    /// Make a token for `principal` with `scopes` (each must be a role the principal
    /// holds). Returns the record and the token text, which is not kept.
    pub async fn create_api_token(
        &self,
        by: &NodeId,
        principal: &NodeId,
        name: &Name,
        scopes: &[Role],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(ApiToken, String)> {
        let person = self.active_person(principal, "principal").await?;
        if scopes.is_empty() {
            return Err(ValueError::new("scopes", "a token needs at least one scope").into());
        }
        if let Some(missing) = scopes.iter().find(|r| !person.has_role(**r)) {
            return Err(ValueError::new("scopes", format!("{} does not hold the role {missing}", person.email)).into());
        }
        let token = format!("{TOKEN_PREFIX}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let id = uuid::Uuid::now_v7().simple().to_string();
        let content = Content::new()
            .set("name", name.as_str())
            .set("principal", rid(principal))
            .set("token_sha256", token_hash(&token))
            .set("scopes", scopes.iter().map(|r| r.as_str()).collect::<Vec<_>>())
            .set("created_at", dt(Utc::now()))
            .set("created_by", rid(by))
            .opt("expires_at", expires_at.map(dt))
            .into_value();
        let rec = surrealdb::types::RecordId::new("api_token", id.clone());
        self.write("CREATE ONLY $id CONTENT $content", &Vars::new().set("id", rec).set("content", content)).await?;
        let t = self.api_token(&id).await?.ok_or_else(|| StoreError::Database("token not stored".into()))?;
        Ok((t, token))
    }

    async fn api_token(&self, key: &str) -> Result<Option<ApiToken>> {
        let rec = surrealdb::types::RecordId::new("api_token", key.to_owned());
        let mut resp = self.read("SELECT *, record::id(id) AS id FROM ONLY $id", &Vars::new().set("id", rec)).await?;
        take(&mut resp, 0)
    }

    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let mut resp = self.read("SELECT *, record::id(id) AS id FROM api_token ORDER BY id", &Vars::new()).await?;
        take(&mut resp, 0)
    }

    /// Revoke a token at once.
    pub async fn revoke_api_token(&self, key: &str) -> Result<ApiToken> {
        let rec = surrealdb::types::RecordId::new("api_token", key.to_owned());
        let sql = "BEGIN;
             IF !record::exists($id) { THROW 'NOT_FOUND: api token ' + record::id($id) };
             UPDATE $id SET revoked_at = time::now() WHERE revoked_at = NONE;
             COMMIT;";
        self.write(sql, &Vars::new().set("id", rec)).await?;
        self.api_token(key).await?.ok_or_else(|| StoreError::NotFound(key.to_owned()))
    }

    /// The principal a presented token acts for, if it is valid now.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<TokenPrincipal>> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let mut resp = self
            .read(
                "SELECT scopes, principal FROM api_token WHERE token_sha256 = $h AND revoked_at = NONE
                   AND (expires_at = NONE OR expires_at > time::now()) LIMIT 1",
                &Vars::new().set("h", token_hash(token)),
            )
            .await?;
        #[derive(Deserialize)]
        struct Row {
            scopes: Vec<Role>,
            principal: NodeId,
        }
        let rows: Vec<Row> = take(&mut resp, 0)?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let person = match self.person(&row.principal).await {
            Ok(p) if p.active => p,
            _ => return Ok(None),
        };
        let roles = row.scopes.into_iter().filter(|r| person.has_role(*r)).collect();
        Ok(Some(TokenPrincipal { person, roles }))
    }
}
