//! The `taproom` stack binary as a newcomer runs it: start, health, a federated query, restarts, Ctrl-C and
//! SIGTERM leaving no process behind, data kept across runs, and a clear failure on a taken port.

mod support;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use support::*;

#[test]
fn runs_the_federation_stops_cleanly_and_keeps_data_between_runs() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let ports = ports();

    let mut first = start(data.path(), &ports);
    let _first = KillOnDrop(first.id());
    let banner = wait_running(&mut first).join("\n");
    assert!(banner.contains("created the demo accounts"), "{banner}");
    assert_eq!(children_of(first.id()).len(), 4, "four services");
    for port in [ports.users, ports.beers, ports.orders, ports.router] {
        let health = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/health")])
            .stdout(Stdio::null())
            .status()
            .expect("curl runs");
        assert!(health.success(), "health on {port}");
    }
    // The subgraphs answer only the router (the stack gives them a shared secret).
    for port in [ports.users, ports.beers, ports.orders] {
        let status = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}/graphql"))
            .args([
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"query":"{ __typename }"}"#,
            ])
            .output()
            .expect("curl runs");
        assert_eq!(
            String::from_utf8_lossy(&status.stdout),
            "403",
            "port {port}"
        );
    }
    assert!(banner.contains("added 4 demo orders"), "{banner}");
    let token = login(ports.router);
    // The demo customer's history: an open cart (2 × Загорка, 1 × Hoegaarden), two orders checked
    // out and one cancelled, newest first.
    let orders = gql(
        ports.router,
        "{ myOrders { status owner { username } items { beer { name } } } }",
        Some(&token),
    );
    let statuses: Vec<&Value> = orders["data"]["myOrders"]
        .as_array()
        .unwrap_or_else(|| panic!("{orders}"))
        .iter()
        .map(|order| &order["status"])
        .collect();
    assert_eq!(
        statuses,
        ["OPEN", "CHECKED_OUT", "CANCELLED", "CHECKED_OUT"]
    );
    assert_eq!(
        orders["data"]["myOrders"][0],
        json!({ "status": "OPEN", "owner": { "username": "customer" },
                "items": [{ "beer": { "name": "Загорка" } }, { "beer": { "name": "Hoegaarden" } }] })
    );
    let added = gql(
        ports.router,
        r#"mutation { addToOrder(sku: "123457", quantity: 2) { total } }"#,
        Some(&token),
    );
    assert_eq!(
        added["data"]["addToOrder"]["total"],
        json!("10.79"),
        "4 × 2.00 + 2.79: {added}"
    );
    signal(&first, "INT");
    assert!(wait_exit(&mut first).success(), "Ctrl-C is a clean stop");
    assert_nothing_left(first.id());

    let mut second = start(data.path(), &ports);
    let _second = KillOnDrop(second.id());
    let banner = wait_running(&mut second).join("\n");
    assert!(
        !banner.contains("created the demo accounts"),
        "demo data is made once: {banner}"
    );
    let token = login(ports.router);
    let kept = gql(
        ports.router,
        "{ currentOrder { itemCount } myOrders { id } }",
        Some(&token),
    );
    assert_eq!(
        kept["data"]["currentOrder"],
        json!({ "itemCount": 5 }),
        "the first run's cart: {kept}"
    );
    assert_eq!(
        kept["data"]["myOrders"].as_array().map(Vec::len),
        Some(4),
        "no second set of demo orders"
    );
    signal(&second, "TERM");
    assert!(wait_exit(&mut second).success(), "SIGTERM is a clean stop");
    assert_nothing_left(second.id());
}

/// How many beers the catalog in `data` holds (0 when its database does not exist yet).
fn catalog_size(data: &Path) -> i64 {
    let file = data.join("beers.db");
    if !file.exists() {
        return 0;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let db = taproom_common::db::Db::connect(&format!("sqlite:{}", file.display()))
            .await
            .expect("opens the catalog");
        let exists: Option<(String,)> = db
            .fetch_optional(sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'beers'",
            ))
            .await
            .expect("reads the schema");
        let count = match exists {
            Some(_) => {
                let (count,): (i64,) = db
                    .fetch_one(sqlx::query("SELECT COUNT(*) FROM beers"))
                    .await
                    .expect("counts");
                count
            }
            None => 0,
        };
        db.close().await;
        count
    })
}

/// Ctrl-C while the first start prepares the databases stops cleanly and leaves either no demo
/// catalog or all of it, never part (it used to stop with 10, 14 or 16 of 43 beers, forever).
#[test]
fn ctrl_c_while_preparing_leaves_no_partial_demo_data() {
    let ports = ports();
    let full = {
        let data = tempfile::tempdir().expect("a temporary folder");
        let mut stack = start(data.path(), &ports);
        let _stack = KillOnDrop(stack.id());
        wait_running(&mut stack);
        signal(&stack, "INT");
        assert!(wait_exit(&mut stack).success());
        catalog_size(data.path())
    };
    assert!(full > 0, "the demo catalog is seeded");
    // As soon as the first database exists, and the moment the accounts are made (the catalog is
    // seeded next).
    for interrupt_after_accounts in [false, true] {
        let data = tempfile::tempdir().expect("a temporary folder");
        let mut stack = start(data.path(), &ports);
        let _stack = KillOnDrop(stack.id());
        if !interrupt_after_accounts {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !data.path().join("users.db").exists() {
                assert!(Instant::now() < deadline, "no users database after 20 s");
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            let stdout = stack.stdout.take().expect("piped");
            let mut lines = BufReader::new(stdout).lines();
            let made = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|line| line.contains("created the demo accounts"));
            assert!(made, "the first start creates the demo accounts");
            std::thread::spawn(move || lines.for_each(drop));
        }
        signal(&stack, "INT");
        let (status, stderr) = exit_and_stderr(&mut stack);
        assert!(status.success(), "a clean stop: {status} {stderr}");
        assert_nothing_left(stack.id());
        let size = catalog_size(data.path());
        assert!(size == 0 || size == full, "{size} of {full} beers");

        // The next start completes whatever was interrupted.
        let mut again = start(data.path(), &ports);
        let _again = KillOnDrop(again.id());
        wait_running(&mut again);
        signal(&again, "INT");
        assert!(wait_exit(&mut again).success());
        assert_eq!(catalog_size(data.path()), full);
    }
}

#[test]
fn a_taken_port_stops_everything_with_a_message_naming_the_service() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let ports = ports();
    let _taken = TcpListener::bind(("127.0.0.1", ports.beers)).expect("binds");
    let mut stack = start(data.path(), &ports);
    let _guard = KillOnDrop(stack.id());
    let (status, stderr) = exit_and_stderr(&mut stack);
    assert!(!status.success());
    assert!(stderr.contains("beers failed to start"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{}", ports.beers)),
        "{stderr}"
    );
    assert_nothing_left(stack.id());
}

#[test]
fn a_corrupt_database_is_reported_naming_the_service() {
    let data = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(data.path().join("beers.db"), b"this is not a SQLite database, just some text.............................................................................").expect("writes");
    let ports = ports();
    let mut stack = start(data.path(), &ports);
    let _guard = KillOnDrop(stack.id());
    let (status, stderr) = exit_and_stderr(&mut stack);
    assert!(!status.success());
    assert!(stderr.contains("beers:"), "{stderr}");
    assert_nothing_left(stack.id());
}

/// The pid of the stack's service listening on `port`, once there is one other than `not`; `None`
/// if the stack exits first.
fn service_pid(stack: &mut std::process::Child, port: u16, not: Option<u32>) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if stack.try_wait().expect("waits").is_some() {
            return None;
        }
        let found = children_of(stack.id()).into_iter().find(|pid| {
            Some(*pid) != not
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| {
                        String::from_utf8_lossy(&env).contains(&format!("LISTEN=127.0.0.1:{port}"))
                    })
                    .unwrap_or(false)
        });
        if found.is_some() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no service on port {port} was started again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill_9(pid: u32) {
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
}

/// A service that dies is started again while the router answers with partial data; one that
/// keeps dying is given up after five restarts in a row, which stops the stack.
#[test]
fn a_dead_service_is_restarted_and_one_that_keeps_dying_is_given_up() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let ports = ports();
    let mut stack = start(data.path(), &ports);
    let _guard = KillOnDrop(stack.id());
    wait_running(&mut stack);
    assert_eq!(children_of(stack.id()).len(), 4);
    let token = login(ports.router);
    let query = "{ me { username } currentOrder { id } }";

    let mut victim = service_pid(&mut stack, ports.orders, None).expect("orders runs");
    kill_9(victim);
    // Within the first backoff (half a second) orders is down: the users part still answers.
    let partial = gql(ports.router, query, Some(&token));
    assert_eq!(partial["data"]["me"]["username"], "customer", "{partial}");
    assert_eq!(partial["data"]["currentOrder"], Value::Null, "{partial}");
    assert_eq!(
        partial["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED",
        "{partial}"
    );
    victim = service_pid(&mut stack, ports.orders, Some(victim)).expect("orders restarts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let whole = gql(ports.router, query, Some(&token));
        if whole.get("errors").is_none() {
            assert_eq!(whole["data"]["me"]["username"], "customer", "{whole}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orders did not come back: {whole}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        children_of(stack.id()).len(),
        4,
        "the others were not stopped"
    );

    // Five more deaths in a row: restarts 2 to 5, then the stack gives up.
    for _ in 0..5 {
        kill_9(victim);
        match service_pid(&mut stack, ports.orders, Some(victim)) {
            Some(next) => victim = next,
            None => break,
        }
    }
    let (status, stderr) = exit_and_stderr(&mut stack);
    assert!(
        !status.success(),
        "a service that keeps dying fails the stack"
    );
    assert!(
        stderr.contains("orders stopped unexpectedly (signal: 9 (SIGKILL)); starting it again in 0.5 s (restart 1 of at most 5 in a row)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("restart 5 of at most 5 in a row"),
        "{stderr}"
    );
    assert!(
        stderr.contains("6 times in a row; giving up on it and stopping the other services"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("did not stop"),
        "the dead service is not waited for: {stderr}"
    );
    assert_nothing_left(stack.id());
}

#[test]
fn runs_on_postgresql_with_postgres_url() {
    let Ok(server) = std::env::var("TAPROOM_TEST_POSTGRES_URL") else {
        panic!(
            "TAPROOM_TEST_POSTGRES_URL is not set: run the README's test command (scripts/test.sh)"
        );
    };
    let data = tempfile::tempdir().expect("a temporary folder");
    let ports = ports();
    let mut stack = Command::new(env!("CARGO_BIN_EXE_taproom"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--postgres-url", &server])
        .args(["--router-port", &ports.router.to_string()])
        .args(["--users-port", &ports.users.to_string()])
        .args(["--beers-port", &ports.beers.to_string()])
        .args(["--orders-port", &ports.orders.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the stack starts");
    let _guard = KillOnDrop(stack.id());
    wait_running(&mut stack);
    assert!(
        !data.path().join("users.db").exists(),
        "no SQLite file: the data is in PostgreSQL"
    );
    let token = login(ports.router);
    // The databases may be left from an earlier run on the same server: compare with the cart as
    // it is (the demo cart, 2 × 2.00 + 2.79, on a fresh server).
    let cents = |total: &Value| -> i64 {
        let text = total.as_str().unwrap_or_else(|| panic!("a total: {total}"));
        text.replace('.', "")
            .parse()
            .expect("a decimal with two digits")
    };
    let cart = gql(ports.router, "{ currentOrder { total } }", Some(&token));
    let before = cents(&cart["data"]["currentOrder"]["total"]);
    let added = gql(
        ports.router,
        r#"mutation { addToOrder(sku: "123456", quantity: 3) { total owner { username } } }"#,
        Some(&token),
    );
    assert_eq!(
        added["data"]["addToOrder"]["owner"],
        json!({ "username": "customer" }),
        "{added}"
    );
    assert_eq!(
        cents(&added["data"]["addToOrder"]["total"]),
        before + 357,
        "{added}"
    );
    let history = gql(
        ports.router,
        "{ me { ordersConnection(status: CHECKED_OUT) { totalCount } } }",
        Some(&token),
    );
    assert!(
        history["data"]["me"]["ordersConnection"]["totalCount"]
            .as_i64()
            .is_some_and(|n| n >= 2),
        "the demo orders checked out: {history}"
    );
    signal(&stack, "TERM");
    assert!(wait_exit(&mut stack).success());
    assert_nothing_left(stack.id());
}

/// What Prometheus's HTTP API answers for `query`: the first result's value.
fn prometheus_value(port: u16, query: &str) -> Option<f64> {
    let output = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{port}/api/v1/query")])
        .args(["--data-urlencode", &format!("query={query}")])
        .output()
        .expect("curl runs");
    let answer: Value = serde_json::from_slice(&output.stdout).ok()?;
    answer["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// The `q` quantile of the histogram `name` (the series whose labels include `selector`) in a
/// `/metrics` text, computed as Prometheus's `histogram_quantile` does.
fn quantile_from_text(text: &str, name: &str, selector: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|line| line.starts_with(&format!("{name}_bucket{{")) && line.contains(selector))
        .map(|line| {
            let le = line.split("le=\"").nth(1).expect("an le label");
            let le = le.split('"').next().expect("quoted");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("a number")
            };
            let count = line
                .rsplit(' ')
                .next()
                .expect("a value")
                .parse()
                .expect("a count");
            (bound, count)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    taproom_telemetry::metrics::quantile(&buckets, q).expect("observations")
}

/// Debian's Prometheus scrapes the router and the three subgraphs of a running stack while the test
/// sends traffic; what its HTTP API answers for the error rate and for a subgraph's latency
/// quantile matches what was sent and what the router measured.
#[test]
fn prometheus_scrapes_every_service_and_sees_the_traffic_sent() {
    let prometheus = Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .output()
        .expect("sh runs");
    assert!(
        prometheus.status.success(),
        "prometheus is not installed: run the README's test command (scripts/test.sh installs Debian's)"
    );
    let data = tempfile::tempdir().expect("a temporary folder");
    let ports = ports();
    let mut stack = start(data.path(), &ports);
    let _stack = KillOnDrop(stack.id());
    wait_running(&mut stack);

    let prometheus_port = free_port();
    let config = data.path().join("prometheus.yml");
    let mut jobs = String::new();
    for (job, port) in [
        ("router", ports.router),
        ("users", ports.users),
        ("beers", ports.beers),
        ("orders", ports.orders),
    ] {
        jobs.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ));
    }
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}"),
    )
    .expect("writes the config");
    let mut server = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            data.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let _server = KillOnDrop(server.id());

    for _ in 0..40 {
        let answer = gql(
            ports.router,
            "query CatalogSize { beers { totalCount } }",
            None,
        );
        assert!(
            answer["data"]["beers"]["totalCount"].is_number(),
            "{answer}"
        );
    }
    for _ in 0..10 {
        let answer = gql(ports.router, "query Broken { noSuchField }", None);
        assert!(answer["errors"].is_array(), "{answer}");
    }
    let own = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/metrics", ports.router)])
        .output()
        .expect("curl runs");
    let own = String::from_utf8_lossy(&own.stdout).into_owned();
    let expected = quantile_from_text(
        &own,
        "http_client_request_duration_seconds",
        "subgraph=\"beers\"",
        0.9,
    );

    // Wait until Prometheus has scraped the router after the traffic.
    let operations = r#"sum(http_server_request_duration_seconds_count{job="router"})"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    while prometheus_value(prometheus_port, operations) != Some(50.0) {
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the 50 operations: {:?}",
            prometheus_value(prometheus_port, operations)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for job in ["router", "users", "beers", "orders"] {
        let up = format!(r#"up{{job="{job}"}}"#);
        while prometheus_value(prometheus_port, &up) != Some(1.0) {
            assert!(Instant::now() < deadline, "{job} is never scraped");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let error_rate = prometheus_value(
        prometheus_port,
        r#"sum(http_server_request_duration_seconds_count{job="router",outcome!="ok"}) / sum(http_server_request_duration_seconds_count{job="router"})"#,
    );
    assert_eq!(error_rate, Some(0.2), "10 refused of 50");
    let refused = prometheus_value(
        prometheus_port,
        r#"sum(http_server_request_duration_seconds_count{job="router",graphql_operation_name="anonymous",outcome="request_error"})"#,
    );
    assert_eq!(refused, Some(10.0), "a refused operation has no name yet");
    let quantile = prometheus_value(
        prometheus_port,
        r#"histogram_quantile(0.9, sum by (le) (http_client_request_duration_seconds_bucket{job="router",subgraph="beers"}))"#,
    )
    .expect("a quantile");
    assert!(
        (quantile - expected).abs() <= expected * 1e-9,
        "Prometheus's p90 {quantile} s, the router's own buckets {expected} s"
    );
    let selects = prometheus_value(
        prometheus_port,
        r#"sum(db_client_operation_duration_seconds_count{job="beers",db_operation_name="select"})"#,
    )
    .expect("beers' statements");
    assert!(
        selects >= 40.0,
        "every catalog page read the database: {selects}"
    );
    assert!(
        prometheus_value(
            prometheus_port,
            r#"db_client_connection_count{job="beers",state="idle"}"#
        )
        .is_some(),
        "the pool is reported"
    );
    signal(&stack, "TERM");
    assert!(wait_exit(&mut stack).success());
    server.kill().ok();
    server.wait().ok();
}
