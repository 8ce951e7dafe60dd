//! `nhigov-bench`: the figures in BENCHMARKS.md.
//!
//! Generates a synthetic graph (`nhigov fixtures generate`), bulk-imports it into an
//! embedded store (`nhigov import`), measures traversals in-process (SurrealDB's own
//! recursive query and the store's graph index), then starts the real `nhigov` binary
//! on that store and measures through HTTP with concurrent clients: blast radius,
//! reverse reach from hub systems, shortest paths, a page of NHIs with their relations,
//! and approvals by concurrent writers (SoD checks and the decision chain). Ends with
//! the server's peak memory and `nhigov verify` over the chain the writers built.
//!
//! Every latency is printed as min / p50 / p99 / max over its samples. Run it through
//! `bench/run`, which builds in release first.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use graph_model::graph::Direction;
use graph_model::inventory::NodeSpec;
use graph_model::store::{DirState, Store, StoreConfig};
use graph_model::{Email, InventoryNode, Name, NewPerson, NewRequest, NodeId, Privilege, RequestKind, Role, Text};
use nhigov::auth::Authenticator;
use nhigov::config::Config;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The allocator the server runs with (api/src/main.rs), for the in-process rows.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "bench-secret-bench-secret-bench-secret";
const WRITERS: usize = 8;

struct Args {
    nhis: usize,
    seed: u64,
    samples: usize,
    requests: usize,
    dir: Option<PathBuf>,
    /// Import, then measure control evaluation alone.
    controls_only: bool,
    /// Import, then measure the decisions (both phases) and nothing else.
    decisions_only: bool,
    /// A previous run's output, whose p50 is printed beside each row.
    previous: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        nhis: 100_000,
        seed: 1,
        samples: 300,
        requests: 800,
        dir: None,
        controls_only: false,
        decisions_only: false,
        previous: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--nhis" => a.nhis = value()?.parse().context("--nhis")?,
            "--seed" => a.seed = value()?.parse().context("--seed")?,
            "--samples" => a.samples = value()?.parse().context("--samples")?,
            "--requests" => a.requests = value()?.parse().context("--requests")?,
            "--dir" => a.dir = Some(PathBuf::from(value()?)),
            "--controls-only" => a.controls_only = true,
            "--decisions-only" => a.decisions_only = true,
            "--previous" => a.previous = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!(
                    "nhigov-bench [--nhis 100000] [--seed 1] [--samples 300] [--requests 800] [--dir DIR] [--controls-only] [--decisions-only] [--previous FILE]\n\
                     Generates, imports and measures; see BENCHMARKS.md. DIR (default: a temporary\n\
                     directory) must be empty or absent; it keeps the graph, the store and the server log.\n\
                     --controls-only: after the import, measure control evaluation and myWork, nothing else.\n\
                     --decisions-only: after the import, measure the approvals and nothing else.\n\
                     Either reuses the store a run left in DIR.\n\
                     --previous FILE: an earlier run's output; its p50 is printed beside each row."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}; see --help"),
        }
    }
    ensure!(a.nhis >= 100, "--nhis: at least 100");
    ensure!(a.samples >= 10, "--samples: at least 10");
    ensure!(!(a.controls_only && a.decisions_only), "--controls-only and --decisions-only: one or the other");
    Ok(a)
}

fn main() -> Result<()> {
    nhigov::allocator::configure();
    let args = args()?;
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(16 << 20).build()?.block_on(run(args))
}

/// Latencies of one measurement.
struct Sample {
    name: String,
    clients: usize,
    times: Vec<Duration>,
    wall: Duration,
    note: String,
}

impl Sample {
    fn ms(d: Duration) -> String {
        format!("{:.2}", d.as_secs_f64() * 1e3)
    }

    fn quantile(sorted: &[Duration], q: f64) -> Duration {
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }

    fn p(&self, q: f64) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        Sample::quantile(&t, q)
    }

    /// The row of the table; `cal` is the calibration's time, and p50 is also given in
    /// calibrations, which compares across machines and days better than milliseconds.
    fn row(&self, cal: Duration, previous: &Previous) -> String {
        let mut t = self.times.clone();
        t.sort();
        let rate = self.times.len() as f64 / self.wall.as_secs_f64().max(1e-9);
        let p50 = Sample::quantile(&t, 0.5);
        let before = previous.get(&(self.name.clone(), self.clients)).map_or("", String::as_str);
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0}/s | {:.3} | {before} | {} |",
            self.name,
            self.clients,
            t.len(),
            Sample::ms(t[0]),
            Sample::ms(p50),
            Sample::ms(Sample::quantile(&t, 0.99)),
            Sample::ms(t[t.len() - 1]),
            rate,
            p50.as_secs_f64() / cal.as_secs_f64().max(1e-9),
            self.note
        )
    }
}

/// The p50 (ms, as printed) of each row of an earlier run, by measurement and clients.
type Previous = std::collections::HashMap<(String, usize), String>;

/// The rows of an earlier run's output (its table: `| measurement | clients | n | min |
/// p50 | ...`); other lines are skipped, a row that does not parse is an error naming
/// the file and line.
fn previous_p50s(file: &Path) -> Result<Previous> {
    let text = std::fs::read_to_string(file).with_context(|| format!("--previous {}", file.display()))?;
    let mut rows = Previous::new();
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if !line.starts_with("| ") || cells.len() < 7 || cells[1] == "measurement" || cells[1].starts_with("---") {
            continue;
        }
        let at = || format!("{}:{}", file.display(), i + 1);
        let clients: usize = cells[2].parse().with_context(|| format!("{}: clients `{}`", at(), cells[2]))?;
        cells[5].parse::<f64>().with_context(|| format!("{}: p50 `{}`", at(), cells[5]))?;
        rows.insert((cells[1].to_owned(), clients), cells[5].to_owned());
    }
    ensure!(!rows.is_empty(), "--previous {}: no rows of a benchmark's table", file.display());
    Ok(rows)
}

/// A fixed piece of CPU work (SHA-256 over 16 MiB), timed as the median of five runs:
/// each row's p50 is also given as a multiple of it, so a machine or a day that is
/// slower for everything shows as such rather than as a change in nhigov.
fn calibrate() -> Duration {
    use sha2::Digest;
    let data = vec![0x5au8; 16 << 20];
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(sha2::Sha256::digest(std::hint::black_box(&data)));
            t.elapsed()
        })
        .collect();
    runs.sort();
    runs[2]
}

struct Report {
    lines: Vec<String>,
    samples: Vec<Sample>,
    /// The calibration's time at the start of the run.
    calibration: Duration,
    /// The p50 of each row in the run named by `--previous`.
    previous: Previous,
}

impl Report {
    fn say(&mut self, line: String) {
        eprintln!("{line}");
        self.lines.push(line);
    }

    fn add(&mut self, s: Sample) {
        eprintln!("{}", s.row(self.calibration, &self.previous));
        self.samples.push(s);
    }

    /// A report with its header: what is measured, on what, and the calibration.
    fn start(args: &Args) -> Result<Report> {
        let previous = match &args.previous {
            Some(file) => previous_p50s(file)?,
            None => Previous::new(),
        };
        let calibration = calibrate();
        let mut report = Report { lines: Vec::new(), samples: Vec::new(), calibration, previous };
        report.say(format!(
            "nhigov-bench: {} NHIs, seed {}, {} samples per measurement, {} requests for {WRITERS} writers",
            args.nhis, args.seed, args.samples, args.requests
        ));
        report.say(format!("machine: {}", machine()));
        report.say(format!(
            "calibration: SHA-256 over 16 MiB in {:.2} ms (the p50 / cal column is each p50 in these units)",
            calibration.as_secs_f64() * 1e3
        ));
        Ok(report)
    }

    fn get(&self, name: &str, clients: usize) -> Option<&Sample> {
        self.samples.iter().find(|s| s.name == name && s.clients == clients)
    }
}

async fn run(args: Args) -> Result<()> {
    let (dir, reuse, _temp) = bench_dir(&args)?;
    let mut report = Report::start(&args)?;
    let data = dir.join("data");
    if reuse {
        report.say(format!("import: reusing the store in {}", data.display()));
    } else {
        generate_and_import(&mut report, &args, &dir, &data).await?;
    }

    // ---- in-process
    let store = Store::open(&StoreConfig { url: data.display().to_string(), ..StoreConfig::memory() }).await?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let nhis = ids(&store, "SELECT VALUE id FROM nhi").await?;
    if args.controls_only {
        let origins: Vec<NodeId> = nhis.choose_multiple(&mut rng, args.samples).cloned().collect();
        let (requester, admins) = people(&store).await?;
        controls(&mut report, &store, &requester, &admins, &origins).await?;
        work_and_campaign(&mut report, &store, &admins[0]).await?;
        store.close().await;
        summary(&mut report);
        return Ok(());
    }
    if args.decisions_only {
        return decisions_only(&mut report, store, &dir, &data, &nhis, &args, &mut rng).await;
    }
    let hubs = ids(
        &store,
        "SELECT VALUE id FROM (SELECT id, count(<-can_access) + count(<-authenticates_to) + count(<-depends_on) AS degree
           FROM system ORDER BY degree DESC LIMIT 10)",
    )
    .await?;
    let systems = ids(&store, "SELECT VALUE id FROM system").await?;
    let origins: Vec<NodeId> = nhis.choose_multiple(&mut rng, args.samples).cloned().collect();
    in_process(&mut report, &store, &origins, &hubs).await?;
    let pairs = path_pairs(&store, &origins, &systems, &mut rng).await?;
    let (requester, admins) = people(&store).await?;
    let (requests, later) = file_requests(&mut report, &store, &requester, &nhis, args.requests, &mut rng).await?;
    store.close().await;

    // ---- through HTTP
    let t = Instant::now();
    let server = Server::start(&dir, &data).await?;
    report.say(format!("http: server ready (store opened, graph index loaded) in {:.2}s", t.elapsed().as_secs_f64()));
    report.say(server.settle(&data).await?);
    let auth = Authenticator::with_secret(SECRET);
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let client = Client {
        http,
        url: format!("http://{}/graphql", server.addr),
        token: token(&auth, "requester@bench.example")?,
    };
    let mut work: Vec<Value> = hubs.iter().map(|h| json!({ "t": h.to_string() })).collect();
    work.extend(
        systems
            .choose_multiple(&mut rng, args.samples - hubs.len().min(args.samples))
            .map(|s| json!({ "t": s.to_string() })),
    );
    http_reads(&mut report, &client, &origins, &hubs, work, &pairs).await?;
    page_walk(&mut report, &client, (args.samples / 3).max(10)).await?;
    approvals(&mut report, &client, &server, &auth, requests, APPROVALS).await?;
    let filed = file_through_server(&mut report, &client, later).await?;
    approvals(&mut report, &client, &server, &auth, filed, APPROVALS_AGAIN).await?;
    let peak = server.peak_rss()?;
    report.say(format!("server peak memory (VmHWM): {:.0} MiB", peak as f64 / 1024.0 / 1024.0));
    server.stop()?;

    verify_chain(&mut report, &data)?;

    // ---- controls, in-process again, after the server measurements so those stay
    // comparable with earlier runs (the server evaluates controls after its writes).
    let store = Store::open(&StoreConfig { url: data.display().to_string(), ..StoreConfig::memory() }).await?;
    controls(&mut report, &store, &requester, &admins, &origins).await?;
    work_and_campaign(&mut report, &store, &admins[0]).await?;
    store.close().await;

    summary(&mut report);
    Ok(())
}

/// `--decisions-only`: requests filed in-process, then both approvals phases through the
/// server, and the chain verified.
async fn decisions_only(
    report: &mut Report,
    store: Store,
    dir: &Path,
    data: &Path,
    nhis: &[NodeId],
    args: &Args,
    rng: &mut StdRng,
) -> Result<()> {
    let (requester, _) = people(&store).await?;
    let (requests, later) = file_requests(report, &store, &requester, nhis, args.requests, rng).await?;
    store.close().await;
    let server = Server::start(dir, data).await?;
    let auth = Authenticator::with_secret(SECRET);
    let client = Client {
        http: reqwest::Client::builder().pool_max_idle_per_host(64).build()?,
        url: format!("http://{}/graphql", server.addr),
        token: token(&auth, "requester@bench.example")?,
    };
    report.say(server.settle(data).await?);
    approvals(report, &client, &server, &auth, requests, APPROVALS).await?;
    let filed = file_through_server(report, &client, later).await?;
    approvals(report, &client, &server, &auth, filed, APPROVALS_AGAIN).await?;
    server.stop()?;
    verify_chain(report, data)?;
    summary(report);
    Ok(())
}

/// The benchmark's directory (a temporary one unless `--dir`, kept until the handle
/// drops), and whether it holds a store to measure again (`--controls-only`,
/// `--decisions-only`).
fn bench_dir(args: &Args) -> Result<(PathBuf, bool, Option<tempfile::TempDir>)> {
    let reuse =
        (args.controls_only || args.decisions_only) && args.dir.as_ref().is_some_and(|d| d.join("data").exists());
    match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            ensure!(reuse || std::fs::read_dir(d)?.next().is_none(), "{} is not empty", d.display());
            Ok((d.clone(), reuse, None))
        }
        None => {
            let temp = tempfile::tempdir()?;
            Ok((temp.path().to_owned(), false, Some(temp)))
        }
    }
}

/// `nhigov verify` over the chain the writers built.
fn verify_chain(report: &mut Report, data: &Path) -> Result<()> {
    let t = Instant::now();
    let out = Command::new(nhigov_binary()?).args(["verify", "--db"]).arg(data).output()?;
    ensure!(out.status.success(), "nhigov verify failed: {}", String::from_utf8_lossy(&out.stderr));
    report.say(format!(
        "nhigov verify after the writers: {} ({:.2}s)",
        String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or(""),
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Generate the graph into `dir/graph.json` and import it into the store at `data`.
async fn generate_and_import(report: &mut Report, args: &Args, dir: &Path, data: &Path) -> Result<()> {
    let graph = dir.join("graph.json");
    let started = Instant::now();
    let (doc, shape) = nhigov::generate::generate(args.nhis, args.seed);
    {
        let file = std::fs::File::create(&graph)?;
        serde_json::to_writer(std::io::BufWriter::new(file), &doc)?;
    }
    drop(doc);
    report.say(format!(
        "generate: {} nodes, {} edges in {:.2}s",
        shape.nodes,
        shape.edges,
        started.elapsed().as_secs_f64()
    ));
    let mut cfg = Config::default();
    cfg.db.url = data.display().to_string();
    let load = graph_model::store::BulkLoad::new(5000);
    let nhigov::cli::Imported { report: imported, settled } = nhigov::cli::import(&cfg, &graph, load).await?;
    report.say(format!(
        "import: {} nodes and {} edges written in {:.2}s: {:.0} edges/s, {:.0} items/s (batches of {}, {} side by side, memtable {} MiB, SurrealKV, fsync per batch)",
        imported.nodes,
        imported.edges,
        imported.write_secs,
        imported.edges as f64 / imported.write_secs,
        (imported.nodes + imported.edges) as f64 / imported.write_secs,
        load.batch,
        load.parallel,
        cfg.db.memtable_mb
    ));
    if let Some(s) = settled {
        report.say(format!(
            "import: the store settled after the load in {:.2}s: {} merge(s), {} MiB of files changed{}",
            s.secs,
            s.merges,
            s.bytes >> 20,
            if s.done { "" } else { ", merges still owed at the bound" }
        ));
    }
    Ok(())
}

/// Traversals in-process: the graph index and SurrealDB's own recursive query, from
/// `origins` forward and from the `hubs` in reverse.
async fn in_process(report: &mut Report, store: &Store, origins: &[NodeId], hubs: &[NodeId]) -> Result<()> {
    let t = Instant::now();
    store.sync_graph().await?;
    let (edges, nodes) = store.graph_size();
    report.say(format!("graph index: loaded {edges} edges and {nodes} nodes in {:.2}s", t.elapsed().as_secs_f64()));

    let mut times = Vec::new();
    let mut reached_total = 0usize;
    let wall = Instant::now();
    for o in origins {
        let t = Instant::now();
        let r =
            store.traverse(o, Direction::Forward, 3, 10_000, None).await?.ok_or_else(|| anyhow!("{o} not found"))?;
        times.push(t.elapsed());
        reached_total += r.reached.len();
    }
    report.add(Sample {
        name: "in-process: graph index, blast radius 3 hops".into(),
        clients: 1,
        times,
        wall: wall.elapsed(),
        note: format!("{} nodes reached on average", reached_total / origins.len()),
    });

    let mut times = Vec::new();
    let mut surreal_reached = 0usize;
    let wall = Instant::now();
    for o in origins {
        let t = Instant::now();
        let v = store
            .execute_raw(&format!(
                "RETURN array::len({o}.{{1..3+collect}}->(holds, authenticates_to, can_access, assumes, depends_on)->?);"
            ))
            .await?;
        times.push(t.elapsed());
        surreal_reached += v.as_u64().unwrap_or(0) as usize;
    }
    report.add(Sample {
        name: "in-process: SurrealQL {1..3+collect}, ids only".into(),
        clients: 1,
        times,
        wall: wall.elapsed(),
        note: format!("{} nodes reached on average", surreal_reached / origins.len()),
    });

    let mut times = Vec::new();
    let mut hub_reached = Vec::new();
    let wall = Instant::now();
    for h in hubs {
        let t = Instant::now();
        let r = store.traverse(h, Direction::Reverse, 3, usize::MAX, None).await?.ok_or_else(|| anyhow!("{h}"))?;
        times.push(t.elapsed());
        hub_reached.push(r.reached.len());
    }
    report.add(Sample {
        name: "in-process: graph index, who can reach the 10 largest hubs, 3 hops, no cap".into(),
        clients: 1,
        times,
        wall: wall.elapsed(),
        note: format!("{} nodes reached from the largest", hub_reached.iter().max().unwrap_or(&0)),
    });
    let biggest = hubs.first().ok_or_else(|| anyhow!("the graph has no systems"))?;
    let t = Instant::now();
    let v = store
        .execute_raw(&format!(
            "RETURN array::len({biggest}.{{1..3+collect}}<-(holds, authenticates_to, can_access, assumes, depends_on)<-?);"
        ))
        .await?;
    report.say(format!(
        "in-process: SurrealQL reverse 3 hops from the largest hub: {} nodes in {:.0} ms",
        v.as_u64().unwrap_or(0),
        t.elapsed().as_secs_f64() * 1e3
    ));
    Ok(())
}

/// Pairs for `path`: an NHI and a system it reaches within 3 hops, or a random system
/// (often unreachable: the search then exhausts the hop limit).
async fn path_pairs(
    store: &Store,
    origins: &[NodeId],
    systems: &[NodeId],
    rng: &mut StdRng,
) -> Result<Vec<(NodeId, NodeId)>> {
    let mut pairs = Vec::new();
    for o in origins {
        let r =
            store.traverse(o, Direction::Forward, 3, 10_000, None).await?.ok_or_else(|| anyhow!("{o} not found"))?;
        let sys: Vec<&NodeId> =
            r.reached.iter().map(|n| &n.node).filter(|n| n.table() == graph_model::Table::System).collect();
        let to = match sys.choose(rng) {
            Some(s) if rng.random_bool(0.8) => (*s).clone(),
            _ => systems.choose(rng).ok_or_else(|| anyhow!("the graph has no systems"))?.clone(),
        };
        pairs.push((o.clone(), to));
    }
    Ok(pairs)
}

/// Requests for the writers: grants of read access on systems below tier0, to NHIs
/// with an active owner (the others are denied automatically, which is a decision but
/// not the one measured here).
async fn file_requests(
    report: &mut Report,
    store: &Store,
    requester: &NodeId,
    nhis: &[NodeId],
    wanted: usize,
    rng: &mut StdRng,
) -> Result<(Vec<String>, Vec<(NodeId, NodeId)>)> {
    let targets = ids(store, "SELECT VALUE id FROM system WHERE criticality != 'tier0' AND kind != 'vault'").await?;
    let (mut requests, mut subjects) = (Vec::new(), Vec::new());
    let mut used = HashSet::new();
    let t = Instant::now();
    while requests.len() < wanted {
        let subject = nhis.choose(rng).ok_or_else(|| anyhow!("the graph has no NHIs"))?.clone();
        let target = targets.choose(rng).ok_or_else(|| anyhow!("no system below tier0 to grant access to"))?.clone();
        if !used.insert((subject.clone(), target.clone())) {
            continue;
        }
        let r = store
            .create_request(
                requester,
                &NewRequest {
                    target: Some(target),
                    privilege: Some(Privilege::Read),
                    duration_days: Some(30),
                    ..NewRequest::new(
                        RequestKind::GrantAccess,
                        subject.clone(),
                        Text::parse("benchmark grant").map_err(|e| anyhow!(e.message))?,
                    )
                },
            )
            .await?;
        if r.status == graph_model::RequestStatus::Pending {
            requests.push(r.id.to_string());
            subjects.push(subject);
        }
        ensure!(t.elapsed() < Duration::from_secs(600), "could not file {wanted} pending requests");
    }
    report.say(format!("filed {} pending requests in {:.2}s", requests.len(), t.elapsed().as_secs_f64()));
    // As many grants again, to be filed through the server later, for the same NHIs
    // on other systems: a second grant for an NHI already decided on.
    let mut later = Vec::new();
    while later.len() < wanted && used.len() < subjects.len() * targets.len() {
        let subject = subjects.choose(rng).ok_or_else(|| anyhow!("no request is pending"))?.clone();
        let target = targets.choose(rng).ok_or_else(|| anyhow!("no system below tier0 to grant access to"))?.clone();
        if used.insert((subject.clone(), target.clone())) {
            later.push((subject, target));
        }
    }
    Ok((requests, later))
}

/// File grants of read access through the server, by `WRITERS` clients as the
/// requester: the pending requests' ids. Their subjects are those of the requests
/// approved before, so the server's decision committer has seen each one's owners.
async fn file_through_server(
    report: &mut Report,
    client: &Client,
    grants: Vec<(NodeId, NodeId)>,
) -> Result<Vec<String>> {
    let grants = Arc::new(grants);
    let wall = Instant::now();
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (c, grants) = (client.clone(), grants.clone());
        handles.push(tokio::spawn(async move {
            let (mut times, mut pending) = (Vec::new(), Vec::new());
            for (subject, target) in grants.iter().skip(w).step_by(WRITERS) {
                let t = Instant::now();
                let input = json!({ "kind": "GRANT_ACCESS", "subjectId": subject.to_string(), "targetId": target.to_string(),
                    "privilege": "READ", "durationDays": 30, "justification": "benchmark grant" });
                let r = c.post(FILE, json!({ "i": input })).await?;
                times.push(t.elapsed());
                if r["createRequest"]["status"] == "PENDING" {
                    pending.push(r["createRequest"]["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            Ok::<_, anyhow::Error>((times, pending))
        }));
    }
    let (mut times, mut pending) = (Vec::new(), Vec::new());
    for h in handles {
        let (t, p) = h.await??;
        times.extend(t);
        pending.extend(p);
    }
    let note = format!("{} of {} pending (the rest denied: no active owner)", pending.len(), times.len());
    report.add(Sample {
        name: "http: createRequest (file a grant: subject, owners, policy)".into(),
        clients: WRITERS,
        times,
        wall: wall.elapsed(),
        note,
    });
    Ok(pending)
}

/// Traversals through HTTP, with one client and with several: blast radius from
/// `origins`, who can reach `reach_work` (hubs, then random systems), paths of `pairs`.
async fn http_reads(
    report: &mut Report,
    client: &Client,
    origins: &[NodeId],
    hubs: &[NodeId],
    reach_work: Vec<Value>,
    pairs: &[(NodeId, NodeId)],
) -> Result<()> {
    let first = origins.first().ok_or_else(|| anyhow!("no origins"))?;
    let t = Instant::now();
    client.post(BLAST, json!({ "f": first.to_string(), "h": 3 })).await?;
    report.say(format!("http: first blast radius {:.2}s", t.elapsed().as_secs_f64()));
    // Warm the connection pool and the allocator.
    for o in origins.iter().take(20) {
        client.post(BLAST, json!({ "f": o.to_string(), "h": 2 })).await?;
    }
    for hops in [2, 3] {
        for clients in [1, WRITERS] {
            let work: Vec<Value> = origins.iter().map(|o| json!({ "f": o.to_string(), "h": hops })).collect();
            let s = client
                .measure(&format!("http: blastRadius {hops} hops, paths and totals"), clients, BLAST, work)
                .await?;
            report.add(s);
        }
    }
    for clients in [1, WRITERS] {
        let s = client
            .measure(
                "http: whoCanReach 3 hops, totals + first 50 (10 hubs + random systems)",
                clients,
                REACH,
                reach_work.clone(),
            )
            .await?;
        report.add(s);
    }
    let hub_work: Vec<Value> = (0..3).flat_map(|_| hubs.iter().map(|h| json!({ "t": h.to_string() }))).collect();
    let s = client.measure("http: whoCanReach 3 hops from the 10 largest hubs only", 1, REACH, hub_work).await?;
    report.add(s);
    let work: Vec<Value> = pairs.iter().map(|(f, t)| json!({ "f": f.to_string(), "t": t.to_string() })).collect();
    for clients in [1, WRITERS] {
        let s = client.measure("http: path, up to 4 hops", clients, PATH, work.clone()).await?;
        report.add(s);
    }
    Ok(())
}

/// `pages` pages of 100 NHIs with owners, secrets and systems, walking the connection.
async fn page_walk(report: &mut Report, client: &Client, pages: usize) -> Result<()> {
    let mut times = Vec::new();
    let mut after: Option<String> = None;
    let wall = Instant::now();
    for _ in 0..pages {
        let t = Instant::now();
        let d = client.post(PAGE, json!({ "after": after })).await?;
        times.push(t.elapsed());
        let conn = &d["nhis"];
        ensure!(conn["edges"].as_array().is_some_and(|e| e.len() == 100), "a page of 100: {d}");
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    report.add(Sample {
        name: "http: page of 100 NHIs with owners, secrets, systems".into(),
        clients: 1,
        times,
        wall: wall.elapsed(),
        note: String::new(),
    });
    Ok(())
}

/// Approvals of `requests` by concurrent writers, each a distinct approver. The note
/// says how many decisions each commit carried and the CPU the server and this process
/// spent per decision: whether the rate is bound by the server's CPU, by the client, or
/// by waiting.
async fn approvals(
    report: &mut Report,
    client: &Client,
    server: &Server,
    auth: &Authenticator,
    requests: Vec<String>,
    name: &str,
) -> Result<()> {
    let requests = Arc::new(requests);
    // The machine's speed just before the phase: two phases of one run compare only
    // as far as it held.
    let cal = calibrate();
    let commits = server.decision_commits().await?;
    let (server_cpu, own_cpu) = (server.cpu_ticks()?, own_cpu_ticks()?);
    // The thread starts with the server's first commit, which may come within the phase.
    let committer = server.committer_schedstat().unwrap_or((0, 0));
    let wall = Instant::now();
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let token = token(auth, &format!("approver{w}@bench.example"))?;
        let c = Client { http: client.http.clone(), url: client.url.clone(), token };
        let requests = requests.clone();
        handles.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for id in requests.iter().skip(w).step_by(WRITERS) {
                let t = Instant::now();
                let d = c.post(DECIDE, json!({ "r": id })).await?;
                ensure!(d["decideRequest"]["decision"]["outcome"] == "APPROVED", "{id}: {d}");
                times.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(times)
        }));
    }
    let mut times = Vec::new();
    for h in handles {
        times.extend(h.await??);
    }
    let wall = wall.elapsed();
    let decisions = times.len();
    let commits = server.decision_commits().await? - commits;
    let per_decision = |ticks: u64| ticks as f64 / clock_ticks_per_s() * 1000.0 / decisions.max(1) as f64;
    let mut note = format!(
        "{decisions} decisions in {commits} commits ({:.1} a commit); CPU per decision: server {:.2} ms, \
         clients {:.2} ms, of {:.2} ms of wall time for {} cores; calibration just before {:.2} ms",
        decisions as f64 / commits.max(1) as f64,
        per_decision(server.cpu_ticks()? - server_cpu),
        per_decision(own_cpu_ticks()? - own_cpu),
        wall.as_secs_f64() * 1000.0 / decisions.max(1) as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cal.as_secs_f64() * 1000.0,
    );
    // The chain's single committer is the serial part of every decision: how busy it
    // was says whether the rate is bound by it.
    if let Some((run, wait)) = server.committer_schedstat() {
        let (run, wait) = (run.saturating_sub(committer.0), wait.saturating_sub(committer.1));
        let share = |ns: u64| ns as f64 / 1e9 / wall.as_secs_f64() * 100.0;
        note.push_str(&format!(
            "; the committer on a CPU {:.0}% of the time ({:.2} ms a decision), waiting for one {:.0}%",
            share(run),
            run as f64 / 1e6 / decisions.max(1) as f64,
            share(wait),
        ));
    }
    report.add(Sample { name: name.into(), clients: WRITERS, times, wall, note });
    Ok(())
}

const BLAST: &str = "query($f: ID!, $h: Int!) { blastRadius(from: $f, maxHops: $h) {
  truncated
  totals { nodes byKind { key count } byEnvironment { key count } byCriticality { key count } byMaxPrivilege { key count } }
  reached(first: 100) { id hops maxPrivilege environment criticality path { edge kind from to privilege } }
} }";

const REACH: &str = "query($t: ID!) { whoCanReach(target: $t, maxHops: 3) {
  truncated
  totals { nodes byKind { key count } byEnvironment { key count } byMaxPrivilege { key count } }
  reached(first: 50) { id hops maxPrivilege path { kind from to } }
} }";

const PATH: &str = "query($f: ID!, $t: ID!) { path(from: $f, to: $t, maxHops: 4) { edge kind from to privilege } }";

const PAGE: &str = "query($after: String) { nhis(first: 100, after: $after) {
  pageInfo { endCursor hasNextPage }
  edges { node { id name kind environment
    owners { ... on Person { id name } ... on Team { id name } }
    secrets { id name kind }
    access { privilege system { id name criticality } } } }
} }";

/// The approvals of requests filed before the server started (as after a restart):
/// its decision committer has seen none of their subjects' owners.
const APPROVALS: &str = "http: decideRequest (approve a grant: SoD checks, chain, new edge)";
/// The approvals of requests filed through the server for NHIs it approved grants for
/// before: its committer saw each subject's owners then, and checks their revisions.
const APPROVALS_AGAIN: &str = "http: decideRequest, second grants to NHIs approved before";

const FILE: &str = "mutation($i: RequestInput!) { createRequest(input: $i) { id status } }";

const DECIDE: &str = "mutation($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: \"benchmark\") {
  decision { id outcome } } }";

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    /// POST a query; its data, or an error naming what the server said.
    async fn post(&self, query: &str, variables: Value) -> Result<Value> {
        let resp = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() || body.get("errors").is_some() {
            bail!("HTTP {status}: {body}");
        }
        Ok(body["data"].clone())
    }

    /// Run `query` once per variables in `work`, spread over `clients` concurrent clients.
    async fn measure(&self, name: &str, clients: usize, query: &'static str, work: Vec<Value>) -> Result<Sample> {
        let work = Arc::new(work);
        let wall = Instant::now();
        let mut handles = Vec::new();
        for c in 0..clients {
            let me = self.clone();
            let work = work.clone();
            handles.push(tokio::spawn(async move {
                let mut times = Vec::new();
                for v in work.iter().skip(c).step_by(clients) {
                    let t = Instant::now();
                    me.post(query, v.clone()).await?;
                    times.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(times)
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.extend(h.await??);
        }
        Ok(Sample { name: name.into(), clients, times, wall: wall.elapsed(), note: String::new() })
    }
}

/// The `nhigov` binary beside this one (the same build).
/// The benchmark's people: a requester, two admins and an approver per writer, their
/// roles from one genesis decision, as a deployment's first people's are.
async fn people(store: &Store) -> Result<(NodeId, [NodeId; 2])> {
    // A store reused from an earlier run has them already.
    let found = |e: &'static str| async move {
        let email = Email::parse(e).map_err(|x| anyhow!("{e}: {}", x.message))?;
        Ok::<_, anyhow::Error>(store.person_by_email(&email).await?.map(|p| p.id))
    };
    if let (Some(r), Some(a), Some(b)) = (
        found("requester@bench.example").await?,
        found("admin1@bench.example").await?,
        found("admin2@bench.example").await?,
    ) {
        return Ok((r, [a, b]));
    }
    let requester = person(store, "Bench Requester", "requester@bench.example").await?;
    let admins = [
        person(store, "Bench Admin One", "admin1@bench.example").await?,
        person(store, "Bench Admin Two", "admin2@bench.example").await?,
    ];
    let mut grants = vec![(requester.clone(), vec![Role::Investigator])];
    grants.extend(admins.iter().map(|a| (a.clone(), vec![Role::Admin])));
    for i in 0..WRITERS {
        let a = person(store, &format!("Bench Approver {i}"), &format!("approver{i}@bench.example")).await?;
        grants.push((a, vec![Role::Approver]));
    }
    let why = Text::parse("the benchmark's people").map_err(|e| anyhow!("{}", e.message))?;
    store.genesis(&grants, &why, false).await?;
    Ok((requester, admins))
}

/// Control evaluation on the imported store: every control from scratch, a pass with
/// nothing changed, then passes after one NHI is decommissioned.
async fn controls(
    report: &mut Report,
    store: &Store,
    requester: &NodeId,
    admins: &[NodeId; 2],
    origins: &[NodeId],
) -> Result<()> {
    nhigov::demo::publish_controls(store, &admins[0], &admins[1], requester).await?;
    // A server loads the graph index at start, before any evaluation; its load has a
    // figure of its own and is not the evaluation's.
    let t = Instant::now();
    store.sync_graph().await?;
    let (edges, nodes) = store.graph_size();
    report.say(format!(
        "controls: graph index loaded first ({edges} edges, {nodes} nodes) in {:.2}s",
        t.elapsed().as_secs_f64()
    ));
    let t = Instant::now();
    let full = store.evaluate_controls(chrono::Utc::now()).await?;
    let full_secs = t.elapsed().as_secs_f64();
    let (mut judged, mut failing) = (0, 0);
    for key in &full.full {
        let rows = store.control_results(key, None, None).await?;
        judged += rows.len();
        failing += rows.iter().filter(|r| r.status.failing()).count();
    }
    report.say(format!(
        "controls: {} evaluated in full in {full_secs:.2}s ({judged} results, {failing} failing, one decision per part of each control)",
        full.full.len()
    ));
    let t = Instant::now();
    let idle = store.evaluate_controls(chrono::Utc::now()).await?;
    ensure!(idle.changes == 0, "a full pass with nothing changed recorded {} changes", idle.changes);
    report.say(format!("controls: a full pass with nothing changed in {:.2}s", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let idle = store.evaluate_control_changes(chrono::Utc::now()).await?;
    ensure!(idle.changes == 0, "a pass with nothing changed recorded {} changes", idle.changes);
    report.say(format!("controls: a pass after changes, with none, in {:.1} ms", t.elapsed().as_secs_f64() * 1e3));
    let admin = graph_model::store::Actor { id: admins[0].clone(), roles: vec![Role::Admin] };
    let why = Text::parse("retired by the benchmark").map_err(|e| anyhow!(e.message))?;
    let (mut times, mut changes, mut touched) = (Vec::new(), 0, 0);
    let wall = Instant::now();
    // Those still active (a reused store has the earlier runs' decommissioned), and
    // others when fewer than 20 of them are.
    let list: Vec<String> = origins.iter().map(ToString::to_string).collect();
    let mut active = ids(store, &format!("SELECT VALUE id FROM [{}] WHERE status = 'active'", list.join(", "))).await?;
    if active.len() < 20 {
        active.extend(ids(store, "SELECT VALUE id FROM nhi WHERE status = 'active' LIMIT 40").await?);
        let mut seen = HashSet::new();
        active.retain(|id| seen.insert(id.clone()));
    }
    ensure!(!active.is_empty(), "no active NHI left to decommission");
    for nhi in active.iter().take(20) {
        let off = graph_model::Change::NhiStatus { nhi: nhi.clone(), status: graph_model::NhiStatus::Decommissioned };
        store.govern(&admin, &off, &why).await?;
        let t = Instant::now();
        let r = store.evaluate_control_changes(chrono::Utc::now()).await?;
        times.push(t.elapsed());
        ensure!(r.full.is_empty(), "a pass after one change evaluated {:?} in full", r.full);
        changes += r.changes;
        touched += r.touched;
    }
    report.add(Sample {
        name: "in-process: controls, one NHI decommissioned, the touched subjects judged again".into(),
        clients: 1,
        wall: wall.elapsed(),
        note: format!(
            "{changes} result changes recorded, one decision each; {:.1} subjects judged per pass (the last 10 s of changes are read again; those judged before are left out)",
            touched as f64 / times.len() as f64
        ),
        times,
    });
    let t = Instant::now();
    let full = store.evaluate_controls(chrono::Utc::now()).await?;
    ensure!(full.changes == 0, "a full pass found {} changes the passes after each change missed", full.changes);
    report
        .say(format!("controls: a full pass after them found nothing they missed ({:.2}s)", t.elapsed().as_secs_f64()));
    Ok(())
}

/// `myWork` as it is after the controls, then a certification campaign over every
/// active production NHI started (one decision), and `myWork` again with its review
/// items pending. A store reused from an earlier run keeps its campaign, no other is
/// started, and `myWork` is measured with it open only.
async fn work_and_campaign(report: &mut Report, store: &Store, admin: &NodeId) -> Result<()> {
    use graph_model::domain::campaign::CampaignDraft;
    use graph_model::domain::control::ControlScope;
    let open = store.campaigns().await?.into_iter().find(|c| c.due_at > chrono::Utc::now());
    match open {
        // Its items are in every listing: there is no figure without it to take.
        Some(c) => report.say(format!("campaign: reusing {} ({} items); myWork measured with it only", c.id, c.items)),
        None => {
            my_work(report, store, "").await?;
            let admin = graph_model::store::Actor { id: admin.clone(), roles: vec![Role::Admin] };
            let draft = CampaignDraft {
                name: "Benchmark certification".into(),
                scope: ControlScope { environments: vec![graph_model::Environment::Production], ..Default::default() },
                due_at: chrono::Utc::now() + chrono::Duration::days(3650),
                control: None,
            };
            let why = Text::parse("the benchmark's campaign").map_err(|e| anyhow!(e.message))?;
            let t = Instant::now();
            let (c, _) = store.start_campaign(&admin, &draft, &why, chrono::Utc::now()).await?;
            report.say(format!(
                "campaign: started over {} production NHIs (one decision, every item written) in {:.2}s",
                c.items,
                t.elapsed().as_secs_f64()
            ));
        }
    }
    my_work(report, store, ", a campaign over every production NHI open").await
}

/// `myWork`'s listing for the ten people with the most to answer for (what they own
/// directly and through their teams), its first 50 rows, five times each; after the
/// controls, so their findings are in it. `when` ends the row's name.
async fn my_work(report: &mut Report, store: &Store, when: &str) -> Result<()> {
    use graph_model::store::WorkKind;
    let people = ids(
        store,
        "SELECT VALUE id FROM (SELECT id, count(->owns) + math::sum((SELECT VALUE count(->owns) FROM ->member_of->team)) AS n
           FROM person ORDER BY n DESC LIMIT 10)",
    )
    .await?;
    let (mut times, mut rows, mut most, mut items) = (Vec::new(), 0, (0, 0), 0);
    let wall = Instant::now();
    for _ in 0..5 {
        for person in &people {
            let t = Instant::now();
            let work = store.work_of(person, 50, chrono::Utc::now()).await?;
            times.push(t.elapsed());
            rows += work.items.len();
            let count = |k| work.counts.get(&k).copied().unwrap_or(0);
            most = most.max((count(WorkKind::Finding), count(WorkKind::Alert)));
            items = items.max(count(WorkKind::ReviewItem));
        }
    }
    ensure!(rows > 0, "none of the ten people has any work");
    report.add(Sample {
        name: format!("in-process: myWork, first 50, the ten people with the most to own{when}"),
        clients: 1,
        wall: wall.elapsed(),
        note: format!(
            "{:.1} rows a listing; the largest: {} open findings, {} new alerts on what they own; at most {items} review items",
            rows as f64 / times.len() as f64,
            most.0,
            most.1
        ),
        times,
    });
    Ok(())
}

/// The traversals timed both through the graph index in-process and through HTTP, for
/// issue 12's bound on what the HTTP and GraphQL layers add: at most twice the walk
/// plus 1 ms. The HTTP answers also render paths, nodes and totals as JSON.
const LAYERS: [(&str, &str, &str); 2] = [
    (
        "blast radius 3 hops",
        "in-process: graph index, blast radius 3 hops",
        "http: blastRadius 3 hops, paths and totals",
    ),
    (
        "who can reach the 10 largest hubs, 3 hops",
        "in-process: graph index, who can reach the 10 largest hubs, 3 hops, no cap",
        "http: whoCanReach 3 hops from the 10 largest hubs only",
    ),
];

fn summary(report: &mut Report) {
    for (what, walk, http) in LAYERS {
        let p50 = |name: &str| report.get(name, 1).map(|s| s.p(0.5).as_secs_f64() * 1e3);
        if let (Some(walk), Some(http)) = (p50(walk), p50(http)) {
            let bound = 2.0 * walk + 1.0;
            report.say(format!(
                "{what}, p50: the walk in-process {walk:.2} ms, through GraphQL and HTTP {http:.2} ms, {:.1}x the walk (at most twice it plus 1 ms, {bound:.2} ms: {})",
                http / walk.max(1e-6),
                if http <= bound { "met" } else { "not met" }
            ));
        }
    }
    // The same work again: a calibration that moved during the run says the machine's
    // speed changed under it (another load, thermal limits), and by how much.
    let end = calibrate();
    report.say(format!(
        "calibration at the end: {:.2} ms ({:+.0}% from the start)",
        end.as_secs_f64() * 1e3,
        (end.as_secs_f64() / report.calibration.as_secs_f64().max(1e-9) - 1.0) * 100.0
    ));
    println!("\n{}\n", report.lines.iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n"));
    println!(
        "| measurement | clients | n | min ms | p50 ms | p99 ms | max ms | rate | p50 / cal | previous p50 ms | note |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &report.samples {
        println!("{}", s.row(report.calibration, &report.previous));
    }
}

fn nhigov_binary() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.with_file_name(format!("nhigov{}", std::env::consts::EXE_SUFFIX));
    ensure!(bin.exists(), "{} is missing: build the nhigov binary too (bench/run does)", bin.display());
    Ok(bin)
}

/// `nhigov serve` as a child process, so its memory is its own.
struct Server {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Server {
    async fn start(dir: &Path, data: &Path) -> Result<Server> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new(nhigov_binary()?)
            .args(["serve", "--bind", &addr.to_string(), "--db"])
            .arg(data)
            .env("NHIGOV_JWT_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting nhigov serve")?;
        let mut server = Server { child, addr };
        let ready = format!("http://{addr}/readyz");
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok(r) = reqwest::get(&ready).await
                && r.status().is_success()
            {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("nhigov serve exited with {status}; see {}", dir.join("server.log").display());
            }
            ensure!(Instant::now() < deadline, "nhigov serve not ready after 600s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the server is idle, so that what it does after starting (its first
    /// control evaluation, the store's compaction) is not measured: its CPU under 5% of
    /// one core and less than 64 KiB a second written to the data directory, both for
    /// 10 s in a row (not nothing at all: the engine's own heartbeat appends to its log
    /// every few seconds). Gives up after 120 s, saying so. The line to report.
    async fn settle(&self, data: &Path) -> Result<String> {
        const QUIET: usize = 10;
        let ticks_per_s = clock_ticks_per_s();
        let started = Instant::now();
        let (mut cpu, mut dir) = (self.cpu_ticks()?, DirState::read(data)?);
        let mut quiet = 0;
        let (mut share, mut written) = (0.0, 0);
        while quiet < QUIET {
            if started.elapsed() > Duration::from_secs(120) {
                return Ok(format!(
                    "http: server not idle after 120 s (in the last second: CPU {:.0}% of a core, {} KiB \
                     written); measuring anyway",
                    share * 100.0,
                    written / 1024
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (now_cpu, now_dir) = (self.cpu_ticks()?, DirState::read(data)?);
            share = (now_cpu - cpu) as f64 / ticks_per_s;
            written = dir.bytes_changed(&now_dir);
            quiet = if share < 0.05 && written < 64 * 1024 { quiet + 1 } else { 0 };
            (cpu, dir) = (now_cpu, now_dir);
        }
        Ok(format!(
            "http: server idle (CPU under 5%, under 64 KiB/s written, for {QUIET} s) {:.0} s after it was ready",
            started.elapsed().as_secs_f64()
        ))
    }

    /// User and system CPU the server has used, in clock ticks (Linux).
    fn cpu_ticks(&self) -> Result<u64> {
        proc_cpu_ticks(&self.child.id().to_string())
    }

    /// The decision committer thread's time on a CPU and time runnable but waiting for
    /// one, in ns (`/proc/PID/task/TID/schedstat`, Linux); `None` where it cannot be read.
    fn committer_schedstat(&self) -> Option<(u64, u64)> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).ok()?;
        let task = tasks
            .flatten()
            .find(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "nhigov-commit"))?;
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        Some((fields.next()??, fields.next()??))
    }

    /// `nhigov_decision_commits_total` from the server's metrics.
    async fn decision_commits(&self) -> Result<u64> {
        let text = reqwest::get(format!("http://{}/metrics", self.addr)).await?.error_for_status()?.text().await?;
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("nhigov_decision_commits_total "))
            .ok_or_else(|| anyhow!("no nhigov_decision_commits_total in /metrics"))?;
        Ok(line.trim().parse()?)
    }

    /// The resident set's high-water mark, in bytes (Linux).
    fn peak_rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or_else(|| anyhow!("no VmHWM"))?;
        let kb: u64 = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("VmHWM: {line}"))?.parse()?;
        Ok(kb * 1024)
    }

    fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait()?;
        ensure!(status.success(), "nhigov serve exited with {status}");
        Ok(())
    }
}

async fn ids(store: &Store, sql: &str) -> Result<Vec<NodeId>> {
    let v = store.execute_raw(&format!("RETURN ({sql});")).await?;
    v.as_array()
        .ok_or_else(|| anyhow!("{sql}: not a list"))?
        .iter()
        .map(|id| NodeId::parse(id.as_str().unwrap_or_default()).map_err(|e| anyhow!("{id}: {}", e.message)))
        .collect()
}

/// A bearer token for `email`, valid for the run.
fn token(auth: &Authenticator, email: &str) -> Result<String> {
    let email = Email::parse(email).map_err(|e| anyhow!("{email}: {}", e.message))?;
    auth.mint(&email, chrono::Duration::hours(4)).map_err(|e| anyhow!("minting a token: {e}"))
}

async fn person(store: &Store, name: &str, email: &str) -> Result<NodeId> {
    let spec = NodeSpec::Person(NewPerson {
        name: Name::parse(name).map_err(|e| anyhow!("{name}: {}", e.message))?,
        email: Email::parse(email).map_err(|e| anyhow!("{email}: {}", e.message))?,
        active: true,
        machine: false,
    });
    match store.create_node(&spec).await? {
        InventoryNode::Person(p) => Ok(p.id),
        other => bail!("expected a person, got {other:?}"),
    }
}

/// User and system CPU a process has used, in clock ticks (Linux): `pid` a number or
/// `self`.
fn proc_cpu_ticks(pid: &str) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').ok_or_else(|| anyhow!("/proc stat: {stat}"))?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> { Ok(fields.get(i).ok_or_else(|| anyhow!("/proc stat: {stat}"))?.parse()?) };
    // utime and stime are the 14th and 15th fields; `rest` starts at the 3rd.
    Ok(field(11)? + field(12)?)
}

fn own_cpu_ticks() -> Result<u64> {
    proc_cpu_ticks("self")
}

/// The kernel's clock ticks a second (`getconf CLK_TCK`; 100 where it cannot be read).
fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU model, cores and memory, from /proc.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = mem
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0);
    format!(
        "{model}, {} cores, {:.0} GiB RAM, {} {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        total as f64 / 1024.0 / 1024.0,
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
