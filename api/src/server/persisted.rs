//! Persisted queries, so a portal can send a hash instead of a query.
//!
//! The protocol is Apollo's automatic persisted queries, which Apollo Client, urql and
//! others speak: a request carries `extensions.persistedQuery = { version: 1,
//! sha256Hash }`. With the query beside it, the query is checked against the hash and
//! remembered; without it, the remembered query runs, or the server answers
//! `PERSISTED_QUERY_NOT_FOUND` (message `PersistedQueryNotFound`) and the client sends
//! the query once more. Over GET, the same `extensions` parameter makes queries
//! cacheable by URL.
//!
//! Only authenticated requests register a query, and the memory is bounded
//! ([`CAPACITY`] documents, oldest forgotten first). Each replica keeps its own: a client
//! sent to another replica registers again, which the protocol expects.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_graphql::Request;

/// How many documents a server remembers.
pub const CAPACITY: usize = 10_000;

/// Why a persisted query could not be used; each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistedError {
    /// Not registered here (yet): send the query with the hash.
    NotFound,
    /// The query sent does not have the hash sent with it.
    HashMismatch,
    /// `extensions.persistedQuery` is not `{ version: 1, sha256Hash: <64 hex> }`.
    Malformed(&'static str),
}

impl PersistedError {
    pub fn code(&self) -> &'static str {
        match self {
            PersistedError::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            PersistedError::HashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            PersistedError::Malformed(_) => "BAD_REQUEST",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            // The exact text Apollo clients look for before retrying with the query.
            PersistedError::NotFound => "PersistedQueryNotFound",
            PersistedError::HashMismatch => "the query does not have the SHA-256 sent with it",
            PersistedError::Malformed(m) => m,
        }
    }
}

/// The remembered documents, by SHA-256 (lowercase hex).
#[derive(Default)]
pub struct PersistedQueries {
    inner: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    by_hash: HashMap<String, String>,
    order: VecDeque<String>,
}

impl PersistedQueries {
    /// Fill in or register the query of a request that names a persisted query; leave
    /// other requests alone.
    pub fn resolve(&self, req: &mut Request) -> Result<(), PersistedError> {
        let Some(pq) = req.extensions.0.get("persistedQuery") else {
            return Ok(());
        };
        let json = pq.clone().into_json().map_err(|_| PersistedError::Malformed("persistedQuery is not JSON"))?;
        if json.get("version").and_then(|v| v.as_u64()) != Some(1) {
            return Err(PersistedError::Malformed("persistedQuery.version must be 1"));
        }
        let hash = json
            .get("sha256Hash")
            .and_then(|h| h.as_str())
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(PersistedError::Malformed("persistedQuery.sha256Hash must be 64 hexadecimal digits"))?
            .to_ascii_lowercase();
        let mut store = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if req.query.trim().is_empty() {
            req.query = store.by_hash.get(&hash).cloned().ok_or(PersistedError::NotFound)?;
            return Ok(());
        }
        if graph_model::sha256_hex(req.query.as_bytes()) != hash {
            return Err(PersistedError::HashMismatch);
        }
        if !store.by_hash.contains_key(&hash) {
            if store.order.len() >= CAPACITY
                && let Some(old) = store.order.pop_front()
            {
                store.by_hash.remove(&old);
            }
            store.order.push_back(hash.clone());
            store.by_hash.insert(hash, req.query.clone());
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|s| s.by_hash.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, hash: &str) -> Request {
        let body = serde_json::json!({
            "query": query,
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } }
        });
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_hash_alone_runs_the_query_registered_under_it() {
        let pq = PersistedQueries::default();
        let q = "{ me { id } }";
        let hash = graph_model::sha256_hex(q.as_bytes());
        assert_eq!(pq.resolve(&mut request("", &hash)), Err(PersistedError::NotFound));
        assert_eq!(pq.resolve(&mut request(q, &hash.to_ascii_uppercase())), Ok(()));
        let mut r = request("", &hash);
        assert_eq!(pq.resolve(&mut r), Ok(()));
        assert_eq!(r.query, q);
        assert_eq!(pq.len(), 1);
    }

    #[test]
    fn a_query_that_does_not_match_its_hash_is_refused_and_not_kept() {
        let pq = PersistedQueries::default();
        let other = graph_model::sha256_hex(b"{ nhis { totalCount } }");
        assert_eq!(pq.resolve(&mut request("{ me { id } }", &other)), Err(PersistedError::HashMismatch));
        assert!(pq.is_empty());
        assert!(matches!(pq.resolve(&mut request("", "abc")), Err(PersistedError::Malformed(_))));
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest() {
        let pq = PersistedQueries::default();
        let first = "{ q0: me { id } }".to_owned();
        for i in 0..=CAPACITY {
            let q = format!("{{ q{i}: me {{ id }} }}");
            pq.resolve(&mut request(&q, &graph_model::sha256_hex(q.as_bytes()))).unwrap();
        }
        assert_eq!(pq.len(), CAPACITY);
        let gone = graph_model::sha256_hex(first.as_bytes());
        assert_eq!(pq.resolve(&mut request("", &gone)), Err(PersistedError::NotFound));
    }
}
