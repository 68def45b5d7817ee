//! The processes under test: started pinned to chosen cores (`taskset`), logged to files, waited for,
//! measured through `/proc`, and stopped.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use tokio::process::{Child, Command};

/// A running service or gateway.
pub(crate) struct Process {
    /// The name it was launched under (its log is `<name>.log`).
    pub(crate) name: String,
    child: Child,
    pid: i32,
    log: PathBuf,
}

/// What to start.
pub(crate) struct Launch<'a> {
    /// Names the process in errors and its log.
    pub(crate) name: &'a str,
    /// The binary to run (under `taskset` when `cpus` is set).
    pub(crate) program: &'a Path,
    /// Its arguments.
    pub(crate) args: Vec<String>,
    /// Variables added to the environment it inherits.
    pub(crate) env: Vec<(&'a str, String)>,
    /// A `taskset` CPU list such as "0" or "1", or none to let the kernel place it.
    pub(crate) cpus: Option<&'a str>,
    /// Where `<name>.log` (stdout and stderr) is written.
    pub(crate) log_dir: &'a Path,
}

impl Process {
    /// Spawns the process in a process group of its own, logging to its file; it is killed if the
    /// [`Process`] is dropped without [`Process::stop`].
    pub(crate) fn start(launch: Launch<'_>) -> Result<Process> {
        let log = launch.log_dir.join(format!("{}.log", launch.name));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = match launch.cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.arg("--cpu-list").arg(cpus).arg(launch.program);
                command
            }
            None => Command::new(launch.program),
        };
        command
            .args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .process_group(0);
        let child = command.spawn().with_context(|| {
            format!("{}: cannot start {}", launch.name, launch.program.display())
        })?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .context("a just-started process has a pid")?;
        Ok(Process {
            name: launch.name.to_owned(),
            child,
            pid,
            log,
        })
    }

    /// Waits until `ready` succeeds, failing early (with the log's tail) if the process exits.
    pub(crate) async fn wait_ready<F, Fut>(&mut self, timeout: Duration, mut ready: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}); its log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            if ready().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {timeout:?}; its log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// User plus system CPU time used so far, all threads, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("unexpected /proc stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
        let ticks: u64 = fields
            .get(11..13)
            .context("short /proc stat")?
            .iter()
            .map(|f| f.parse::<u64>())
            .sum::<Result<u64, _>>()?;
        Ok(ticks as f64 / clock_ticks_per_second() as f64)
    }

    /// The process's resident set size now (VmRSS), in bytes.
    pub(crate) fn rss_bytes(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")?;
        Ok(kib * 1024.0)
    }

    /// The process's peak resident set size (VmHWM), in MiB.
    pub(crate) fn peak_rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc status")?;
        Ok(kib / 1024.0)
    }

    /// SIGTERM, then SIGKILL after five seconds.
    pub(crate) async fn stop(mut self) -> Result<()> {
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

fn clock_ticks_per_second() -> i64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
}

/// Whether `taskset` can pin processes here (it and at least two CPUs exist).
pub(crate) fn can_pin() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus >= 2
        && std::process::Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}
