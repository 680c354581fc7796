//! Debian's nginx on a free loopback port, configured in a temporary folder, with its access
//! log on; killed when dropped. Shared by the engine tests and the benchmarks (which include
//! this file with `#[path]`), so it uses the standard library only.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx. `/` and every other path answer `200 ok`; `/big` answers 1 KiB.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
    /// A master with workers: stopped with SIGTERM (a SIGKILL would leave its workers).
    workers: usize,
    /// Serves https.
    https: bool,
}

/// What an HTTP/2 nginx speaks (nginx 1.22, Debian bookworm's, has no `http2 on;` yet: the
/// `http2` parameter of `listen` turns it on).
pub enum Http2<'a> {
    /// `listen ... ssl http2` with this certificate and key (PEM files): HTTP/2 by ALPN,
    /// HTTP/1.1 to a client that offers only that.
    Tls { cert: &'a Path, key: &'a Path },
    /// `listen ... http2` on a plain port: HTTP/2 with prior knowledge (h2c) only.
    PriorKnowledge,
}

impl Nginx {
    /// Starts nginx in `dir` (created if needed). `access_log: false` turns the log off (for
    /// benchmarks, where the disk would be measured instead of the generator). `cpu`: pin it
    /// to this core with `taskset`.
    pub fn start(dir: &Path, access_log: bool, cpu: Option<usize>) -> Nginx {
        Nginx::start_with(dir, access_log, cpu, "")
    }

    /// As `start`, with more of the server block (`location` blocks) before the catch-all.
    pub fn start_with(dir: &Path, access_log: bool, cpu: Option<usize>, server: &str) -> Nginx {
        Nginx::launch(dir, access_log, cpu, server, 0, None)
    }

    /// nginx speaking HTTP/2 as `http2` says. Its access log names each request's
    /// connection (`$connection`) after the client's address, the request line ends
    /// with the protocol (`GET / HTTP/2.0`), and the line ends with the request body in
    /// quotes when nginx read one (a `proxy_pass` location), `"-"` otherwise.
    pub fn start_http2(
        dir: &Path,
        access_log: bool,
        cpu: Option<usize>,
        http2: Http2<'_>,
    ) -> Nginx {
        Nginx::launch(dir, access_log, cpu, "", 0, Some(http2))
    }

    /// As `start_http2`, with more of the server block (`location` blocks) before the
    /// catch-all, and the access log on.
    pub fn start_http2_with(dir: &Path, http2: Http2<'_>, server: &str) -> Nginx {
        Nginx::launch(dir, true, None, server, 0, Some(http2))
    }

    /// For many connections (the scale benchmark): a master and `workers` worker processes
    /// sharing the port (`reuseport`), each holding up to 19,000 connections, no access log.
    pub fn start_scaled(dir: &Path, workers: usize) -> Nginx {
        Nginx::launch(dir, false, None, "", workers.max(1), None)
    }

    /// `workers` 0: one process, no master.
    fn launch(
        dir: &Path,
        access_log: bool,
        cpu: Option<usize>,
        server: &str,
        workers: usize,
        http2: Option<Http2<'_>>,
    ) -> Nginx {
        std::fs::create_dir_all(dir.join("tmp")).expect("nginx folder");
        let port = free_port();
        let dir = dir.canonicalize().expect("nginx folder path");
        let log = if access_log && http2.is_some() {
            format!(
                "log_format connections '$remote_addr $connection - [$time_local] \"$request\" $status $body_bytes_sent $server_protocol \"$request_body\"';\naccess_log {}/access.log connections;",
                dir.display()
            )
        } else if access_log {
            format!("access_log {}/access.log;", dir.display())
        } else {
            "access_log off;".to_owned()
        };
        let big = "x".repeat(1024);
        let https = matches!(http2, Some(Http2::Tls { .. }));
        let (protocol, tls) = match &http2 {
            None => ("", String::new()),
            Some(Http2::PriorKnowledge) => (" http2", String::new()),
            Some(Http2::Tls { cert, key }) => (
                " ssl http2",
                format!(
                    "ssl_certificate {};\nssl_certificate_key {};\n",
                    cert.display(),
                    key.display()
                ),
            ),
        };
        let (processes, listen, connections) = match workers {
            0 => (
                "master_process off;\nworker_processes 1;\nworker_rlimit_nofile 65536;".to_owned(),
                "backlog=4096",
                30_000,
            ),
            n => (
                format!("master_process on;\nworker_processes {n};\nworker_rlimit_nofile 20000;"),
                "reuseport backlog=65535",
                19_000,
            ),
        };
        let config = format!(
            "daemon off;\n\
             {processes}\n\
             pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log warn;\n\
             events {{ worker_connections {connections}; }}\n\
             http {{\n\
             {log}\n\
             client_body_temp_path {dir}/tmp/body;\n\
             proxy_temp_path {dir}/tmp/proxy;\n\
             fastcgi_temp_path {dir}/tmp/fastcgi;\n\
             uwsgi_temp_path {dir}/tmp/uwsgi;\n\
             scgi_temp_path {dir}/tmp/scgi;\n\
             keepalive_requests 100000;\n\
             server {{\n\
             listen 127.0.0.1:{port} {listen}{protocol};\n\
             {tls}\
             {server}\n\
             location = /big {{ default_type text/plain; return 200 \"{big}\"; }}\n\
             location / {{ default_type text/plain; return 200 \"ok\\n\"; }}\n\
             }}\n\
             }}\n",
            dir = dir.display(),
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).expect("nginx config");
        let mut command = match cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", &cpu.to_string(), NGINX]);
                command
            }
            None => Command::new(NGINX),
        };
        let child = command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts (Debian package nginx)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let nginx = Nginx {
            child,
            dir,
            addr,
            workers,
            https,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {addr}; see {}",
                nginx.dir.join("error.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The access log's lines (nginx's `combined` format), one per request served.
    pub fn access_log(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        log.lines().map(str::to_owned).collect()
    }

    /// The request lines of the access log: `GET /a HTTP/1.1`, one per request served.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| line.split('"').nth(1).map(str::to_owned))
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if self.workers > 0 {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
