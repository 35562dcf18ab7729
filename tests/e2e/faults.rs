//! Storage faults: an S3 endpoint that goes away in the middle of a run and comes back, one that
//! answers every request with an error, and one that never answers.
//!
//! moto keeps its objects in memory, so killing the moto process itself would lose the bucket, not
//! test an outage. The endpoint clipline talks to is a TCP forwarder in front of moto; "killing the
//! server" closes the forwarder's listening socket and every connection through it (requests in
//! flight fail mid-way), and restarting it listens again on the same port: what clients see of a
//! real S3 endpoint restarting.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clipline_core::storage::Store;

use crate::interrupt::timed;
use crate::partitions::{assert_same_rows, demo_config, demo_inputs, succeeds};
use crate::support::{clipline, free_port, output, S3Server};

/// A TCP forwarder from a loopback port to `target` that can be taken down and brought back.
struct Forwarder {
    port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Forwarder {
    fn start(target: String) -> Self {
        let port = free_port();
        let forwarder = Self { port, up: Arc::new(AtomicBool::new(true)), connections: Arc::default() };
        let (up, connections) = (forwarder.up.clone(), forwarder.connections.clone());
        std::thread::spawn(move || loop {
            if !up.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let listener = TcpListener::bind(("127.0.0.1", port)).expect("the forwarder's port is free again");
            listener.set_nonblocking(true).unwrap();
            while up.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(&target) else { continue };
                        let mut live = connections.lock().unwrap();
                        live.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        forwarder
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stop listening and cut every connection.
    fn kill(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restart(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[test]
fn a_run_survives_the_s3_endpoint_going_away_mid_run_and_ends_with_the_same_rows() {
    let Some(s3) = S3Server::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path());
    let reference = format!("s3://{}/reference", s3.bucket);
    let measured = timed(clipline().arg("run").arg(&config).arg("-i").arg(demo_inputs()).args(["-o", &reference]).envs(s3.env()));

    let forwarder = Forwarder::start(s3.endpoint.trim_start_matches("http://").to_string());
    let out = format!("s3://{}/outage", s3.bucket);
    let mut run = clipline();
    run.arg("run").arg(&config).arg("-i").arg(demo_inputs()).args(["-o", &out]).envs(s3.env()).env("AWS_ENDPOINT_URL", forwarder.endpoint());
    let mut child = run.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // The endpoint goes away a third of the way into the run, as long as the same run just took.
    std::thread::sleep(measured / 3);
    assert!(child.try_wait().unwrap().is_none(), "the run ended before the outage began ({measured:?} uninterrupted)");
    // CLIPLINE_OUTAGE_S tries a longer outage (the default retry budget is a minute per call).
    let outage = Duration::from_secs(std::env::var("CLIPLINE_OUTAGE_S").ok().and_then(|s| s.parse().ok()).unwrap_or(5));
    forwarder.kill();
    std::thread::sleep(outage);
    forwarder.restart();
    let finished = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&finished.stderr);
    if outage < Duration::from_secs(50) {
        assert!(finished.status.success(), "the run failed over a {outage:?} outage: {stderr}");
        assert!(String::from_utf8_lossy(&finished.stdout).contains("4 processed"));
    } else if !finished.status.success() {
        // Longer than the retries ride out: the run stops naming the output, and resumes.
        assert!(stderr.contains(&out) && stderr.contains("run the same command again"), "{stderr}");
        succeeds(&mut run);
        eprintln!("outage of {outage:?}: the run stopped naming the output; the same command resumed it");
    }
    let open = |uri: &str| Store::open_with(uri, s3.options()).unwrap();
    assert_same_rows(&open(&out), &open(&reference));
    let verified = succeeds(clipline().args(["shards", "verify", &out]).envs(s3.env()));
    assert!(verified.contains("all good"), "{verified}");
}

/// An HTTP server on a loopback port that answers every request with `answer` (or, when `None`,
/// reads the request and never answers); counts the requests.
fn stub_endpoint(answer: Option<&'static str>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || serve(stream, answer, &counter));
        }
    });
    (endpoint, requests)
}

fn serve(mut stream: TcpStream, answer: Option<&str>, requests: &AtomicUsize) {
    let mut buffer = [0u8; 16 * 1024];
    let mut seen = Vec::new();
    loop {
        let Ok(n) = stream.read(&mut buffer) else { return };
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buffer[..n]);
        // Requests here carry no body worth waiting for: answer at the end of the headers.
        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            seen.drain(..end + 4);
            requests.fetch_add(1, Ordering::SeqCst);
            match answer {
                Some(body) => {
                    let reply = format!("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
                None => std::thread::sleep(Duration::from_secs(3600)),
            }
        }
    }
}

/// `clipline run` of the demo inputs into `s3://bucket/out` at `endpoint`, with these keys and
/// one more setting.
fn run_against(endpoint: &str, keys: (&str, &str), setting: (&str, &str)) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    output(
        clipline()
            .arg("run")
            .arg(demo_config(dir.path()))
            .arg("-i")
            .arg(demo_inputs())
            .args(["-o", "s3://bucket/out"])
            .envs([("AWS_ACCESS_KEY_ID", keys.0), ("AWS_SECRET_ACCESS_KEY", keys.1), ("AWS_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", endpoint), setting]),
    )
}

#[test]
fn a_failing_endpoint_is_retried_a_bounded_number_of_times_then_named_in_one_clear_error() {
    let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    let (endpoint, requests) = stub_endpoint(Some(body));
    let started = Instant::now();
    let out = run_against(&endpoint, ("AKIDEXAMPLESECRET", "wJalrXUtnFEMI"), ("CLIPLINE_STORAGE_RETRIES", "3"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(requests.load(Ordering::SeqCst), 4, "one request and 3 retries, then the error: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "retries are bounded in time too");
    let line = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(line.contains("s3://bucket/out") && line.contains("503") && line.contains("after 3 retries"), "{stderr}");
    assert!(!stderr.contains("AKIDEXAMPLESECRET") && !stderr.contains("wJalrXUtnFEMI"), "credentials leaked: {stderr}");
}

#[test]
fn an_endpoint_that_never_answers_times_out_with_the_object_named() {
    let (endpoint, requests) = stub_endpoint(None);
    let started = Instant::now();
    let out = run_against(&endpoint, ("testing", "testing"), ("CLIPLINE_STORAGE_TIMEOUT_S", "2"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "the call limit holds: {:?}", started.elapsed());
    assert!(requests.load(Ordering::SeqCst) >= 1);
    let line = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(line.contains("s3://bucket/out/manifests/_partitions") && line.contains("timed out"), "{stderr}");
}
