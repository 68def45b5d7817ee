//! What the tests of the `taproom` binary share: free ports, starting the stack and waiting for
//! it, GraphQL over curl, signals and exits.
// Each test target uses some of these.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

pub struct Ports {
    pub router: u16,
    pub users: u16,
    pub beers: u16,
    pub orders: u16,
}

/// Kills a stack left running by a failing test (its children then exit by themselves).
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if Path::new(&format!("/proc/{}", self.0)).exists() {
            Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status()
                .ok();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("bound")
        .port()
}

pub fn ports() -> Ports {
    Ports {
        router: free_port(),
        users: free_port(),
        beers: free_port(),
        orders: free_port(),
    }
}

pub fn start(data: &Path, ports: &Ports) -> Child {
    start_with(data, ports, &[])
}

/// [`start`] with `env` set for the stack (and so for its services).
pub fn start_with(data: &Path, ports: &Ports, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_taproom"))
        .envs(env.iter().copied())
        .arg("--data-dir")
        .arg(data)
        .args(["--router-port", &ports.router.to_string()])
        .args(["--users-port", &ports.users.to_string()])
        .args(["--beers-port", &ports.beers.to_string()])
        .args(["--orders-port", &ports.orders.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the stack starts")
}

/// Reads the stack's output until it says it is running; panics with the output if it exits first.
pub fn wait_running(child: &mut Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped");
    let mut reader = BufReader::new(stdout).lines();
    let mut lines = Vec::new();
    for line in reader.by_ref() {
        let line = line.expect("utf-8 output");
        let running = line.contains("Taproom is running.");
        lines.push(line);
        if running {
            // Keep draining, as a terminal would.
            std::thread::spawn(move || reader.for_each(drop));
            return lines;
        }
    }
    let status = child.wait().expect("exits");
    panic!("the stack exited ({status}) before running: {lines:#?}");
}

pub fn gql(router: u16, query: &str, token: Option<&str>) -> Value {
    let mut args = vec![
        "-s".to_owned(),
        format!("http://127.0.0.1:{router}/graphql"),
        "-H".to_owned(),
        "content-type: application/json".to_owned(),
        "-d".to_owned(),
        json!({ "query": query }).to_string(),
    ];
    if let Some(token) = token {
        args.extend(["-H".to_owned(), format!("authorization: Bearer {token}")]);
    }
    let output = Command::new("curl")
        .args(&args)
        .output()
        .expect("curl runs");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

pub fn login(router: u16) -> String {
    let response = gql(
        router,
        r#"mutation { login(username: "customer", password: "Customer1234") { token } }"#,
        None,
    );
    response["data"]["login"]["token"]
        .as_str()
        .expect("the demo customer signs in")
        .to_owned()
}

/// Processes started by the stack with `pid` as their supervisor that are still alive.
pub fn children_of(pid: u32) -> Vec<u32> {
    let marker = format!("TAPROOM_SUPERVISOR_PID={pid}");
    std::fs::read_dir("/proc")
        .expect("procfs")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the stack did not stop within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the stack to exit; its status and everything it wrote to stderr.
pub fn exit_and_stderr(child: &mut Child) -> (std::process::ExitStatus, String) {
    let status = wait_exit(child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("reads");
    (status, stderr)
}

pub fn assert_nothing_left(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !children_of(pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes left behind: {:?}",
            children_of(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
