//! The production shape on separate hosts: Linux network namespaces joined by veth links to a
//! bridge, all made by this test and removed after it, whatever happens. Hosts: PostgreSQL (one
//! database per service), two replicas of each subgraph, two routers, HAProxy (Debian's) in front
//! of each service's replicas with health checks on `/ready`, and a client sending steady mixed
//! traffic (`taproom-load`). Meanwhile the test kills one replica of each service, rolls every
//! replica (SIGTERM, start again) one at a time, and cuts the PostgreSQL host off for five seconds.
//! No request may fail at the kill or the roll; during the cut, requests fail with clear codes
//! and within the timeout. Last, a second client host guesses passwords until its address is
//! throttled, and the first still signs in: the routers trust HAProxy's `X-Forwarded-For`
//! (`--trusted-proxy`), so each client is its own address, not the balancer's. The lab's logs are
//! kept in `target/tmp/hosts-logs/` after a run.
//!
//! Needs root (namespaces), `haproxy` and the PostgreSQL server binaries; `scripts/test.sh`
//! installs what is missing and runs it (`cargo test --test hosts -- --ignored`).

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

/// Every name this test gives a namespace starts with it; leftovers of an earlier run are removed.
const PREFIX: &str = "tph-";
const SUBNET: &str = "10.88.0";
const SECRET_KEY: &str = "hosts-test-secret-key-0123456789abcdef";
const SUBGRAPH_SECRET: &str = "hosts-test-subgraph-secret-0123456789abcdef";
/// The grace period every service is started with: HAProxy sees `/ready` fail within
/// `inter 250ms` x `fall 2`, well inside it.
const GRACE_SECS: u64 = 2;
/// The router's subgraph timeout: requests during the database cut must fail within it.
const SUBGRAPH_TIMEOUT_SECS: u64 = 4;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn run(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{command:?} cannot run: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// One test host: a namespace with one interface on the test's bridge.
struct Host {
    name: &'static str,
    address: String,
}

impl Host {
    fn netns(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }

    /// `program args` run inside this host.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns(), program]);
        command
    }
}

/// The namespaces, bridge and processes of one run; dropping it removes them all.
struct Lab {
    hosts: HashMap<&'static str, Host>,
    processes: Vec<(String, Child)>,
    dir: tempfile::TempDir,
}

/// Removes every namespace named with [`PREFIX`] (killing what runs in it).
fn remove_namespaces() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if !name.starts_with(PREFIX) {
            continue;
        }
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "delete", name]).status();
    }
}

/// Where the lab's logs are kept after a run (the lab's own folder is removed with it).
fn kept_logs() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hosts-logs")
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_namespaces();
        // Every process's log, HAProxy's included, for a failure to be traced to its hop.
        let kept = kept_logs();
        let _ = std::fs::remove_dir_all(&kept);
        if std::fs::create_dir_all(&kept).is_ok() {
            for entry in std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = entry.path();
                if path.is_file() {
                    let _ = std::fs::copy(&path, kept.join(entry.file_name()));
                }
            }
            eprintln!("hosts: the lab's logs are kept in {}", kept.display());
        }
    }
}

impl Lab {
    /// A bridge in a namespace of its own (`tph-switch`) and one namespace per host, each with
    /// `eth0` linked to the bridge.
    fn new(names: &[(&'static str, u8)]) -> Self {
        remove_namespaces();
        let dir = tempfile::tempdir().expect("a temporary folder");
        // PostgreSQL runs as `postgres` and keeps its data below it.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("the folder's mode");
        }
        // From here on a panic drops the lab, which removes what was made so far.
        let mut lab = Lab {
            hosts: HashMap::new(),
            processes: Vec::new(),
            dir,
        };
        let switch = format!("{PREFIX}switch");
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for (name, last) in names {
            let host = Host {
                name,
                address: format!("{SUBNET}.{last}"),
            };
            let netns = host.netns();
            let port = format!("p-{name}");
            ip(&["netns", "add", &netns]);
            ip(&[
                "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &netns,
            ]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{}/24", host.address),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &netns, "link", "set", "eth0", "up"]);
            ip(&["-n", &netns, "link", "set", "lo", "up"]);
            lab.hosts.insert(*name, host);
        }
        lab
    }

    fn host(&self, name: &str) -> &Host {
        self.hosts
            .get(name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Cuts `host` off the bridge (`up: false`) or links it again.
    fn link(&self, host: &str, up: bool) {
        ip(&[
            "-n",
            &format!("{PREFIX}switch"),
            "link",
            "set",
            &format!("p-{host}"),
            if up { "up" } else { "down" },
        ]);
    }

    /// Starts `command` under `label`, its output in the lab's folder (after that of an earlier
    /// process of the same label).
    fn spawn(&mut self, label: &str, mut command: Command) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{label}.log")))
            .expect("a log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{label} cannot start: {e}"));
        self.processes.push((label.to_owned(), child));
    }

    fn log(&self, label: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{label}.log"))).unwrap_or_default()
    }

    fn child(&mut self, label: &str) -> &mut Child {
        &mut self
            .processes
            .iter_mut()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no process {label}"))
            .1
    }

    /// Removes `label` from the processes once it has exited.
    fn forget(&mut self, label: &str) {
        self.processes.retain(|(l, _)| l != label);
    }
}

/// How one Taproom replica is started.
struct Replica {
    label: &'static str,
    host: &'static str,
    service: &'static str,
    port: u16,
}

const REPLICAS: [Replica; 8] = [
    Replica {
        label: "users1",
        host: "users1",
        service: "users",
        port: 5001,
    },
    Replica {
        label: "users2",
        host: "users2",
        service: "users",
        port: 5001,
    },
    Replica {
        label: "beers1",
        host: "beers1",
        service: "beers",
        port: 5002,
    },
    Replica {
        label: "beers2",
        host: "beers2",
        service: "beers",
        port: 5002,
    },
    Replica {
        label: "orders1",
        host: "orders1",
        service: "orders",
        port: 5003,
    },
    Replica {
        label: "orders2",
        host: "orders2",
        service: "orders",
        port: 5003,
    },
    Replica {
        label: "router1",
        host: "router1",
        service: "router",
        port: 4000,
    },
    Replica {
        label: "router2",
        host: "router2",
        service: "router",
        port: 4000,
    },
];

fn taproom() -> &'static str {
    env!("CARGO_BIN_EXE_taproom")
}

/// Where the PostgreSQL server binaries are.
fn pg_bin() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .find(|bin| bin.join("postgres").exists());
    found.expect(
        "PostgreSQL server binaries under /usr/lib/postgresql (scripts/test.sh installs them)",
    )
}

fn database_url(lab: &Lab, service: &str) -> String {
    format!(
        "postgres://postgres@{}:5432/taproom_{service}",
        lab.host("pg").address
    )
}

fn balancer(lab: &Lab, port: u16) -> String {
    format!("http://{}:{port}", lab.host("lb").address)
}

fn start_replica(lab: &mut Lab, replica: &Replica) {
    let host = lab.host(replica.host);
    let listen = format!("{}:{}", host.address, replica.port);
    let mut command = host.command(taproom());
    command
        .args([replica.service, "serve"])
        .env("LISTEN", &listen)
        .env("SUBGRAPH_SECRET", SUBGRAPH_SECRET)
        .env("SHUTDOWN_GRACE_SECS", GRACE_SECS.to_string())
        .env("SHUTDOWN_DRAIN_SECS", "10")
        .env("TAPROOM_SUPERVISOR_PID", std::process::id().to_string())
        .env(
            "RUST_LOG",
            "warn,taproom_http=info,taproom_common=info,taproom_router=info",
        )
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    match replica.service {
        "router" => {
            command
                .args(["--supergraph", "schema/supergraph.graphql"])
                .env(
                    "SUBGRAPH_URLS",
                    format!(
                        "users={}/graphql,beers={}/graphql,orders={}/graphql",
                        balancer(lab, 5001),
                        balancer(lab, 5002),
                        balancer(lab, 5003)
                    ),
                )
                .env("SUBGRAPH_TIMEOUT_SECS", SUBGRAPH_TIMEOUT_SECS.to_string())
                .env("IDEMPOTENT_SUBGRAPHS", "orders")
                // Clients come through HAProxy, which appends their address.
                .env("TRUSTED_PROXIES", format!("{}/32", lab.host("lb").address));
        }
        service => {
            command
                .env("DATABASE_URL", database_url(lab, service))
                .env("SECRET_KEY", SECRET_KEY)
                .env(
                    "AUTH_URL",
                    format!("{}/auth/introspect", balancer(lab, 5001)),
                )
                .env("BEERS_URL", format!("{}/graphql", balancer(lab, 5002)));
        }
    }
    lab.spawn(replica.label, command);
}

/// Waits until `url` answers 200 from `host`, for at most `within`.
fn wait_ok(lab: &Lab, host: &str, url: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let status = lab
            .host(host)
            .command("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "1",
                url,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if status == "200" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer 200 within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_replica_ready(lab: &Lab, replica: &Replica) {
    let url = format!(
        "http://{}:{}/ready",
        lab.host(replica.host).address,
        replica.port
    );
    wait_ok(lab, "client", &url, Duration::from_secs(30));
}

fn haproxy_config(lab: &Lab) -> String {
    let mut config = String::from(
        "global\n  maxconn 4096\n  log stdout format raw local0\n\
         defaults\n  mode http\n  log global\n  option httplog\n  option dontlog-normal\n  timeout connect 1s\n  timeout client 60s\n  timeout server 30s\n  timeout check 1s\n\
         \x20 retries 3\n  option redispatch 1\n\
         \x20 default-server check inter 250ms fall 2 rise 2\n",
    );
    for (service, port) in [
        ("users", 5001),
        ("beers", 5002),
        ("orders", 5003),
        ("router", 4000),
    ] {
        config.push_str(&format!(
            "frontend {service}\n  bind {}:{port}\n  default_backend {service}\n\
             backend {service}\n  option httpchk GET /ready\n  http-check expect status 200\n",
            lab.host("lb").address
        ));
        // A fresh connection per request to a replica, closed after its answer. One reused
        // after its replica died fails as an empty answer, which HAProxy does not retry for a
        // POST; a refused connection it retries on the other replica (`retries`, `option
        // redispatch`). And a client's kept-alive connection is then tied to no replica: were it,
        // HAProxy would close it when that replica dies, under a request the client is just
        // sending (seen as "connection closed before message completed").
        config.push_str("  http-reuse never\n  option http-server-close\n");
        if service == "router" {
            // A client's reads (GET) may be sent again to the other router if the first dies
            // before answering, and so may its writes that carry an Idempotency-Key; no others.
            // The routers learn the client's address from X-Forwarded-For.
            config.push_str(
                "  option http-buffer-request\n  retry-on all-retryable-errors\n  http-request disable-l7-retry if !METH_GET !{ req.hdr(idempotency-key) -m found }\n  option forwardfor\n",
            );
        }
        for replica in REPLICAS.iter().filter(|r| r.service == service) {
            config.push_str(&format!(
                "  server {} {}:{port}\n",
                replica.label,
                lab.host(replica.host).address
            ));
        }
    }
    config
}

/// Waits for `child` to exit, for at most `within`.
fn wait_exit(child: &mut Child, within: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not end within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A span of the run during which some failures may be expected.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: u128,
    to: u128,
}

impl Window {
    fn holds(&self, t: u128) -> bool {
        (self.from..=self.to).contains(&t)
    }
}

fn psql(lab: &Lab, database: &str, sql: &str) -> String {
    run(lab
        .host("pg")
        .command("runuser")
        .args(["-u", "postgres", "--"])
        .arg(pg_bin().join("psql"))
        .args([
            "-h",
            &lab.host("pg").address,
            "-d",
            database,
            "-At",
            "-F",
            "|",
            "-c",
            sql,
        ]))
}

#[test]
#[ignore = "needs root, network namespaces, haproxy and PostgreSQL: run by scripts/test.sh"]
fn replicas_on_separate_hosts_through_a_kill_a_rolling_restart_and_a_database_cut() {
    assert!(
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false),
        "this test makes network namespaces: run it as root"
    );
    let mut lab = Lab::new(&[
        ("pg", 10),
        ("lb", 5),
        ("users1", 11),
        ("users2", 12),
        ("beers1", 21),
        ("beers2", 22),
        ("orders1", 31),
        ("orders2", 32),
        ("router1", 41),
        ("router2", 42),
        ("client", 50),
        ("guesser", 51),
    ]);

    // PostgreSQL on its own host, one database per service.
    let pg_dir = lab.dir.path().join("pg");
    std::fs::create_dir(&pg_dir).expect("a folder");
    run(Command::new("chown").args(["postgres"]).arg(&pg_dir));
    run(Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(pg_bin().join("initdb"))
        .arg("-D")
        .arg(pg_dir.join("data"))
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]));
    let hba = pg_dir.join("data/pg_hba.conf");
    let mut rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    rules.push_str(&format!("host all all {SUBNET}.0/24 trust\n"));
    std::fs::write(&hba, rules).expect("pg_hba.conf");
    let pg_address = lab.host("pg").address.clone();
    let mut postgres = lab.host("pg").command("runuser");
    postgres
        .args(["-u", "postgres", "--"])
        .arg(pg_bin().join("postgres"))
        .arg("-D")
        .arg(pg_dir.join("data"))
        .args(["-p", "5432", "-k"])
        .arg(&pg_dir)
        .args(["-c", &format!("listen_addresses={pg_address}")])
        .args(["-c", "max_connections=300", "-c", "fsync=off"]);
    lab.spawn("postgres", postgres);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lab
        .host("pg")
        .command(pg_bin().join("pg_isready").to_str().expect("a UTF-8 path"))
        .args(["-h", &pg_address, "-p", "5432"])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start: {}",
            lab.log("postgres")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for service in ["users", "beers", "orders"] {
        psql(
            &lab,
            "postgres",
            &format!("CREATE DATABASE taproom_{service}"),
        );
        run(lab
            .host("client")
            .command(taproom())
            .args([service, "migrate"])
            .env("DATABASE_URL", database_url(&lab, service)));
    }
    run(lab
        .host("client")
        .command(taproom())
        .args(["beers", "seed-demo"])
        .env("DATABASE_URL", database_url(&lab, "beers")));

    // HAProxy, then every replica.
    let config = lab.dir.path().join("haproxy.cfg");
    std::fs::write(&config, haproxy_config(&lab)).expect("haproxy.cfg");
    let mut haproxy = lab.host("lb").command("haproxy");
    haproxy.arg("-f").arg(&config).arg("-db");
    lab.spawn("haproxy", haproxy);
    for replica in &REPLICAS {
        start_replica(&mut lab, replica);
        wait_replica_ready(&lab, replica);
    }
    let router = format!("{}/graphql", balancer(&lab, 4000));
    wait_ok(
        &lab,
        "client",
        &format!("{router}?query=%7B__typename%7D"),
        Duration::from_secs(10),
    );

    // Steady load from the client host.
    let events = lab.dir.path().join("events.jsonl");
    let mut load = lab
        .host("client")
        .command(env!("CARGO_BIN_EXE_taproom-load"));
    load.args([
        "--router",
        &router,
        "--connections",
        "12",
        "--duration-secs",
        "90",
    ])
    .args([
        "--report-every-secs",
        "10",
        "--timeout-secs",
        "10",
        "--prefix",
        "hosts",
    ])
    .arg("--events")
    .arg(&events);
    lab.spawn("load", load);
    // Every worker signs up first (argon2, a few at a time); then a few seconds of steady traffic.
    let deadline = Instant::now() + Duration::from_secs(90);
    while !lab.log("load").contains("signed up") {
        assert!(
            Instant::now() < deadline,
            "the load's customers did not sign up: {}",
            lab.log("load")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(4));

    // 1. Kill one replica of each service, and start them again.
    let killed = now_ms();
    for label in ["users1", "beers1", "orders1", "router1"] {
        let child = lab.child(label);
        child.kill().expect("kills");
        child.wait().expect("reaped");
        lab.forget(label);
    }
    std::thread::sleep(Duration::from_secs(2));
    for replica in REPLICAS.iter().filter(|r| r.label.ends_with('1')) {
        start_replica(&mut lab, replica);
        wait_replica_ready(&lab, replica);
    }
    // HAProxy takes a server back after two good checks.
    std::thread::sleep(Duration::from_secs(1));
    let kill = Window {
        from: killed,
        to: now_ms(),
    };

    // 2. Roll every replica, one at a time: SIGTERM, wait for its exit (0), start it again.
    let rolled = now_ms();
    let mut exits = Vec::new();
    for replica in &REPLICAS {
        let child = lab.child(replica.label);
        let pid = child.id().to_string();
        run(Command::new("kill").args(["-TERM", &pid]));
        let stopping = Instant::now();
        let status = wait_exit(
            child,
            Duration::from_secs(GRACE_SECS + 12),
            &format!("{} after SIGTERM", replica.label),
        );
        exits.push((replica.label, status.code(), stopping.elapsed()));
        let log = lab.log(replica.label);
        lab.forget(replica.label);
        assert!(
            status.success(),
            "{} exited with {status} after SIGTERM: {log}",
            replica.label
        );
        start_replica(&mut lab, replica);
        wait_replica_ready(&lab, replica);
        std::thread::sleep(Duration::from_millis(1000));
    }
    let roll = Window {
        from: rolled,
        to: now_ms(),
    };

    // 3. Cut the database host off for five seconds.
    let cut_at = now_ms();
    lab.link("pg", false);
    std::thread::sleep(Duration::from_secs(5));
    lab.link("pg", true);
    let restored = now_ms();
    // Requests that were waiting on the database may still fail up to the router's timeout, and
    // HAProxy takes replicas back after two good checks.
    let cut = Window {
        from: cut_at,
        to: restored + u128::from(SUBGRAPH_TIMEOUT_SECS) * 1000 + 4000,
    };

    // The load ends by itself.
    let load_status = wait_exit(lab.child("load"), Duration::from_secs(120), "the load");
    let load_log = lab.log("load");
    println!("{load_log}");
    assert!(load_status.success(), "taproom-load failed: {load_log}");
    let after_cut_ms = now_ms().saturating_sub(cut.to);
    assert!(
        after_cut_ms > 5000,
        "the load must run on for a while after the database is back (only {after_cut_ms} ms)"
    );

    // Judge every failure by when it happened.
    let events: Vec<Value> = std::fs::read_to_string(&events)
        .expect("the events file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let mut unexpected = Vec::new();
    let mut failures_at_kill = Vec::new();
    let mut cut_failures = 0;
    let mut cut_codes: HashMap<String, u32> = HashMap::new();
    for event in events.iter().filter(|e| e.get("failed").is_some()) {
        let t = event["t"].as_u64().map_or(0, u128::from);
        let failure = event["failed"].as_str().unwrap_or("");
        let clear = !["TIMEOUT", "TRANSPORT", "HTTP", "NO_CODE"]
            .iter()
            .any(|bad| failure.starts_with(bad));
        if kill.holds(t) {
            failures_at_kill.push(event.clone());
        } else if cut.holds(t) {
            cut_failures += 1;
            let ms = event["ms"].as_u64().unwrap_or(u64::MAX);
            assert!(
                ms <= SUBGRAPH_TIMEOUT_SECS * 1000 + 1500,
                "a request hung for {ms} ms during the database cut: {event}"
            );
            // A GraphQL error with its code; not a hang, a dropped connection or a bare status.
            assert!(
                clear,
                "a failure during the database cut without a clear code: {event}"
            );
            *cut_codes
                .entry(failure.split(':').next().unwrap_or("").to_owned())
                .or_insert(0) += 1;
        } else {
            unexpected.push(event.clone());
        }
    }
    println!(
        "hosts: kill {} ms, roll {} ms (exits {exits:?}), cut 5 s: {cut_failures} failed requests {cut_codes:?}; failed at the kill: {}",
        kill.to - kill.from,
        roll.to - roll.from,
        failures_at_kill.len()
    );
    assert!(
        unexpected.is_empty(),
        "requests failed outside the expected windows (kill at {}..{}, roll {}..{}, cut {}..{}): {unexpected:#?}",
        kill.from, kill.to, roll.from, roll.to, cut.from, cut.to
    );
    assert!(
        cut_failures > 0,
        "cutting the database off failed nothing: was it cut?"
    );
    assert!(
        failures_at_kill.is_empty(),
        "requests failed at the kill (kill at {}..{}; the lab's logs say which hop dropped them): {failures_at_kill:#?}",
        kill.from,
        kill.to
    );

    // Every acknowledged addToOrder is in the database once; one whose answer was lost is there
    // at most once.
    let mut acknowledged: HashMap<(String, String), i64> = HashMap::new();
    let mut unknown: HashMap<(String, String), i64> = HashMap::new();
    for event in &events {
        let key = || {
            (
                event["user"].as_str().unwrap_or("").to_owned(),
                event["sku"].as_str().unwrap_or("").to_owned(),
            )
        };
        match event["kind"].as_str() {
            Some("add") if event.get("failed").is_none() => {
                *acknowledged.entry(key()).or_default() += 1
            }
            Some("add_unknown") => *unknown.entry(key()).or_default() += 1,
            _ => {}
        }
    }
    let users: HashMap<String, String> =
        psql(&lab, "taproom_users", "SELECT id, username FROM users")
            .lines()
            .filter_map(|line| line.split_once('|'))
            .map(|(id, name)| (id.to_owned(), name.to_owned()))
            .collect();
    let mut stored: HashMap<(String, String), i64> = HashMap::new();
    for line in psql(
        &lab,
        "taproom_orders",
        "SELECT o.user_id, i.sku, SUM(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id GROUP BY o.user_id, i.sku",
    )
    .lines()
    {
        let fields: Vec<&str> = line.split('|').collect();
        let [user, sku, quantity] = fields[..] else {
            panic!("unexpected psql line {line:?}")
        };
        let username = users.get(user).cloned().unwrap_or_else(|| format!("user {user}"));
        stored.insert(
            (username, sku.to_owned()),
            quantity.parse().expect("a quantity"),
        );
    }
    let total_acknowledged: i64 = acknowledged.values().sum();
    assert!(
        total_acknowledged > 100,
        "too few writes to judge: {total_acknowledged}"
    );
    let mut keys: Vec<&(String, String)> = acknowledged.keys().chain(stored.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let told = acknowledged.get(key).copied().unwrap_or(0);
        let maybe = unknown.get(key).copied().unwrap_or(0);
        let have = stored.get(key).copied().unwrap_or(0);
        assert!(
            (told..=told + maybe).contains(&have),
            "{key:?}: {told} acknowledged and {maybe} unanswered addToOrders, but {have} bottles stored"
        );
    }
    println!(
        "hosts: {total_acknowledged} acknowledged addToOrders all stored once; {} unanswered",
        unknown.values().sum::<i64>()
    );

    // 4. Behind the balancer, each client is its own address. The guesser's failed sign-ins get
    // its address throttled (each users replica counts its own: at most 2 x 20 get through);
    // the client, through the same HAProxy, still signs in. Were the routers to see every client
    // as HAProxy's address, the client would be locked out too.
    let signed_up = graphql(
        &lab,
        "client",
        &router,
        r#"mutation { register(input: { username: "proxied", email: "proxied@example.com", password: "Secret123" }) { token } }"#,
    );
    assert!(signed_up["errors"].is_null(), "{signed_up}");
    let mut guesses = 0;
    let throttled = loop {
        guesses += 1;
        assert!(
            guesses <= 60,
            "the guesser was never throttled: is every client one address?"
        );
        let guess = graphql(
            &lab,
            "guesser",
            &router,
            &format!(
                r#"mutation {{ login(username: "nobody{guesses}", password: "Wrong0000A") {{ token }} }}"#
            ),
        );
        let code = guess["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if code == "RATE_LIMITED" {
            break guess;
        }
        assert_eq!(code, "UNAUTHENTICATED", "{guess}");
    };
    let signed_in = graphql(
        &lab,
        "client",
        &router,
        r#"mutation { login(username: "proxied", password: "Secret123") { token } }"#,
    );
    assert!(
        signed_in["data"]["login"]["token"].is_string(),
        "a client behind the same balancer was locked out by another's guesses: {signed_in}"
    );
    println!(
        "hosts: the guesser was throttled after {guesses} guesses ({}); the client still signed in",
        throttled["errors"][0]["message"]
    );
}

/// POSTs `query` to `url` from `host`; the answer's JSON.
fn graphql(lab: &Lab, host: &str, url: &str, query: &str) -> Value {
    let body = serde_json::json!({ "query": query }).to_string();
    let answer = run(lab.host(host).command("curl").args([
        "-s",
        "-m",
        "15",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &body,
        url,
    ]));
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{url} answered {answer:?}: {e}"))
}
