//! A loopback TCP proxy in front of a real server that injects faults on command: it forwards
//! bytes unchanged ([`Fault::None`]), or delays each new connection, drops it (accepts, reads,
//! never answers), resets it, or answers an HTTP error status itself.
//!
//! The fault in force applies to every connection accepted after [`FaultProxy::set`]. Setting
//! a fault other than a delay also cuts the connections already open (a pooled keep-alive
//! connection would otherwise keep reaching the healthy server), so a client's next request
//! meets the fault; a delay slows the open connections instead.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// What the proxy does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward unchanged.
    None,
    /// Forward, but hold every chunk the server sends this long (also on connections that
    /// were open before: a slow server, not a broken path).
    Delay(Duration),
    /// Accept and read, never answer, keep the connection open (a black hole).
    Drop,
    /// Reset the connection (TCP RST) once the client has sent something.
    Reset,
    /// Answer every request with this HTTP status (500, 503, ...) and close.
    Status(u16),
}

impl Fault {
    /// A short name for reports: `delay`, `drop`, `reset`, `http-503`, `none`.
    pub fn name(&self) -> String {
        match self {
            Self::None => "none".into(),
            Self::Delay(_) => "delay".into(),
            Self::Drop => "drop".into(),
            Self::Reset => "reset".into(),
            Self::Status(code) => format!("http-{code}"),
        }
    }
}

struct Shared {
    upstream: String,
    fault: Mutex<Fault>,
    /// Bumped by every `set`: connections of an older generation are cut.
    generation: AtomicU64,
    open: Mutex<Vec<(u64, TcpStream)>>,
    faulted: AtomicU64,
    connections: AtomicU64,
}

/// The proxy; its listener thread lives as long as the test process (it holds no server).
pub struct FaultProxy {
    /// `127.0.0.1:PORT` of the proxy.
    pub addr: String,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy to `upstream`, an address `host:port` or a URL `http://host:port[/]`.
    pub fn start(upstream: &str) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let shared = Arc::new(Shared {
            upstream,
            fault: Mutex::new(Fault::None),
            generation: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
            faulted: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let shared = Arc::clone(&accepting);
                thread::spawn(move || handle(client, &shared));
            }
        });
        Self { addr, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port of the proxy.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("a port")
    }

    /// Puts `fault` in force for new connections and cuts the open ones.
    pub fn set(&self, fault: Fault) {
        *self
            .shared
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fault;
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        let open = std::mem::take(
            &mut *self
                .shared
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (_, stream) in open {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Faults injected so far: connections dropped, reset or answered with an error, and
    /// chunks delayed.
    pub fn faulted(&self) -> u64 {
        self.shared.faulted.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Release black-holed clients and forwarding threads.
        self.set(Fault::Reset);
    }
}

fn remember(shared: &Shared, generation: u64, stream: &TcpStream) {
    if let Ok(clone) = stream.try_clone() {
        shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((generation, clone));
    }
    // A `set` between reading the generation and registering: cut now.
    if shared.generation.load(Ordering::SeqCst) != generation {
        let _ = stream.shutdown(Shutdown::Both);
    }
}

fn handle(client: TcpStream, shared: &Shared) {
    shared.connections.fetch_add(1, Ordering::SeqCst);
    let generation = shared.generation.load(Ordering::SeqCst);
    let fault = *shared.fault.lock().unwrap_or_else(PoisonError::into_inner);
    if !matches!(fault, Fault::None | Fault::Delay(_)) {
        shared.faulted.fetch_add(1, Ordering::SeqCst);
    }
    // Only connections that stay open are remembered (to be cut by the next `set`): a kept
    // clone would also keep a reset or answered socket from closing.
    if matches!(fault, Fault::None | Fault::Delay(_) | Fault::Drop) {
        remember(shared, generation, &client);
    }
    match fault {
        Fault::None | Fault::Delay(_) => forward(client, shared, generation),
        Fault::Drop => {
            // Read and discard until the client gives up or the proxy cuts the connection.
            let mut sink = [0u8; 4096];
            let mut client = client;
            while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
        }
        Fault::Reset => {
            // Closing a socket with unread received data makes the kernel send RST.
            let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
            let mut first = [0u8; 1];
            let _ = client.peek(&mut first);
            drop(client);
        }
        Fault::Status(code) => answer_status(client, code),
    }
}

fn answer_status(mut client: TcpStream, code: u16) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    // Read the request head and its body (Content-Length), then answer.
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if request.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let body = format!("{{\"errors\":[\"injected fault: HTTP {code}\"]}}");
    let response = format!(
        "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes());
    let _ = client.shutdown(Shutdown::Write);
}

fn forward(client: TcpStream, shared: &Shared, generation: u64) {
    let Ok(server) = TcpStream::connect(&shared.upstream) else {
        return;
    };
    remember(shared, generation, &server);
    let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = thread::spawn(move || pump(client_read, server, None));
    pump(server_read, client, Some(shared));
    let _ = upstream.join();
}

/// Copies `from` to `to` until either side closes, then closes both directions; with
/// `delays`, holds each chunk while a [`Fault::Delay`] is in force.
fn pump(mut from: TcpStream, mut to: TcpStream, delays: Option<&Shared>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(shared) = delays {
            let fault = *shared.fault.lock().unwrap_or_else(PoisonError::into_inner);
            if let Fault::Delay(delay) = fault {
                shared.faulted.fetch_add(1, Ordering::SeqCst);
                thread::sleep(delay);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
