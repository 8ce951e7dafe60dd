//! API tokens for machine principals (scanners, automation).
//!
//! A token is shown once, when it is asked for; the store keeps only its SHA-256, so a
//! copy of the database yields no usable token. Issuing one is a governed change
//! ([`crate::domain::Change::Token`]): a token with more than the ingest scope, or for
//! someone other than the one asking, works only once a second admin has approved it. A token acts for a person record (the
//! machine principal) with at most the roles in its scopes, and stops working the
//! moment it is revoked, expires, or its principal is deactivated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::*;
use crate::store::signins::TokenStanding;
use crate::store::{Result, Store, Vars, take};

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

/// A new token: its record key, the text shown once to whoever asked for it, and the
/// SHA-256 that is all the store keeps. The token works once the `token` change that
/// carries the hash is applied.
pub fn new_token() -> (String, String, String) {
    let token = format!("{TOKEN_PREFIX}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let hash = token_hash(&token);
    (uuid::Uuid::now_v7().simple().to_string(), token, hash)
}

impl Store {
    /// The API token a `token` change issued, once it is applied.
    pub async fn api_token_by_key(&self, key: &str) -> Result<Option<ApiToken>> {
        self.api_token(key).await
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

    /// The principal a presented token acts for, if it is valid now. Its standing is
    /// remembered until this process writes (see `signins`); its expiry is judged at
    /// each use.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<TokenPrincipal>> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = token_hash(token);
        let standing = match self.signins.token(&hash) {
            Some(standing) => standing,
            None => {
                let seen = self.signins.before_read();
                let Some(standing) = self.token_standing(&hash).await? else { return Ok(None) };
                if let Some(seen) = seen {
                    self.signins.remember_token(seen, &hash, &standing);
                }
                standing
            }
        };
        Ok(standing.principal(Utc::now()))
    }

    /// A token's scopes, principal and expiry, while it is neither revoked nor expired.
    async fn token_standing(&self, hash: &str) -> Result<Option<TokenStanding>> {
        let mut resp = self
            .read(
                "SELECT scopes, principal, expires_at FROM api_token WHERE token_sha256 = $h AND revoked_at = NONE
                   AND (expires_at = NONE OR expires_at > time::now()) LIMIT 1",
                &Vars::new().set("h", hash),
            )
            .await?;
        #[derive(Deserialize)]
        struct Row {
            scopes: Vec<Role>,
            principal: NodeId,
            expires_at: Option<DateTime<Utc>>,
        }
        let rows: Vec<Row> = take(&mut resp, 0)?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let Ok(person) = self.person(&row.principal).await else { return Ok(None) };
        Ok(Some(TokenStanding { scopes: row.scopes, person, expires_at: row.expires_at }))
    }
}

impl TokenStanding {
    /// Whom the token acts for at `now`, with its scopes' roles that the person holds:
    /// none once it has expired or its principal is inactive. Judged at each use, as a
    /// remembered standing sees no write when a token expires.
    pub(crate) fn principal(self, now: DateTime<Utc>) -> Option<TokenPrincipal> {
        if !self.person.active || self.expires_at.is_some_and(|t| t <= now) {
            return None;
        }
        let roles = self.scopes.into_iter().filter(|r| self.person.has_role(*r)).collect();
        Some(TokenPrincipal { person: self.person, roles })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::signins::tests::someone;

    #[test]
    fn a_remembered_token_stops_when_it_expires_or_its_principal_is_inactive() {
        let now = Utc::now();
        let standing = |expires_at, active| TokenStanding {
            scopes: vec![Role::Viewer, Role::Admin],
            person: Person { active, ..someone() },
            expires_at,
        };
        let p = standing(Some(now + chrono::Duration::seconds(1)), true).principal(now).unwrap();
        assert_eq!(p.roles, vec![Role::Viewer], "only the scopes the principal holds");
        assert!(standing(None, true).principal(now).is_some());
        assert!(standing(Some(now), true).principal(now).is_none(), "expired at this instant");
        assert!(standing(Some(now - chrono::Duration::seconds(1)), true).principal(now).is_none());
        assert!(standing(None, false).principal(now).is_none());
    }
}
