//! Signed checkpoints of the decision chain, published outside the database.
//!
//! With `[checkpoints] key_file` set, the server signs the chain's head every
//! `every_decisions` decisions, and at most `every_secs` after any decision, with an
//! Ed25519 key read from that file (never stored in the database), appends each
//! checkpoint to `checkpoints.file` and writes it to the log (target
//! `nhigov::checkpoint`) for a log sink to keep. `nhigov verify --checkpoints FILE` then
//! proves a store's chain is the one the checkpoints saw (see
//! [`graph_model::domain::checkpoint`]).
//!
//! Before it signs, the server checks that the stored chain still holds the head of its
//! last checkpoint: it never signs a chain that contradicts what it signed before (a
//! rewrite, or a store restored from an older backup). It logs the refusal instead, at
//! each tick, until an operator looks.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use graph_model::checkpoint::{self, Checkpoint};
use graph_model::store::Store;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// `[checkpoints]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// The signing key: 64 hex characters (an Ed25519 seed), as `nhigov checkpoint-key`
    /// writes it. Unset: no checkpoints.
    pub key_file: Option<PathBuf>,
    /// Where checkpoints are appended, one JSON line each.
    pub file: PathBuf,
    /// Sign once this many decisions were taken since the last checkpoint.
    pub every_decisions: u64,
    /// Sign whatever was taken since the last checkpoint once it is this many seconds
    /// old.
    pub every_secs: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            key_file: None,
            file: PathBuf::from("checkpoints.jsonl"),
            every_decisions: 100,
            every_secs: 300,
        }
    }
}

/// Read a signing key file.
pub fn read_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    checkpoint::parse_signing_key(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Write a new signing key to `path` (readable by its owner only) and return it.
pub fn new_key(path: &Path) -> Result<SigningKey> {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{}", hex::encode(key.to_bytes())).with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

/// `nhigov checkpoint-key`: write a new key to `path` and print its public half.
pub fn write_new_key(path: &Path) -> Result<()> {
    let key = new_key(path)?;
    eprintln!("{}: checkpoint signing key written (keep it off the database host)", path.display());
    println!("{}", hex::encode(key.verifying_key().to_bytes()));
    Ok(())
}

/// The signer: its key, its file, and the last checkpoint it wrote or found there.
pub struct Checkpointer {
    key: SigningKey,
    file: PathBuf,
    every_decisions: u64,
    last: Option<Checkpoint>,
}

impl Checkpointer {
    /// The checkpointer `cfg` describes, `None` without a key. The file's last
    /// checkpoint is where signing resumes; a file signed by another key is refused.
    pub fn open(cfg: &CheckpointConfig) -> Result<Option<Checkpointer>> {
        let Some(key_file) = &cfg.key_file else { return Ok(None) };
        let key = read_key(key_file)?;
        let last = match std::fs::read_to_string(&cfg.file) {
            Ok(text) => match checkpoint::parse_file(&text).pop() {
                Some((line, Ok(cp))) => Some((line, cp)),
                Some((line, Err(e))) => bail!("{}:{line}: {e}", cfg.file.display()),
                None => None,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", cfg.file.display())),
        };
        let ours = hex::encode(key.verifying_key().to_bytes());
        if let Some((line, cp)) = &last
            && cp.key != ours
        {
            bail!(
                "{}:{line}: signed by key {}, not by {}'s; start a new checkpoint file for a new key",
                cfg.file.display(),
                cp.key,
                key_file.display()
            );
        }
        Ok(Some(Checkpointer {
            key,
            file: cfg.file.clone(),
            every_decisions: cfg.every_decisions.max(1),
            last: last.map(|(_, cp)| cp),
        }))
    }

    /// The public key, hex, for whoever verifies.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// Sign what was decided since the last checkpoint when there are `every_decisions`
    /// of it, or any of it with `due`. Refuses when the stored chain no longer holds the
    /// last checkpoint's head.
    pub async fn tick(&mut self, store: &Store, now: DateTime<Utc>, due: bool) -> Result<Option<Checkpoint>> {
        let from = self.last.as_ref().map_or(0, |c| c.seq);
        let head = store.chain_head().await?;
        if head.seq == from && self.last.as_ref().is_none_or(|c| c.hash == head.hash) {
            return Ok(None);
        }
        // Not enough yet and not due. (A head behind the last checkpoint goes on, to be
        // refused below.)
        if !due && head.seq >= from && head.seq - from < self.every_decisions {
            return Ok(None);
        }
        let mut links = store.chain_links(from.saturating_sub(1)).await?;
        if let Some(last) = &self.last {
            match links.first() {
                Some(l) if l.seq == last.seq && l.hash == last.hash => {
                    links.remove(0);
                }
                Some(l) if l.seq == last.seq => bail!(
                    "decision #{} ({}) is not the one checkpoint #{} signed: the chain was rewritten; not signing",
                    l.seq,
                    l.id,
                    last.seq
                ),
                _ => bail!(
                    "the chain ends before #{}, which the last checkpoint signed: the store was restored from an older backup or cut short; not signing",
                    last.seq
                ),
            }
        }
        let Some(cp) = Checkpoint::sign(&self.key, from, links.into_iter().map(|l| l.hash).collect(), now) else {
            return Ok(None);
        };
        self.append(&cp)?;
        info!(
            target: "nhigov::checkpoint",
            seq = cp.seq,
            hash = %cp.hash,
            from = cp.from,
            key = %cp.key,
            signature = %cp.signature,
            "chain checkpoint"
        );
        self.last = Some(cp.clone());
        Ok(Some(cp))
    }

    fn append(&self, cp: &Checkpoint) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.file)
            .with_context(|| format!("opening {}", self.file.display()))?;
        writeln!(file, "{}", cp.to_line())
            .and_then(|_| file.sync_all())
            .with_context(|| format!("appending checkpoint #{} to {}", cp.seq, self.file.display()))
    }
}

/// Check the chain head every few seconds; sign when enough was decided, or when what
/// was decided has waited `every`. Failures are logged and tried again.
pub async fn run(store: Store, mut signer: Checkpointer, every: Duration) {
    const POLL: Duration = Duration::from_secs(2);
    let mut tick = tokio::time::interval(POLL);
    let mut since = std::time::Instant::now();
    let mut refused: Option<String> = None;
    info!(key = %signer.public_key(), file = %signer.file.display(), "signing chain checkpoints");
    loop {
        tick.tick().await;
        let due = since.elapsed() >= every;
        match signer.tick(&store, Utc::now(), due).await {
            Ok(Some(_)) => since = std::time::Instant::now(),
            Ok(None) if due => since = std::time::Instant::now(),
            Ok(None) => {}
            // Said once per distinct fault, not every poll.
            Err(e) if refused.as_deref() != Some(&e.to_string()) => {
                warn!(error = %e, "chain checkpoint");
                refused = Some(e.to_string());
            }
            Err(_) => {}
        }
    }
}
