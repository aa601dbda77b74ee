//! Graceful shutdown: readiness fails first, in-flight operations finish, new connections
//! are refused, the wait is bounded; and the real binary does all that on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use blocks_gateway::{
    blocks::http::shared_client,
    config::ShutdownSettings,
    gateway::Gateway,
    shutdown::{Drained, StopSignal, serve_until_stopped},
};
use blocks_sandbox::Sandbox;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::helpers::{sandbox_settings, start_sandbox};

/// A gateway served by `serve_until_stopped`, stopped with `StopSignal` sent on `stop`.
struct Draining {
    sandbox: Sandbox,
    address: std::net::SocketAddr,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<StopSignal>>,
    serving: tokio::task::JoinHandle<std::io::Result<Drained>>,
}

async fn serve_draining(settings: ShutdownSettings) -> Draining {
    let sandbox = start_sandbox().await;
    let server = sandbox_settings(&sandbox).server;
    let gateway = Gateway::new(&sandbox_settings(&sandbox).gateway).expect("gateway builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<StopSignal>();
    let signal = async move { stopped.await.unwrap_or(StopSignal::Interrupt) };
    let serving = tokio::spawn(async move { serve_until_stopped(listener, gateway, &server, signal, settings).await });
    let http = shared_client(Duration::from_secs(10)).expect("client");
    Draining {
        sandbox,
        address,
        http,
        stop: Some(stop),
        serving,
    }
}

impl Draining {
    /// Delivers the stop signal, as the OS would.
    fn signal(&mut self, signal: StopSignal) {
        let stop = self.stop.take().expect("signalled once");
        stop.send(signal).expect("still serving");
    }

    /// Starts a person read that the CRM will hold, and returns once the CRM received it.
    async fn start_slow_read(&self) -> tokio::task::JoinHandle<Result<Value, reqwest::Error>> {
        let before = self.sandbox.crm.control.request_count();
        let request = self.http.post(format!("http://{}/graphql", self.address)).json(&json!({
            "query": "query Slow($id: ID!) { person(id: $id) { name } }",
            "variables": { "id": self.sandbox.demo.persons[1].id.to_string() },
        }));
        let read = tokio::spawn(async move { request.send().await?.json::<Value>().await });
        for _ in 0..200 {
            if self.sandbox.crm.control.request_count() > before {
                return read;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the CRM never received the read");
    }

    async fn readiness(&self) -> Result<(u16, Value), reqwest::Error> {
        let response = self.http.get(format!("http://{}/readyz", self.address)).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }
}

#[tokio::test]
async fn sigterm_fails_readiness_then_finishes_what_is_in_flight() {
    let mut app = serve_draining(ShutdownSettings {
        drain_delay: Duration::from_millis(800),
        grace: Duration::from_secs(10),
    })
    .await;
    assert_eq!(app.readiness().await.expect("ready").0, 200);
    app.sandbox.crm.control.set_latency(Duration::from_millis(1_500));
    let slow = app.start_slow_read().await;

    app.signal(StopSignal::Terminate);
    let (status, body) = app.readiness().await.expect("still serving while draining");
    assert_eq!((status, &body["draining"]), (503, &json!(true)), "{body}");

    let drained = app.serving.await.expect("joined").expect("served");
    assert_eq!(drained, Drained::Complete);
    let answer = slow.await.expect("joined").expect("the in-flight read was answered");
    assert!(answer["data"]["person"]["name"].is_string(), "{answer}");
    assert!(
        app.http
            .get(format!("http://{}/healthz", app.address))
            .send()
            .await
            .is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn the_wait_for_in_flight_operations_is_bounded() {
    let mut app = serve_draining(ShutdownSettings {
        drain_delay: Duration::from_secs(30),
        grace: Duration::from_millis(300),
    })
    .await;
    app.sandbox.crm.control.set_hang(true);
    let hanging = app.start_slow_read().await;
    // Ctrl-C skips the readiness delay (someone at a terminal, not a load balancer).
    app.signal(StopSignal::Interrupt);
    let drained = app.serving.await.expect("joined").expect("served");
    assert_eq!(drained, Drained::TimedOut { in_flight: 1 });
    hanging.abort();
}

/// Lines the child writes to stdout, read on a thread so waits can be bounded.
fn stdout_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

#[tokio::test]
async fn the_binary_drains_on_sigterm_and_logs_json() {
    let dir = std::env::temp_dir().join(format!("gateway-shutdown-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_blocks-gateway"))
        .arg("serve")
        .env_clear()
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .env("GATEWAY_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("GATEWAY_SHUTDOWN_DELAY_MS", "1500")
        .env("GATEWAY_SHUTDOWN_TIMEOUT_MS", "5000")
        .env("LINK_INDEX_PATH", dir.join("links.sqlite"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let lines = stdout_lines(&mut child);
    let mut logged = Vec::new();
    let address = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the gateway logs that it serves");
        let entry: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
        logged.push(entry.clone());
        if entry["message"] == "blocks-gateway serving" {
            break entry["address"].as_str().expect("address field").to_owned();
        }
    };
    let http = shared_client(Duration::from_secs(5)).expect("client");
    let readyz = format!("http://{address}/readyz");
    assert_eq!(http.get(&readyz).send().await.expect("ready").status(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    // Within the drain delay the replica still answers, but no longer as ready.
    let mut draining = false;
    for _ in 0..50 {
        if http.get(&readyz).send().await.expect("still serving").status() == 503 {
            draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(draining, "readiness failed after SIGTERM");

    let mut exit = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().expect("wait") {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(exit) = exit else {
        let _ = child.kill();
        panic!("the gateway did not exit after SIGTERM");
    };
    assert!(exit.success(), "{exit:?}");
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        logged.push(serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON line: {line}")));
    }
    assert!(
        logged
            .iter()
            .any(|entry| entry["message"] == "every request finished; stopped"),
        "{logged:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
