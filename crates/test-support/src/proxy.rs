//! A fault-injecting TCP proxy for end-to-end tests: it sits between two `tessera` nodes
//! (a node's config names the proxy's address instead of the peer's real one) and forwards
//! bytes untouched, so gRPC over mutual TLS passes through it. A test can [`FaultProxy::cut`]
//! the link to partition a node from its peers and [`FaultProxy::heal`] it later.
//!
//! Only `std::net` and `std::thread`: one accept thread, and two copy threads per forwarded
//! connection. I/O errors in the background threads are ignored, never panicked on.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long the proxy waits for the target to accept a forwarded connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One live forwarded connection: the accepted client socket and the socket to the target.
struct Link {
    id: u64,
    client: TcpStream,
    upstream: TcpStream,
}

impl Link {
    fn shutdown(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

/// State shared by the handle, the accept thread and the connection threads.
struct Shared {
    target: SocketAddr,
    cut: AtomicBool,
    stopping: AtomicBool,
    next_id: AtomicU64,
    links: Mutex<Vec<Link>>,
}

impl Shared {
    fn links(&self) -> MutexGuard<'_, Vec<Link>> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shuts down every live connection (both directions, both sockets) and forgets them.
    fn shutdown_all(&self) {
        let mut links = self.links();
        for link in links.iter() {
            link.shutdown();
        }
        links.clear();
    }

    fn remove(&self, id: u64) {
        self.links().retain(|l| l.id != id);
    }
}

/// A TCP forwarder from a local port to `target`, which can cut and heal the link.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards every accepted connection to `target`.
    ///
    /// # Panics
    /// If the local listener cannot be bound (a test-environment failure).
    pub fn start(target: SocketAddr) -> FaultProxy {
        #[allow(clippy::expect_used)]
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).expect("bind the fault proxy on 127.0.0.1:0");
        #[allow(clippy::expect_used)]
        let addr = listener
            .local_addr()
            .expect("the fault proxy's bound address");
        let shared = Arc::new(Shared {
            target,
            cut: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            links: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("fault-proxy-{addr}"))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .ok();
        FaultProxy {
            addr,
            shared,
            accept,
        }
    }

    /// The address to give clients instead of `target`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address connections are forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Partition: every open forwarded connection is shut down (both directions, both
    /// sockets), and until [`heal`](Self::heal) new connections are accepted and then
    /// immediately closed without reaching the target (like a peer that is unreachable).
    pub fn cut(&self) {
        // Set the flag before taking the lock: a connection registering after this sees it.
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.shutdown_all();
    }

    /// Ends the partition: new connections are forwarded again.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Whether the link is cut now.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
            .field("cut", &self.is_cut())
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocked `accept` so the thread sees the flag and drops the listener.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(handle) = self.accept.take() {
            // Without the wake-up the thread may still sit in `accept`; leave it detached.
            if woke {
                let _ = handle.join();
            }
        }
        self.shared.shutdown_all();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = stream else {
            // A transient accept error (e.g. the client reset before accept): keep going.
            continue;
        };
        if shared.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let conn_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || forward(client, &conn_shared));
        // If the thread could not be spawned the closure (and the client socket) is dropped.
        drop(spawned);
    }
}

/// Connects to the target and copies bytes both ways until either side is done.
fn forward(client: TcpStream, shared: &Arc<Shared>) {
    let Ok(upstream) = TcpStream::connect_timeout(&shared.target, CONNECT_TIMEOUT) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let (Ok(client_r), Ok(client_w), Ok(upstream_r), Ok(upstream_w), Ok(client_reg), Ok(up_reg)) = (
        client.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
    ) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    };

    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut links = shared.links();
        // Checked under the lock: `cut` sets the flag before locking, so either it sees this
        // link in the list or this sees the flag.
        if shared.cut.load(Ordering::SeqCst) || shared.stopping.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
            return;
        }
        links.push(Link {
            id,
            client: client_reg,
            upstream: up_reg,
        });
    }

    let back = thread::Builder::new()
        .name("fault-proxy-down".into())
        .spawn(move || pump(upstream_r, client_w));
    match back {
        Ok(back) => {
            pump(client_r, upstream_w);
            let _ = back.join();
        }
        Err(_) => {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
    shared.remove(id);
}

/// Copies `from` into `to`. At a clean end of stream it passes the half-close on; on an
/// error it shuts both sockets down so the other direction ends too.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    match io::copy(&mut from, &mut to) {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::io::{ErrorKind, Read, Write};
    use std::sync::atomic::AtomicUsize;

    /// An echo server on 127.0.0.1:0; the counter is how many connections it accepted.
    fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    let Ok(mut reader) = stream.try_clone() else {
                        return;
                    };
                    let mut writer = stream;
                    let _ = io::copy(&mut reader, &mut writer);
                });
            }
        });
        (addr, accepted)
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }

    fn assert_echoes(s: &mut TcpStream, msg: &[u8]) {
        s.write_all(msg).unwrap();
        let mut buf = vec![0u8; msg.len()];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, msg);
    }

    /// The connection is closed: a read returns EOF or an error, not a timeout or data.
    fn assert_closed(s: &mut TcpStream) {
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("expected a closed connection, read {n} bytes"),
            Err(e) => assert!(
                !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "the connection stayed open (read timed out)"
            ),
        }
    }

    #[test]
    fn proxy_forwards_cuts_and_heals() {
        let (target, accepted) = echo_server();
        let proxy = FaultProxy::start(target);
        assert_eq!(proxy.target(), target);
        assert!(!proxy.is_cut());

        let mut open = connect(proxy.addr());
        assert_echoes(&mut open, b"hello through the proxy");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        proxy.cut();
        assert!(proxy.is_cut());
        assert_closed(&mut open);

        // A new connection is accepted and closed without reaching the target.
        let mut refused = connect(proxy.addr());
        let _ = refused.write_all(b"anyone there?");
        assert_closed(&mut refused);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        proxy.heal();
        assert!(!proxy.is_cut());
        let mut fresh = connect(proxy.addr());
        assert_echoes(&mut fresh, b"healed");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);

        // Dropping the proxy shuts down what is still open.
        drop(proxy);
        assert_closed(&mut fresh);
    }

    #[test]
    fn unreachable_target_closes_the_client() {
        let target = {
            let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap()
        };
        let proxy = FaultProxy::start(target);
        let mut s = connect(proxy.addr());
        assert_closed(&mut s);
    }

    #[test]
    fn cut_connections_are_forgotten() {
        let (target, _) = echo_server();
        let proxy = FaultProxy::start(target);
        let mut a = connect(proxy.addr());
        assert_echoes(&mut a, b"a");
        let mut b = connect(proxy.addr());
        assert_echoes(&mut b, b"b");
        assert_eq!(proxy.shared.links().len(), 2);
        proxy.cut();
        assert_closed(&mut a);
        assert_closed(&mut b);
        assert!(proxy.shared.links().is_empty());
        proxy.heal();
        let mut c = connect(proxy.addr());
        assert_echoes(&mut c, b"c");
        // A connection the client closes is removed once both directions end.
        drop(c);
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !proxy.shared.links().is_empty() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(proxy.shared.links().is_empty());
    }
}
