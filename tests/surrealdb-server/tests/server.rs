//! The server binary starts, accepts the store over `ws://` with root credentials, and
//! keeps what the store writes across connections: the ground the remote run of the
//! suite (`NHIGOV_TEST_STORE`) stands on.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use graph_model::store::{Store, StoreConfig, UserLevel};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn open_when_up(cfg: &StoreConfig) -> Store {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Store::open(cfg).await {
            Ok(store) => return store,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the server did not accept the store within 60 s: {e:?}"),
        }
    }
}

#[tokio::test]
async fn the_store_opens_on_the_server_and_its_writes_persist_across_connections() {
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let path = format!("surrealkv://{}", data.path().join("db").display());
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_nhigov-surrealdb-server"))
            .args([
                "start",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--user",
                "root",
                "--pass",
                "root",
                "--log",
                "warn",
                &path,
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("the server binary starts"),
    );
    let cfg = StoreConfig {
        url: format!("ws://127.0.0.1:{port}"),
        username: Some("root".into()),
        password: Some("root".into()),
        user_level: UserLevel::Root,
        ..StoreConfig::memory()
    };
    let first = open_when_up(&cfg).await;
    first.ping().await.unwrap();
    first.execute_raw("CREATE probe:one SET seen = true").await.unwrap();
    first.close().await;

    // A second connection finds the schema in place and the record written.
    let second = Store::open(&cfg).await.unwrap();
    let seen = second.execute_raw("SELECT VALUE seen FROM ONLY probe:one").await.unwrap();
    assert_eq!(seen, serde_json::json!(true));

    // Wrong credentials are refused, not ignored.
    let wrong = StoreConfig { password: Some("not-root".into()), ..cfg.clone() };
    assert!(Store::open(&wrong).await.is_err(), "the server must refuse a wrong root password");
}
