//! Signed checkpoints of the decision chain.
//!
//! The chain's hashes carry no key: whoever holds the database's root can rewrite every
//! record, recompute every hash and the head, and the chain still verifies. A checkpoint
//! closes that gap the way Certificate Transparency's signed tree heads do: the server
//! signs the chain as it saw it (the hashes of the decisions since the last checkpoint,
//! ending at the head) with an Ed25519 key kept outside the database, and publishes it
//! where the database's administrator cannot reach (a file the GRC tool keeps, a log
//! sink). A later chain is then compared with what the checkpoints saw:
//!
//! - it matches every checkpoint ([`Verdict::Consistent`]);
//! - it is a prefix of what they saw: a store restored from an older backup
//!   ([`Verdict::Restored`], "restored at seq N");
//! - or it differs, and the first decision that differs is named ([`Verdict::Differs`]).
//!
//! A checkpoint file holds one JSON checkpoint per line, appended in order; each one
//! lists the hashes from the previous one's head onwards, so together they cover the
//! chain from its first decision.

use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::canonical;
use super::ids::NodeId;

/// The domain separation prefix of what a checkpoint signs: a signature made for
/// anything else can never pass for a checkpoint's.
const CONTEXT: &str = "nhigov-checkpoint-v1\n";

/// One signed view of the chain: decisions `from + 1 ..= seq` had `hashes`, in order,
/// and the last of them is the head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The head's sequence number.
    pub seq: u64,
    /// The head's hash (the last of `hashes`).
    pub hash: String,
    /// When the server signed it.
    pub at: DateTime<Utc>,
    /// The head of the previous checkpoint (0 for the first).
    pub from: u64,
    /// The hash of every decision after `from`, up to and including the head.
    pub hashes: Vec<String>,
    /// The public key, hex: which key to check the signature with.
    pub key: String,
    /// Ed25519 over [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// Sign the decisions after `from`, whose hashes are `hashes`; `None` when there is
    /// nothing to sign.
    pub fn sign(key: &SigningKey, from: u64, hashes: Vec<String>, at: DateTime<Utc>) -> Option<Checkpoint> {
        let hash = hashes.last().cloned()?;
        let mut cp = Checkpoint {
            seq: from.checked_add(hashes.len() as u64)?,
            hash,
            at,
            from,
            hashes,
            key: hex::encode(key.verifying_key().to_bytes()),
            signature: String::new(),
        };
        cp.signature = hex::encode(key.sign(cp.message().as_bytes()).to_bytes());
        Some(cp)
    }

    /// What the signature covers: every field but the signature, canonically encoded.
    pub fn message(&self) -> String {
        let body = json!({
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "from": self.from,
            "hashes": self.hashes,
            "key": self.key,
        });
        format!("{CONTEXT}{}", canonical::encode(&body))
    }

    /// The key it names.
    pub fn verifying_key(&self) -> Result<VerifyingKey, String> {
        parse_public_key(&self.key)
    }

    /// Check the signature against the key it names, and that its fields agree.
    pub fn check(&self) -> Result<(), String> {
        // From a file anyone may have edited: no arithmetic here may overflow.
        if self.hashes.is_empty() || self.from.checked_add(self.hashes.len() as u64) != Some(self.seq) {
            return Err(format!(
                "it claims decisions #{}..=#{} but lists {} hashes",
                self.from.saturating_add(1),
                self.seq,
                self.hashes.len()
            ));
        }
        if self.hashes.last() != Some(&self.hash) {
            return Err("its head hash is not the last hash it lists".into());
        }
        let key = self.verifying_key()?;
        let sig = hex::decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or("its signature is not 64 bytes of hex")?;
        key.verify_strict(self.message().as_bytes(), &sig).map_err(|_| {
            "its signature does not verify: the checkpoint was altered or signed by another key".to_owned()
        })
    }

    /// The checkpoint as one line of a checkpoint file.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serialises")
    }
}

/// A public key given as 64 hex characters.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, String> {
    hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| "a public key is 64 hex characters of an Ed25519 key".to_owned())
}

/// A signing key stored as 64 hex characters (its 32-byte seed).
pub fn parse_signing_key(hex_seed: &str) -> Result<SigningKey, String> {
    hex::decode(hex_seed.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(|b| SigningKey::from_bytes(&b))
        .ok_or_else(|| "a checkpoint signing key is 64 hex characters (a 32-byte Ed25519 seed)".to_owned())
}

/// A checkpoint file's lines, numbered from 1; blank lines are skipped.
pub fn parse_file(text: &str) -> Vec<(usize, Result<Checkpoint, String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, serde_json::from_str(l).map_err(|e| format!("not a checkpoint: {e}"))))
        .collect()
}

/// One decision of the stored chain as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Link {
    pub seq: u64,
    pub id: NodeId,
    pub hash: String,
}

/// What a stored chain is, against the checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every decision a checkpoint saw is stored with the hash it saw; `after` decisions
    /// were taken since the last checkpoint.
    Consistent { checked: u64, after: u64 },
    /// The stored chain is what the checkpoints saw, cut short: a store restored from an
    /// older backup. `seen` is the longest chain a checkpoint saw.
    Restored { at: u64, seen: u64 },
    /// Decision `seq` is not the one the checkpoint on `line` saw: it and every later
    /// one were rewritten (the hashes chain, so a rewrite carries forward).
    Differs { seq: u64, decision: Option<NodeId>, line: usize },
    /// The checkpoint file itself fails: a line does not parse, its signature does not
    /// verify, it names another key, or two lines disagree about one decision.
    BadFile { line: usize, problem: String },
}

/// The comparison's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The key every checkpoint was signed with (hex), when the file names one.
    pub key: Option<String>,
    pub checkpoints: usize,
    pub verdict: Verdict,
}

/// Compare `chain` (ordered by `seq`, from #1) with the checkpoint file's `lines`. With
/// `pinned`, every checkpoint must be signed by that key; without it, by one key, which
/// the report names for the reader to compare with the one they trust.
pub fn compare(chain: &[Link], lines: &[(usize, Result<Checkpoint, String>)], pinned: Option<&VerifyingKey>) -> Report {
    let mut key: Option<String> = pinned.map(|k| hex::encode(k.to_bytes()));
    let bad = |key: &Option<String>, n: usize, line: usize, problem: String| Report {
        key: key.clone(),
        checkpoints: n,
        verdict: Verdict::BadFile { line, problem },
    };
    // What the checkpoints saw: the hash of each decision, and the line that saw it.
    // Lines cover the chain without holes (checked as they are read), so every entry is
    // filled once the file is read.
    let mut seen: Vec<Option<(String, usize)>> = Vec::new();
    for (line, parsed) in lines {
        let cp = match parsed {
            Ok(cp) => cp,
            Err(e) => return bad(&key, lines.len(), *line, e.clone()),
        };
        if let Err(e) = cp.check() {
            return bad(&key, lines.len(), *line, e);
        }
        match &key {
            Some(k) if *k != cp.key => {
                return bad(&key, lines.len(), *line, format!("it is signed by key {}, not {k}", cp.key));
            }
            Some(_) => {}
            None => key = Some(cp.key.clone()),
        }
        if cp.from as usize > seen.len() {
            let problem =
                format!("it starts after #{}, but no earlier line saw #{}: lines are missing", cp.from, seen.len() + 1);
            return bad(&key, lines.len(), *line, problem);
        }
        for (i, h) in cp.hashes.iter().enumerate() {
            let seq = cp.from as usize + i + 1;
            if seen.len() < seq {
                seen.resize(seq, None);
            }
            match &seen[seq - 1] {
                Some((earlier, at)) if earlier != h => {
                    return bad(
                        &key,
                        lines.len(),
                        *line,
                        format!(
                            "it saw decision #{seq} with another hash than line {at} did: the chain was rewritten between them"
                        ),
                    );
                }
                Some(_) => {}
                None => seen[seq - 1] = Some((h.clone(), *line)),
            }
        }
    }
    let n = lines.len();
    for (i, link) in chain.iter().enumerate() {
        if let Some(Some((hash, line))) = seen.get(i)
            && (link.seq != i as u64 + 1 || *hash != link.hash)
        {
            return Report {
                key,
                checkpoints: n,
                verdict: Verdict::Differs { seq: i as u64 + 1, decision: Some(link.id.clone()), line: *line },
            };
        }
    }
    let covered = seen.len() as u64;
    let stored = chain.len() as u64;
    let verdict = if stored < covered {
        Verdict::Restored { at: stored, seen: covered }
    } else {
        Verdict::Consistent { checked: covered, after: stored - covered }
    };
    Report { key, checkpoints: n, verdict }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Table;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn chain(n: u64, salt: &str) -> Vec<Link> {
        (1..=n)
            .map(|seq| Link { seq, id: NodeId::generate(Table::Decision), hash: format!("{salt}{seq:060}") })
            .collect()
    }

    fn checkpoints(k: &SigningKey, chain: &[Link], cuts: &[u64]) -> Vec<(usize, Result<Checkpoint, String>)> {
        let mut from = 0;
        let mut out = Vec::new();
        for (i, &cut) in cuts.iter().enumerate() {
            let hashes = chain[from as usize..cut as usize].iter().map(|l| l.hash.clone()).collect();
            out.push((i + 1, Ok(Checkpoint::sign(k, from, hashes, Utc::now()).unwrap())));
            from = cut;
        }
        out
    }

    #[test]
    fn a_chain_that_matches_its_checkpoints_is_consistent_and_counts_what_came_after() {
        let c = chain(10, "a");
        let cps = checkpoints(&key(1), &c, &[3, 8]);
        let r = compare(&c, &cps, None);
        assert_eq!(r.verdict, Verdict::Consistent { checked: 8, after: 2 });
        assert_eq!(r.key, Some(hex::encode(key(1).verifying_key().to_bytes())));
    }

    #[test]
    fn a_rewritten_chain_is_caught_at_its_first_rewritten_decision() {
        let c = chain(10, "a");
        let cps = checkpoints(&key(1), &c, &[3, 8]);
        let mut rewritten = c.clone();
        for l in &mut rewritten[4..] {
            l.hash = format!("b{:063}", l.seq);
        }
        let r = compare(&rewritten, &cps, None);
        assert_eq!(r.verdict, Verdict::Differs { seq: 5, decision: Some(c[4].id.clone()), line: 2 });
    }

    #[test]
    fn a_prefix_of_what_was_seen_reads_as_restored() {
        let c = chain(10, "a");
        let cps = checkpoints(&key(1), &c, &[3, 8]);
        let r = compare(&c[..5], &cps, None);
        assert_eq!(r.verdict, Verdict::Restored { at: 5, seen: 8 });
    }

    #[test]
    fn an_altered_checkpoint_or_another_key_fails_the_file() {
        let c = chain(6, "a");
        let mut cps = checkpoints(&key(1), &c, &[3, 6]);
        if let Ok(cp) = &mut cps[1].1 {
            cp.hashes[0] = "f".repeat(64);
        }
        assert!(matches!(compare(&c, &cps, None).verdict, Verdict::BadFile { line: 2, .. }));

        let cps = checkpoints(&key(1), &c, &[3, 6]);
        let other = key(2).verifying_key();
        let r = compare(&c, &cps, Some(&other));
        assert!(matches!(r.verdict, Verdict::BadFile { line: 1, ref problem } if problem.contains("signed by key")));

        // A checkpoint re-signed by someone else's key, in a file signed by the first.
        let mut mixed = checkpoints(&key(1), &c, &[3]);
        mixed.push((
            2,
            Ok(Checkpoint::sign(&key(2), 3, c[3..].iter().map(|l| l.hash.clone()).collect(), Utc::now()).unwrap()),
        ));
        assert!(matches!(compare(&c, &mixed, None).verdict, Verdict::BadFile { line: 2, .. }));
    }

    #[test]
    fn two_checkpoints_that_saw_different_chains_fail_the_file() {
        let a = chain(4, "a");
        let b = chain(6, "b");
        let k = key(1);
        let lines = vec![
            (1, Ok(Checkpoint::sign(&k, 0, a.iter().map(|l| l.hash.clone()).collect(), Utc::now()).unwrap())),
            (2, Ok(Checkpoint::sign(&k, 0, b.iter().map(|l| l.hash.clone()).collect(), Utc::now()).unwrap())),
        ];
        let r = compare(&b, &lines, None);
        assert!(matches!(r.verdict, Verdict::BadFile { line: 2, ref problem } if problem.contains("#1")), "{r:?}");
    }

    #[test]
    fn a_checkpoint_claiming_an_impossible_range_fails_without_a_panic() {
        let k = key(1);
        let mut cp = Checkpoint::sign(&k, 0, vec!["a".repeat(64)], Utc::now()).unwrap();
        cp.from = u64::MAX;
        assert!(cp.check().is_err());
        assert!(Checkpoint::sign(&k, u64::MAX, vec!["a".repeat(64)], Utc::now()).is_none());
        assert!(Checkpoint::sign(&k, 0, vec![], Utc::now()).is_none());
    }

    #[test]
    fn a_line_that_is_not_a_checkpoint_is_named() {
        let lines = parse_file("\n{\"seq\": 1}\n");
        let r = compare(&chain(1, "a"), &lines, None);
        assert!(matches!(r.verdict, Verdict::BadFile { line: 2, .. }), "{r:?}");
    }
}
