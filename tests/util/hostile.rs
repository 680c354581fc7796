//! Misbehaving HTTP servers on 127.0.0.1:0 for the fault tests: the modes of the reliability
//! report's `srv.py` that the engine must survive, and like it a thread per connection (a
//! server writing endless bodies must not take the threads of the test that watches it).
//! Each counts the requests it read and the TLS handshakes it was offered, so a test compares
//! chorus's counts with the server's.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads the request and never answers.
    Hang,
    /// A chunked JSON body that never ends.
    EndlessChunked,
    /// `Content-Length: 1099511627776` (1 TiB: more than a client reads on loopback in a test
    /// run), then bytes for as long as the client reads.
    BigLength,
    /// A 302 to the path it was asked for, every time.
    RedirectLoop,
    /// A 302 to `https://` on its own host and port (which speaks no TLS).
    ToTlsSamePort,
}

pub struct Hostile {
    pub addr: SocketAddr,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    tls_hellos: AtomicU64,
    closed: AtomicBool,
}

impl Hostile {
    /// Starts the server; it stops accepting when dropped.
    pub fn start(mode: Mode) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.closed.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let counts = shared.clone();
                std::thread::spawn(move || serve(stream, mode, addr, &counts));
            }
        });
        Hostile { addr, counts }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests read so far.
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::SeqCst)
    }

    /// Connections that opened with a TLS ClientHello.
    pub fn tls_hellos(&self) -> u64 {
        self.counts.tls_hellos.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.counts.closed.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `closed`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut stream: TcpStream, mode: Mode, addr: SocketAddr, counts: &Counts) {
    let mut buffer = Vec::new();
    loop {
        // One request head (the clients here send no bodies).
        let head = loop {
            if buffer.first() == Some(&0x16) {
                counts.tls_hellos.fetch_add(1, Ordering::SeqCst);
                // A plain server waits for a request head that never comes.
                let _ = stream.read_to_end(&mut Vec::new());
                return;
            }
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = buffer.drain(..end + 4).collect();
                break head;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        counts.requests.fetch_add(1, Ordering::SeqCst);
        let path = String::from_utf8_lossy(&head)
            .split(' ')
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let answer = match mode {
            Mode::Hang => {
                let _ = stream.read_to_end(&mut Vec::new());
                return;
            }
            Mode::EndlessChunked => {
                let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n";
                return endless(&mut stream, head.as_bytes(), true);
            }
            Mode::BigLength => {
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\nContent-Type: application/json\r\n\r\n";
                return endless(&mut stream, head.as_bytes(), false);
            }
            Mode::RedirectLoop => {
                format!("HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\n\r\n")
            }
            Mode::ToTlsSamePort => format!(
                "HTTP/1.1 302 Found\r\nLocation: https://{addr}/stolen\r\nContent-Length: 0\r\n\r\n"
            ),
        };
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Writes `head`, then 64 KiB pieces (as chunks, or raw) until the client goes away.
fn endless(stream: &mut TcpStream, head: &[u8], chunked: bool) {
    if stream.write_all(head).is_err() {
        return;
    }
    let piece = vec![b'x'; 64 * 1024];
    let mut framed = b"10000\r\n".to_vec();
    framed.extend_from_slice(&piece);
    framed.extend_from_slice(b"\r\n");
    let bytes = if chunked { &framed } else { &piece };
    while stream.write_all(bytes).is_ok() {}
}
