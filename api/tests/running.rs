//! The real `nhigov serve --demo` on port 0 over a store directory, for the tests that
//! need a running server: its address read from its log, and the process killed when the
//! handle drops (or earlier, by the test).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the server with `secret` as its HS256 key, and wait until it logs its address.
pub fn start(dir: &std::path::Path, secret: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nhigov"))
        .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--db"])
        .arg(dir)
        .env("NHIGOV_JWT_SECRET", secret)
        .env("NHIGOV_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the nhigov binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("addr=").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(120)).expect("the server logs its address");
    Server { child, addr }
}
