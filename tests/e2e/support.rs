//! Fixtures and helpers: run the binary, make videos with ffmpeg, read manifests, start an S3
//! server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use clipline_core::manifest::{decode, Table};
use clipline_testkit::Need;

/// The `clipline` binary, quiet, with plain logs.
pub fn clipline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clipline"));
    cmd.arg("--quiet").env("RUST_LOG", "warn");
    cmd
}

/// A port free on 127.0.0.1 for a test server.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Wait until a server `what` accepts connections on 127.0.0.1:`port` (panics after 10 s).
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server process listening on a loopback port, killed when dropped (a failing test too).
pub struct LocalServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl LocalServer {
    /// Start what `command` makes of a free port, named `what` in a panic if it never listens.
    pub fn start(what: &str, command: impl FnOnce(u16) -> Command) -> Self {
        let port = free_port();
        let child = command(port).spawn().unwrap_or_else(|e| panic!("{what} cannot start: {e}"));
        let server = Self { child, port };
        wait_for_port(port, what);
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a command, returning its output; panics with stderr when it cannot start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("command starts")
}

/// A `clipline run` command with a config written from `config` (TOML) into `DIR/config.toml`,
/// one input, and `DIR/out` as output (returned too).
pub fn run_command(dir: &Path, config: &str, input: &Path) -> (Command, PathBuf) {
    let config_file = dir.join("config.toml");
    std::fs::write(&config_file, config).unwrap();
    let out_dir = dir.join("out");
    let mut cmd = clipline();
    cmd.arg("run").arg(&config_file).arg("--input").arg(input).arg("--output").arg(&out_dir);
    (cmd, out_dir)
}

/// [`run_command`], run; panics with stderr unless it exits 0. Returns the output directory.
pub fn ingest(dir: &Path, config: &str, input: &Path) -> PathBuf {
    let (mut cmd, out_dir) = run_command(dir, config, input);
    let out = output(&mut cmd);
    assert!(out.status.success(), "clipline run failed: {}", String::from_utf8_lossy(&out.stderr));
    out_dir
}

/// A finished `clipline demo` run.
pub struct Demo {
    /// Its output directory.
    pub dir: PathBuf,
    /// What it printed.
    pub stdout: String,
}

/// The demo, run once per test process into the target's scratch directory and shared by the
/// tests that read it (they must not change it); panics with stderr unless it succeeds.
pub fn demo() -> &'static Demo {
    static DEMO: std::sync::OnceLock<Demo> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-demo");
        let _ = std::fs::remove_dir_all(&dir);
        let out = output(clipline().args(["demo", "--output"]).arg(&dir));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        Demo { dir, stdout }
    })
}

/// Copy a directory tree (a dataset a test is about to damage).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Run ffmpeg with `args` (after `-y -v error`), panicking with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-hide_banner", "-nostdin", "-y", "-v", "error"]).args(args).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test video of `frames` frames at 25 fps, 192x108; `pattern` an ffmpeg lavfi source, with or
/// without options (`testsrc2`, `life=mold=10`).
pub fn lavfi_video(path: &Path, pattern: &str, frames: u32) {
    let separator = if pattern.contains('=') { ':' } else { '=' };
    ffmpeg(&[
        "-f", "lavfi", "-i", &format!("{pattern}{separator}s=192x108:r=25"),
        "-frames:v", &frames.to_string(), "-c:v", "libx264", "-pix_fmt", "yuv420p", path.to_str().unwrap(),
    ]);
}

/// Rows of one manifest table of a local output.
pub fn rows<T: Table>(output: &Path) -> Vec<T> {
    let dir = output.join("manifests").join(T::NAME);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .flat_map(|p| decode::<T>(std::fs::read(p).unwrap().into(), &p.display().to_string()).unwrap())
        .collect()
}

/// Files under a directory, relative, sorted.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Frames in a video file, counted by decoding.
pub fn count_frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// A moto S3 server on a free loopback port with one bucket; stopped on drop.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created.
    pub bucket: String,
}

impl S3Server {
    /// Start one, or `None` when moto is not installed (`CLIPLINE_REQUIRE_S3` makes that a
    /// failure, as in CI).
    pub fn start() -> Option<Self> {
        let program = std::env::var("CLIPLINE_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&program).args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => return Need::S3.missing(format_args!("the S3 server {program} cannot start: {e}")),
        };
        let server = Self { child, endpoint: format!("http://127.0.0.1:{port}"), bucket: "clipline-test".into() };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(status) = server.request("PUT", &format!("/{}", server.bucket)) {
                assert!(status == 200, "creating the bucket answered {status}");
                return Some(server);
            }
            assert!(Instant::now() < deadline, "moto did not answer on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A bare HTTP request (moto does not check signatures); returns the status code.
    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other("no status line"))
    }

    /// The environment a `clipline` process needs to use this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    /// The same settings as store options.
    pub fn options(&self) -> clipline_core::storage::StoreOptions {
        let s3 = [("aws_access_key_id", "testing"), ("aws_secret_access_key", "testing"), ("aws_region", "us-east-1"), ("aws_endpoint", self.endpoint.as_str())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        clipline_core::storage::StoreOptions { s3, ..Default::default() }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A single-node Slurm cluster (`scripts/slurm-local.sh`) under a temporary directory; stopped on
/// drop.
pub struct SlurmCluster {
    dir: tempfile::TempDir,
}

impl SlurmCluster {
    /// Start one with `nodes` nodes, or `None` when Slurm is not installed or this is not root
    /// (`CLIPLINE_REQUIRE_SLURM` makes that a failure, as in CI).
    pub fn start(nodes: u32) -> Option<Self> {
        let installed = Command::new("slurmctld").arg("-V").output().is_ok_and(|o| o.status.success());
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !installed || !root {
            return Need::Slurm.missing(if installed { "slurmd must run as root" } else { "slurmctld is not installed" });
        }
        // A cluster that does not come up is tried once more from scratch (the script prints
        // sinfo and the daemons' logs on the way): a busy machine can take a daemon's port.
        let mut failures = Vec::new();
        for _ in 0..2 {
            let cluster = Self { dir: tempfile::tempdir().unwrap() };
            let out = Command::new(Self::script()).arg("start").arg(cluster.dir.path()).arg(nodes.to_string()).output().unwrap();
            if out.status.success() {
                return Some(cluster);
            }
            eprintln!("slurm-local.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
            failures.push(String::from_utf8_lossy(&out.stderr).to_string());
        }
        panic!("the single-node Slurm cluster did not start twice:\n{}", failures.join("\n"));
    }

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-local.sh")
    }

    /// A Slurm command (`sbatch`, `sinfo`...) pointed at this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", self.dir.path().join("slurm.conf"));
        cmd
    }

    /// The cluster's directory (for job logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        let _ = Command::new(Self::script()).arg("stop").arg(self.dir.path()).status();
    }
}
