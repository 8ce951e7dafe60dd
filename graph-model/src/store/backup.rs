//! Backup and restore: the whole store as a SurrealQL dump, SurrealDB's own export
//! format, so `surreal import` can read it too.
//!
//! A backup is one read snapshot: SurrealDB's export reads every table inside a single
//! read-only transaction, so decisions committed while it streams are either wholly in
//! it or not at all, and the chain it holds ends at one head. The embedded engine
//! exports through the SDK; a remote server through its HTTP `/export` route (the SDK
//! offers no export over `ws://`), signed in with the store's own credentials. The dump
//! carries no users or access methods: a restored store's service signs in with the
//! user `nhigov db-user` makes on the new server.
//!
//! The dump is framed by a header line and a trailer holding the size and SHA-256 of all
//! before it (both SurrealQL comments): [`check_backup_file`] refuses a file cut short
//! or altered before anything is written. Neither the check nor the restore holds the
//! dump in memory: the check reads the file a piece at a time, an embedded restore
//! applies it from the file, and a remote one streams it to the server's `/import`
//! route, which applies it as it arrives.
//!
//! A restore goes into an empty database only (no tables): it never merges with what a
//! store holds. Statements apply one by one, as SurrealDB imports do; the first that
//! fails stops the restore and is named, and the database is then to be dropped, not
//! used.

use std::path::Path;

use futures::StreamExt;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use surrealdb::types::Value;

use super::conn::Conn;
use super::{Result, Store, StoreConfig, StoreError, UserLevel, ident};

/// What a dump leaves out: who may sign in is the server's business, not the store's.
const EXPORT_CONFIG: &str = r#"{"users": false, "accesses": false, "database_definition": false}"#;

/// How to reach a remote server's HTTP routes, kept from the store's configuration.
#[derive(Debug, Clone)]
pub(super) struct RemoteHttp {
    /// `http://HOST:PORT` or `https://HOST:PORT`, from the `ws://` or `wss://` URL.
    base: String,
    namespace: String,
    database: String,
    username: String,
    password: String,
    level: UserLevel,
}

impl RemoteHttp {
    /// `None` for an embedded store, or a remote one without credentials (which
    /// `Store::open` refuses anyway).
    pub(super) fn of(cfg: &StoreConfig) -> Option<RemoteHttp> {
        let url = cfg.url.trim();
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("ws://") {
            ("http", rest)
        } else if let Some(rest) = url.strip_prefix("wss://") {
            ("https", rest)
        } else {
            return None;
        };
        let host = rest.split(['/', '?']).next().unwrap_or(rest);
        Some(RemoteHttp {
            base: format!("{scheme}://{host}"),
            namespace: cfg.namespace.clone(),
            database: cfg.database.clone(),
            username: cfg.username.clone()?,
            password: cfg.password.clone()?,
            level: cfg.user_level,
        })
    }

    /// A request to `route`, in the store's database, signed in as its user.
    fn request(&self, client: &reqwest::Client, route: &str) -> reqwest::RequestBuilder {
        let req = client.post(format!("{}/{route}", self.base)).basic_auth(&self.username, Some(&self.password));
        self.headers().into_iter().fold(req, |req, (name, value)| req.header(name, value))
    }

    /// The headers of every request: the store's database, and the level its user
    /// signs in at.
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("surreal-ns", self.namespace.clone()),
            ("surreal-db", self.database.clone()),
            ("accept", "application/octet-stream".to_owned()),
        ];
        if self.level == UserLevel::Database {
            headers.push(("surreal-auth-ns", self.namespace.clone()));
            headers.push(("surreal-auth-db", self.database.clone()));
        }
        headers
    }

    async fn export(&self) -> Result<BoxStream<'static, Result<Vec<u8>>>> {
        let client = reqwest::Client::new();
        let resp = self
            .request(&client, "export")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(EXPORT_CONFIG)
            .send()
            .await
            .map_err(|e| StoreError::Database(format!("export from {}: {}", self.base, with_causes(&e))))?;
        let resp = refused("export", resp).await?;
        let chunks = futures::stream::unfold(Some(resp), |resp| async move {
            let mut resp = resp?;
            match resp.chunk().await {
                Ok(Some(bytes)) => Some((Ok(bytes.to_vec()), Some(resp))),
                Ok(None) => None,
                Err(e) => {
                    Some((Err(StoreError::Database(format!("the export stream broke: {}", with_causes(&e)))), None))
                }
            }
        });
        Ok(chunks.boxed())
    }

    /// Send the dump at `file` (`bytes` long) to the server's import route, streamed
    /// from the file. The blocking client streams a reader as a body; the async one
    /// would need reqwest's `stream` feature, which SurrealDB's own reqwest would then
    /// be built with too.
    async fn import(&self, file: &Path, bytes: u64) -> Result<()> {
        let remote = self.clone();
        let file = file.to_owned();
        tokio::task::spawn_blocking(move || remote.import_blocking(&file, bytes))
            .await
            .map_err(|e| StoreError::Database(format!("import into {}: {e}", self.base)))?
    }

    fn import_blocking(&self, file: &Path, bytes: u64) -> Result<()> {
        let failed =
            |e: &dyn std::error::Error| StoreError::Database(format!("import into {}: {}", self.base, with_causes(e)));
        let dump =
            std::fs::File::open(file).map_err(|e| StoreError::Database(format!("reading {}: {e}", file.display())))?;
        // No time limit: a large dump takes the server as long as it takes. That holds
        // for the socket too: the server reads the dump only as fast as it applies it,
        // and one large statement can leave the connection's window shut for minutes.
        // reqwest sets `TCP_USER_TIMEOUT` to 30 s by default, and the kernel drops a
        // connection whose window stays shut that long (`ETIMEDOUT`).
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .tcp_user_timeout(None)
            .build()
            .map_err(|e| failed(&e))?;
        let mut req = client
            .post(format!("{}/import", self.base))
            .basic_auth(&self.username, Some(&self.password))
            .body(reqwest::blocking::Body::sized(dump, bytes));
        for (name, value) in self.headers() {
            req = req.header(name, value);
        }
        let resp = req.send().map_err(|e| failed(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        Err(refusal("import", status, &resp.text().unwrap_or_default()))
    }
}

/// An error and every cause beneath it, `outer: inner: ...`: reqwest's own message
/// ("request or response body error") says nothing of what the socket reported.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.ends_with(&inner_text) {
            text = format!("{text}: {inner_text}");
        }
        cause = inner.source();
    }
    text
}

/// The response, or the server's refusal as an error naming the route.
async fn refused(route: &str, resp: reqwest::Response) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    Err(refusal(route, status, &resp.text().await.unwrap_or_default()))
}

/// The server's refusal of `route`, with the first line of what it said.
fn refusal(route: &str, status: reqwest::StatusCode, body: &str) -> StoreError {
    let first = body.lines().next().unwrap_or("").chars().take(400).collect::<String>();
    StoreError::Database(format!("the server refused the {route} ({status}): {first}"))
}

/// The first line of every backup.
const HEADER: &str = "-- nhigov backup";
/// The last line's opening: `-- nhigov backup end: BYTES bytes, sha256 HEX`, where the
/// size and digest cover every byte before that line. A dump cut short (a connection
/// dropped, a disk full) has no such line, or one that does not match, and is refused.
const TRAILER: &str = "-- nhigov backup end: ";

impl Store {
    /// The store as a SurrealQL dump, streamed in chunks, read from one snapshot: a
    /// header line, SurrealDB's export, and a trailer with the size and SHA-256 of
    /// what came before it.
    pub async fn backup(&self) -> Result<BoxStream<'static, Result<Vec<u8>>>> {
        let dump = match &self.remote_http {
            Some(remote) => remote.export().await?,
            None => self.db.export().await?,
        };
        let header = format!(
            "{HEADER} (schema version {}, taken {})\n",
            super::SCHEMA_VERSION,
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let framed = Framed { dump, digest: Sha256::new(), size: 0, phase: Phase::Header(header) };
        Ok(futures::stream::unfold(framed, Framed::next).boxed())
    }
}

/// A dump between its header and its trailer.
struct Framed {
    dump: BoxStream<'static, Result<Vec<u8>>>,
    digest: Sha256,
    size: u64,
    phase: Phase,
}

enum Phase {
    Header(String),
    Body,
    Done,
}

impl Framed {
    async fn next(mut self) -> Option<(Result<Vec<u8>>, Framed)> {
        let chunk = match std::mem::replace(&mut self.phase, Phase::Body) {
            Phase::Done => return None,
            Phase::Header(header) => header.into_bytes(),
            Phase::Body => match self.dump.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    // Nothing follows an error, the trailer least of all.
                    self.phase = Phase::Done;
                    return Some((Err(e), self));
                }
                None => {
                    self.phase = Phase::Done;
                    let trailer = trailer(self.size, &hex::encode(self.digest.clone().finalize()));
                    return Some((Ok(trailer.into_bytes()), self));
                }
            },
        };
        self.digest.update(&chunk);
        self.size += chunk.len() as u64;
        Some((Ok(chunk), self))
    }
}

fn trailer(size: u64, sha256: &str) -> String {
    format!("{TRAILER}{size} bytes, sha256 {sha256}\n")
}

/// Whether `dump` is a whole backup: it opens with the header and closes with a trailer
/// that matches what precedes it. The error says what is wrong.
pub fn check_backup(dump: &[u8]) -> std::result::Result<(), String> {
    if !dump.starts_with(HEADER.as_bytes()) {
        return Err(NOT_A_BACKUP.into());
    }
    let start = last_line(dump, true).ok_or(CUT_SHORT)?;
    let (before, last) = dump.split_at(start);
    closing(last, before.len() as u64, || Sha256::digest(before).into())
}

/// [`check_backup`] of a file, read a piece at a time: a dump of any size is checked
/// without being held in memory. Gives the file's size and its SHA-256 (trailer
/// included), as a backup reports them.
pub fn check_backup_file(path: &Path) -> std::result::Result<BackupFile, String> {
    use std::io::{Read, Seek, SeekFrom};
    let unreadable = |e: std::io::Error| format!("cannot be read: {e}");
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let mut head = vec![0; HEADER.len()];
    if len < HEADER.len() as u64 {
        return Err(NOT_A_BACKUP.into());
    }
    file.read_exact(&mut head).map_err(unreadable)?;
    if head != HEADER.as_bytes() {
        return Err(NOT_A_BACKUP.into());
    }
    // The closing line is short: it is looked for in the file's last few KiB.
    let tail_len = len.min(TRAILER_SEARCH);
    let mut tail = vec![0; tail_len as usize];
    file.seek(SeekFrom::End(-(tail_len as i64))).map_err(unreadable)?;
    file.read_exact(&mut tail).map_err(unreadable)?;
    let start = last_line(&tail, tail_len == len).ok_or(CUT_SHORT)?;
    let last = &tail[start..];
    let before = len - last.len() as u64;
    file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let mut digest = Sha256::new();
    let mut piece = vec![0; 1 << 20];
    let mut left = before;
    while left > 0 {
        let n = piece.len().min(left as usize);
        file.read_exact(&mut piece[..n]).map_err(unreadable)?;
        digest.update(&piece[..n]);
        left -= n as u64;
    }
    let mut whole = digest.clone();
    closing(last, before, || digest.finalize().into())?;
    whole.update(last);
    Ok(BackupFile { bytes: len, sha256: hex::encode(whole.finalize()) })
}

/// A whole backup file, as [`check_backup_file`] found it.
#[derive(Debug, Clone)]
pub struct BackupFile {
    /// Its size.
    pub bytes: u64,
    /// SHA-256 of the whole file, its closing line included.
    pub sha256: String,
}

const NOT_A_BACKUP: &str = "not an nhigov backup: it does not open with its header line";
const CUT_SHORT: &str = "cut short: the backup has no closing line (the transfer or the disk stopped before its end)";

/// How far from a file's end its closing line is looked for. A closing line is under
/// 120 bytes; a last line longer than this is not one.
const TRAILER_SEARCH: u64 = 4096;

/// Where the last line of `end` (a dump's end) starts, a final newline aside; `None`
/// when it starts before `end` does (`whole` says `end` is all of the dump).
fn last_line(end: &[u8], whole: bool) -> Option<usize> {
    let body = end.strip_suffix(b"\n").unwrap_or(end);
    match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => Some(i + 1),
        None => whole.then_some(0),
    }
}

/// The verdict on a dump's closing line `last`, which must give the size (`before`) and
/// SHA-256 (`digest`, computed only for a line that reads as a closing line) of the
/// bytes before it.
fn closing(last: &[u8], before: u64, digest: impl FnOnce() -> [u8; 32]) -> std::result::Result<(), String> {
    let last = String::from_utf8_lossy(last);
    let Some(rest) = last.strip_prefix(TRAILER) else {
        return Err(CUT_SHORT.into());
    };
    let expected = trailer(before, &hex::encode(digest()));
    if last != expected {
        return Err(format!(
            "damaged: its closing line says {}, and the {before} bytes before it do not match",
            rest.trim_end()
        ));
    }
    Ok(())
}

/// What [`restore`] found and did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Bytes of the dump applied.
    pub bytes: u64,
}

/// Rebuild the store `cfg` names from the dump at `file`: into an empty database only.
/// Open it with [`Store::open`] afterwards, which checks its schema version. The dump
/// is checked, then applied, from the file: it is never held in memory whole.
pub async fn restore(cfg: &StoreConfig, file: &Path) -> Result<Restored> {
    let checked = {
        let file = file.to_owned();
        tokio::task::spawn_blocking(move || check_backup_file(&file))
            .await
            .map_err(|e| StoreError::Database(format!("checking the backup: {e}")))?
    };
    let checked = checked.map_err(|problem| StoreError::Database(format!("{}: {problem}", file.display())))?;
    let lock = super::embedded_lock(cfg)?;
    let db = super::connect(cfg).await?;
    let result = restore_into(&db, cfg, file, checked.bytes).await;
    let _ = db.invalidate().await;
    drop(db);
    if let Some(lock) = lock {
        super::released(&lock).await;
    }
    result.map(|()| Restored { bytes: checked.bytes })
}

async fn restore_into(db: &Conn, cfg: &StoreConfig, file: &Path, bytes: u64) -> Result<()> {
    if !(cfg.is_remote() && cfg.user_level == UserLevel::Database) {
        let define = format!(
            "DEFINE NAMESPACE IF NOT EXISTS {ns}; USE NS {ns}; DEFINE DATABASE IF NOT EXISTS {db};",
            ns = ident(&cfg.namespace)?,
            db = ident(&cfg.database)?
        );
        db.query(define, None).await?.check()?;
    }
    db.use_database(&cfg.namespace, &cfg.database).await?;
    let tables = table_count(db).await?;
    if tables > 0 {
        return Err(StoreError::Conflict(format!(
            "{}/{} at {} holds {tables} table(s): a restore goes into an empty database only",
            cfg.namespace,
            cfg.database,
            super::redact(&cfg.url)
        )));
    }
    match RemoteHttp::of(cfg) {
        Some(remote) => remote.import(file, bytes).await,
        None => Ok(db.import(file).await?),
    }
}

/// How many tables the session's database defines.
async fn table_count(db: &Conn) -> Result<usize> {
    let info: Option<Value> = db.query("INFO FOR DB".into(), None).await?.check()?.take(0)?;
    Ok(match info {
        Some(Value::Object(info)) => match info.get("tables") {
            Some(Value::Object(tables)) => tables.len(),
            _ => 0,
        },
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Longer than the `TCP_USER_TIMEOUT` reqwest sets by default (30 s).
    const STALL: Duration = Duration::from_secs(40);

    /// A SurrealDB server applying one slow statement of a dump stops reading it, and
    /// the connection's window shuts. The restore waits for it, however long.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_restore_waits_out_a_server_that_stops_reading_the_dump() {
        let mut dump = tempfile::NamedTempFile::new().unwrap();
        let piece = vec![b'-'; 1 << 20];
        for _ in 0..16 {
            dump.write_all(&piece).unwrap();
        }
        dump.flush().unwrap();
        let bytes = 16u64 << 20;

        // A small receive buffer, so a few hundred KiB fill the window (loopback's
        // buffers otherwise grow to tens of MiB).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                conn.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            tokio::time::sleep(STALL).await;
            let mut read = 0u64;
            let mut buf = vec![0u8; 1 << 16];
            while read < bytes {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n as u64,
                }
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            (String::from_utf8_lossy(&head).into_owned(), read)
        });

        let remote = RemoteHttp {
            base: format!("http://127.0.0.1:{port}"),
            namespace: "nhigov".into(),
            database: "nhigov".into(),
            username: "root".into(),
            password: "not-a-secret".into(),
            level: UserLevel::Root,
        };
        let started = std::time::Instant::now();
        let imported = remote.import(dump.path(), bytes).await;
        let (head, read) = server.await.unwrap();
        imported.unwrap_or_else(|e| panic!("after {:?}: {e}", started.elapsed()));
        assert!(head.starts_with("POST /import HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("surreal-ns: nhigov\r\n"), "{head}");
        assert_eq!(read, bytes, "the server read the whole dump");
        assert!(started.elapsed() >= STALL);
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("request or response body error")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_is_named_with_its_causes() {
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "Connection timed out (os error 110)");
        assert_eq!(
            with_causes(&Outer(timed_out)),
            "request or response body error: Connection timed out (os error 110)"
        );
        // `io::Error::other` displays as its cause, which is then not repeated.
        let wrapped = std::io::Error::other(std::io::Error::other("broken pipe"));
        assert_eq!(with_causes(&Outer(wrapped)), "request or response body error: broken pipe");
    }
}
