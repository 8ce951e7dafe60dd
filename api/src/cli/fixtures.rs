//! `fixtures generate`: a synthetic identity graph for benchmarks and load tests.

use anyhow::{Context, Result, bail};

use super::progress;

pub(super) fn generate(nhis: usize, seed: u64, out: &std::path::Path) -> Result<()> {
    use std::io::Write;
    if nhis == 0 {
        bail!("--nhis: at least 1");
    }
    let started = std::time::Instant::now();
    progress(&format!("generating {nhis} NHIs (seed {seed})"));
    let (doc, shape) = crate::generate::generate(nhis, seed);
    let shown = out.display();
    progress(&format!("writing {} nodes and {} edges to {shown}", shape.nodes, shape.edges));
    let write = |w: &mut dyn Write| -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, &doc)?;
        w.write_all(b"\n")?;
        w.flush()
    };
    if out.as_os_str() == "-" {
        write(&mut std::io::BufWriter::new(std::io::stdout().lock())).context("writing to standard output")?;
    } else {
        let file = std::fs::File::create(out).with_context(|| format!("cannot create {shown}"))?;
        write(&mut std::io::BufWriter::new(file)).with_context(|| format!("cannot write {shown}"))?;
    }
    eprintln!(
        "generated {} nodes and {} edges ({nhis} NHIs, seed {seed}) in {:.2}s",
        shape.nodes,
        shape.edges,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
