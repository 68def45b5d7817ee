//! Instructions per request, a measure that does not depend on the machine's mood: each gateway
//! runs under valgrind's callgrind (one core, every instruction counted, the same count for the
//! same binary and input whatever else the machine does), is sent `WARMUP` requests, has its
//! counters zeroed, is sent `FIRST` requests and dumped, then `SECOND` more and dumped again.
//! The second dump's instructions divided by `SECOND` is the figure: what a request costs once
//! the gateway is warm (plans cached, pools filled), with start-up and the first requests left
//! out, as `(Ir at N2 - Ir at N1) / (N2 - N1)`. Requests are sent one at a time.
//!
//! `bash bench/run.sh --instructions` runs only this: minutes, not the hour of the wall-clock run.

use std::{path::Path, time::Duration};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    gateways::{Gateway, Gateways},
    load::{self, Step},
    ops::Operation,
};

/// Requests before counting starts.
const WARMUP: usize = 5;
/// Requests counted but left out (the counters settle).
const FIRST: usize = 5;
/// Requests whose instructions are the figure.
const SECOND: usize = 40;

/// One gateway's instructions per request on one operation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Count {
    pub(crate) operation: String,
    pub(crate) gateway: Gateway,
    pub(crate) instructions_per_request: f64,
}

/// Counts `gateway`'s instructions per request of `op`, on the subgraphs behind `supergraph`.
pub(crate) async fn count(
    gateways: &Gateways<'_>,
    gateway: Gateway,
    op: &Operation,
    supergraph: &Path,
    logs: &Path,
) -> Result<Count> {
    let process = gateways.start_counted(gateway, supergraph, logs).await?;
    let pid = process.pid();
    let target = [gateways.target().clone()];
    let mut connections = vec![None];
    let mut requests = op.gateway_work.iter().cycle();
    let mut send = |count: usize| {
        let steps: Vec<Step> = (0..count)
            .map(|_| requests.next().expect("a cycle never ends")[0].clone())
            .collect();
        steps
    };
    for step in send(WARMUP) {
        load::send(&target, &mut connections, &step).await?;
    }
    callgrind_control(pid, "--zero").await?;
    for step in send(FIRST) {
        load::send(&target, &mut connections, &step).await?;
    }
    callgrind_control(pid, "--dump=first").await?;
    for step in send(SECOND) {
        load::send(&target, &mut connections, &step).await?;
    }
    callgrind_control(pid, "--dump=second").await?;
    drop(connections);
    let out = logs.join(format!("callgrind.{}.{}", gateway.slug(), pid));
    process.stop().await?;
    let instructions = second_dump_instructions(&out)?;
    Ok(Count {
        operation: op.name.to_owned(),
        gateway,
        instructions_per_request: instructions as f64 / SECOND as f64,
    })
}

/// Runs `callgrind_control <flag> <pid>`, which asks the process through its command file.
async fn callgrind_control(pid: i32, flag: &str) -> Result<()> {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("callgrind_control")
            .arg(flag)
            .arg(pid.to_string())
            .output(),
    )
    .await
    .context("callgrind_control did not answer in 2 minutes")?
    .context("running callgrind_control (Debian's valgrind package)")?;
    if !output.status.success() {
        bail!(
            "callgrind_control {flag} {pid} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The instructions (`Ir`) of the dump made with `--dump=second`: callgrind numbers its dumps
/// `<out>.1`, `<out>.2`, ... and writes the reason on a `Trigger:` line.
fn second_dump_instructions(out: &Path) -> Result<u64> {
    let dir = out.parent().context("a callgrind file has a folder")?;
    let stem = out
        .file_name()
        .and_then(|n| n.to_str())
        .context("a callgrind file name")?
        .to_owned();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(&format!("{stem}.")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        // Valgrind 3.19 writes `desc: Trigger: dump second`.
        if !text
            .lines()
            .any(|l| l.to_ascii_lowercase().contains("trigger: dump") && l.contains("second"))
        {
            continue;
        }
        let summary = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("summary:")
                    .or_else(|| l.strip_prefix("totals:"))
            })
            .with_context(|| format!("no summary in {}", path.display()))?;
        return summary
            .split_whitespace()
            .next()
            .context("an empty summary")?
            .parse()
            .with_context(|| format!("a summary that is not a count in {}", path.display()));
    }
    bail!("no dump of the counted requests next to {}", out.display())
}

/// Writes `instructions.json` and `instructions.md` (with Taproom's router's ratio to Hive Router
/// in the same mode) into `out`, and prints the table.
pub(crate) fn write(counts: &[Count], out: &Path) -> Result<()> {
    use std::fmt::Write as _;
    std::fs::write(
        out.join("instructions.json"),
        serde_json::to_string_pretty(counts)?,
    )?;
    let mut md = format!(
        "# Instructions per request\n\nEach gateway under valgrind's callgrind, one request at a time: {WARMUP} requests to warm up, counters zeroed, {FIRST} counted and left out, then the instructions of {SECOND} more, divided by {SECOND}. The same binary and requests give the same count on any machine, busy or not.\n\n| operation | gateway | instructions per request | vs Hive Router in the same mode |\n| --- | --- | ---: | ---: |\n"
    );
    for count in counts {
        let rival = count.gateway.rival().and_then(|rival| {
            counts
                .iter()
                .find(|c| c.gateway == rival && c.operation == count.operation)
        });
        let ratio = rival.map_or(String::new(), |rival| {
            format!(
                "{:.2}×",
                count.instructions_per_request / rival.instructions_per_request
            )
        });
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {ratio} |",
            count.operation,
            count.gateway.label(),
            count.instructions_per_request
        );
    }
    std::fs::write(out.join("instructions.md"), &md)?;
    println!("{md}");
    Ok(())
}
