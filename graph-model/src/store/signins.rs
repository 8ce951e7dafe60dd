//! Who a request signs in as, remembered between requests while nothing can have
//! changed it.
//!
//! Every request names its person (a signed token's e-mail, or an API token's hash), and
//! reading that person back from SurrealDB was half the server's CPU for a request that
//! asks little (profiled: planning the indexed `SELECT` and compiling the person table's
//! fields in each transaction). A person changes only by a write, so where every write
//! to the database goes through this process (an embedded store, which one process holds
//! at a time), a person read before the last write this process sent is as fresh as a
//! new read: [`SignIns`] keeps them, and forgets them all whenever this process writes
//! anything. "Deactivating a person takes effect on their next request" holds as it did:
//! the deactivation is a write, acknowledged only after the forgetting.
//!
//! Where another process may write (a remote server, where replicas share the
//! database; or a replica's handle in tests, [`crate::store::Store::as_replica`]),
//! nothing is remembered and every sign-in reads the database.
//!
//! The order that makes it sound: an entry carries the write count read *before* the
//! database was, and is used only while the count is unchanged. A write that commits
//! while the read is under way moves the count before it is acknowledged, so the entry
//! from that read is never used after it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::domain::{Person, Role};

/// At most this many of each kind; one more clears them (sign-ins are few beside it).
const CAPACITY: usize = 8192;

/// An API token's standing as last read: its scopes, principal and expiry.
#[derive(Debug, Clone)]
pub(crate) struct TokenStanding {
    pub scopes: Vec<Role>,
    pub person: Person,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Remembered {
    /// The write count these were read under.
    writes: u64,
    people: HashMap<String, Person>,
    tokens: HashMap<String, TokenStanding>,
}

/// Sign-ins remembered until this process writes (see the module's docs).
#[derive(Default)]
pub(crate) struct SignIns {
    /// Writes this process has sent to the database.
    writes: AtomicU64,
    /// Set once another process may write the database: nothing is remembered.
    shared: AtomicBool,
    remembered: Mutex<Remembered>,
}

impl SignIns {
    /// A store whose database other processes write: remember nothing.
    pub(crate) fn shared() -> SignIns {
        let s = SignIns::default();
        s.share();
        s
    }

    /// From now on another process may write the database: forget and remember nothing.
    pub(crate) fn share(&self) {
        self.shared.store(true, Ordering::SeqCst);
        self.wrote();
    }

    /// This process sent a write (whether or not it committed): what was read before
    /// it is forgotten.
    pub(crate) fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    /// The count to remember a read under, taken before the read; `None` when nothing
    /// may be remembered.
    pub(crate) fn before_read(&self) -> Option<u64> {
        (!self.shared.load(Ordering::SeqCst)).then(|| self.writes.load(Ordering::SeqCst))
    }

    fn current(&self) -> Option<std::sync::MutexGuard<'_, Remembered>> {
        let writes = self.before_read()?;
        let mut r = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        if r.writes != writes {
            *r = Remembered { writes, ..Remembered::default() };
        }
        Some(r)
    }

    /// The person with this e-mail, as read since this process last wrote.
    pub(crate) fn person(&self, email: &str) -> Option<Person> {
        self.current()?.people.get(email).cloned()
    }

    /// The standing of the API token with this hash, as read since this process last
    /// wrote.
    pub(crate) fn token(&self, hash: &str) -> Option<TokenStanding> {
        self.current()?.tokens.get(hash).cloned()
    }

    /// Remember `person` as read under the count `seen` (from [`SignIns::before_read`]):
    /// kept only when nothing was written since.
    pub(crate) fn remember_person(&self, seen: u64, email: &str, person: &Person) {
        self.remember(seen, |r| {
            if r.people.len() >= CAPACITY {
                r.people.clear();
            }
            r.people.insert(email.to_owned(), person.clone());
        });
    }

    /// Remember a token's standing as read under the count `seen`.
    pub(crate) fn remember_token(&self, seen: u64, hash: &str, standing: &TokenStanding) {
        self.remember(seen, |r| {
            if r.tokens.len() >= CAPACITY {
                r.tokens.clear();
            }
            r.tokens.insert(hash.to_owned(), standing.clone());
        });
    }

    fn remember(&self, seen: u64, put: impl FnOnce(&mut Remembered)) {
        if let Some(mut r) = self.current()
            && r.writes == seen
        {
            put(&mut r);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{NodeId, Table};

    /// An active viewer, for tests of what is remembered of a person.
    pub(crate) fn someone() -> Person {
        Person {
            id: NodeId::generate(Table::Person),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            roles: vec![Role::Viewer],
            active: true,
            machine: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_read_is_used_until_the_next_write() {
        let s = SignIns::default();
        let seen = s.before_read().unwrap();
        s.remember_person(seen, "ada@example.com", &someone());
        assert!(s.person("ada@example.com").is_some());
        s.wrote();
        assert!(s.person("ada@example.com").is_none(), "a write forgets what was read before it");
    }

    #[test]
    fn a_read_overtaken_by_a_write_is_not_remembered() {
        let s = SignIns::default();
        let seen = s.before_read().unwrap();
        s.wrote();
        s.remember_person(seen, "ada@example.com", &someone());
        assert!(s.person("ada@example.com").is_none());
    }

    #[test]
    fn a_shared_database_remembers_nothing() {
        let s = SignIns::default();
        let seen = s.before_read().unwrap();
        s.remember_person(seen, "ada@example.com", &someone());
        s.share();
        assert!(s.before_read().is_none());
        assert!(s.person("ada@example.com").is_none());
        assert!(SignIns::shared().before_read().is_none());
    }
}
