//! Accepting connections with a limit on each thing a client controls: how many are open,
//! and how long one may take to send a request's head.
//!
//! [`accept_loop`] serves HTTP/1.1 on each accepted socket with hyper directly (axum's own
//! `serve` sets neither limit). Three rules keep a flood of slow or idle clients, which need
//! no key to open sockets, from taking the server down:
//!
//! - **Head deadline.** A connection must deliver each request's head within
//!   `http.header_read_timeout`, counted from when it opens or from the end of its previous
//!   answer, so the same deadline closes idle keep-alive connections (hyper's semantics).
//!   A slow-headers client ("slowloris") is cut off there.
//! - **A cap, shed from the idle end.** At most `http.max_connections` are open. A new
//!   connection beyond the cap closes the connection that has been idle the longest
//!   (waiting for a head, which is all a half-open flood does); only when every open one is
//!   busy with a request is the new one refused, with a plain `503` and `Retry-After`. So
//!   health probes and real callers keep being answered while a flood is shed, and file
//!   handles stay bounded.
//! - **Handles to spare.** [`raise_open_file_limit`] lifts the soft `RLIMIT_NOFILE` to the
//!   hard one at start, and warns when the cap would not fit.
//!
//! [`Table`] is the bookkeeping, free of IO so its rules are unit-tested: which connections
//! are open, which are busy (a request in flight, its answer's body included), and the order
//! in which idle ones became idle.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, watch};
use tower::ServiceExt;

use crate::metrics::ShedLabels;
use crate::state::AppState;

/// What a new connection beyond the cap is told when every open one is busy.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n\
Connection: close\r\nContent-Length: 108\r\n\r\n\
{\"error\":{\"code\":\"too_many_connections\",\"message\":\"every connection is busy; retry shortly\",\"details\":null}}";

/// File handles kept beyond the connection cap for the store, blobs and plugins.
const SPARE_FILES: u64 = 256;

/// How long to wait before accepting again after the process ran out of file handles.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// One open connection's entry.
#[derive(Debug)]
struct Entry {
    /// Requests in flight, each until its answer's body is done.
    busy: usize,
    /// Bumped whenever the connection becomes idle, so stale queue entries are recognized.
    idle_epoch: u64,
    /// Closes the connection when fired (eviction).
    evict: Option<oneshot::Sender<()>>,
}

/// Which connections are open and busy, and in which order idle ones became idle.
#[derive(Debug)]
pub struct Table {
    max: usize,
    next_id: u64,
    open: HashMap<u64, Entry>,
    /// `(id, idle_epoch)` in the order connections became idle; entries whose connection has
    /// since closed, turned busy or idled again are skipped (and compacted away).
    idle: VecDeque<(u64, u64)>,
}

/// What [`Table::admit`] decided about a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Admitted with this id; `evicted` says whether an idle connection was closed for it.
    Admitted { id: u64, closed: oneshot::Receiver<()>, evicted: bool },
    /// Every open connection is busy.
    Refused,
}

impl Table {
    pub fn new(max: usize) -> Self {
        Table { max: max.max(1), next_id: 0, open: HashMap::new(), idle: VecDeque::new() }
    }

    pub fn open(&self) -> usize {
        self.open.len()
    }

    pub fn admit(&mut self) -> Admission {
        let evicted = self.open.len() >= self.max;
        if evicted && !self.evict_oldest_idle() {
            return Admission::Refused;
        }
        let (evict, closed) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        self.open.insert(id, Entry { busy: 0, idle_epoch: 0, evict: Some(evict) });
        self.idle.push_back((id, 0));
        Admission::Admitted { id, closed, evicted }
    }

    /// Closes the connection idle the longest; false if none is idle.
    fn evict_oldest_idle(&mut self) -> bool {
        while let Some((id, epoch)) = self.idle.pop_front() {
            let idle_since_then = self.open.get(&id).is_some_and(|e| e.busy == 0 && e.idle_epoch == epoch);
            if idle_since_then && let Some(mut entry) = self.open.remove(&id) {
                if let Some(evict) = entry.evict.take() {
                    // The connection may have ended on its own meanwhile; nothing to close then.
                    let _ = evict.send(());
                }
                return true;
            }
        }
        false
    }

    pub fn request_started(&mut self, id: u64) {
        if let Some(entry) = self.open.get_mut(&id) {
            entry.busy += 1;
        }
    }

    pub fn request_finished(&mut self, id: u64) {
        let Some(entry) = self.open.get_mut(&id) else { return };
        entry.busy = entry.busy.saturating_sub(1);
        if entry.busy == 0 {
            entry.idle_epoch += 1;
            self.idle.push_back((id, entry.idle_epoch));
            // Stale entries pile up as connections go busy and idle again; drop them once
            // they outnumber the live ones, so the queue stays proportional to the table.
            if self.idle.len() > 2 * self.open.len() + 64 {
                let open = &self.open;
                self.idle.retain(|(id, epoch)| open.get(id).is_some_and(|e| e.busy == 0 && e.idle_epoch == *epoch));
            }
        }
    }

    pub fn closed(&mut self, id: u64) {
        self.open.remove(&id);
    }
}

/// The table shared by the accept loop and the connections' tasks.
#[derive(Clone, Debug)]
struct Shared(Arc<Mutex<Table>>);

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Table) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Marks one request busy until dropped (with the answer's body, or with the request if the
/// client goes away first).
struct Busy {
    table: Shared,
    id: u64,
}

impl Busy {
    fn start(table: &Shared, id: u64) -> Self {
        table.with(|t| t.request_started(id));
        Busy { table: table.clone(), id }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.table.with(|t| t.request_finished(self.id));
    }
}

/// Removes a connection from the table when its task ends, however it ends.
struct Open {
    table: Shared,
    id: u64,
    state: AppState,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.table.with(|t| t.closed(self.id));
        self.state.metrics.connections_open.dec();
    }
}

/// Accepts connections until `stop` turns true, then asks each open one to finish its
/// request and close, and returns once all have (the caller bounds how long it waits).
pub async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) {
    let metrics = &state.metrics;
    let table = Shared(Arc::new(Mutex::new(Table::new(state.config.http.max_connections))));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
            // Reap finished connection tasks so the set does not grow with every connection.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file handles (or another resource): back off instead of spinning.
                // Errors about one connection (reset before accept) need no pause.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionRefused
                ) {
                    tracing::warn!(error = %e, "accepting a connection failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let (id, closed) = match table.with(Table::admit) {
            Admission::Admitted { id, closed, evicted } => {
                if evicted {
                    metrics.connections_shed.get_or_create(&ShedLabels { how: "evicted" }).inc();
                }
                (id, closed)
            }
            Admission::Refused => {
                metrics.connections_shed.get_or_create(&ShedLabels { how: "refused" }).inc();
                // A fresh socket's send buffer takes this whole; if not, closing says enough.
                let _ = tcp.try_write(REFUSAL);
                continue;
            }
        };
        metrics.connections_open.inc();
        if let Err(e) = tcp.set_nodelay(true) {
            // Answers (a model call's stream above all) are written as they come.
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
        let open = Open { table: table.clone(), id, state: state.clone() };
        let connection = serve_connection(tcp, peer, router.clone(), open, closed, stop.clone());
        tasks.spawn(connection);
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    open: Open,
    closed: oneshot::Receiver<()>,
    mut stop: watch::Receiver<bool>,
) {
    let (table, id) = (open.table.clone(), open.id);
    let header_read_timeout = open.state.config.http.header_read_timeout;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let busy = Busy::start(&table, id);
        let router = router.clone();
        async move {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // The request stays busy until its answer's body is done (a stream above all).
            let response = response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _busy = &busy;
                    frame
                }))
            });
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(tcp), service).with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        }
        // Evicted: dropping the connection closes the socket.
        _ = closed => {}
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error while closing");
            }
        }
    }
    drop(open);
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Lifts the soft limit on open files to the hard limit, so the connection cap is what
/// bounds connections, and warns if even the hard limit leaves too few for the cap.
pub fn raise_open_file_limit(max_connections: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
    let current = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(e) => {
            tracing::debug!(error = %e, "could not raise the open-file limit");
            limit.current
        }
    };
    let needed = max_connections as u64 + SPARE_FILES;
    if let Some(current) = current
        && current < needed
    {
        tracing::warn!(
            open_files = current,
            max_connections,
            "the open-file limit is below http.max_connections plus {SPARE_FILES} spare; \
             lower http.max_connections or raise the limit (ulimit -n)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(table: &mut Table) -> (u64, oneshot::Receiver<()>, bool) {
        match table.admit() {
            Admission::Admitted { id, closed, evicted } => (id, closed, evicted),
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = std::str::from_utf8(REFUSAL).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["error"]["code"], "too_many_connections");
    }

    #[test]
    fn beyond_the_cap_the_longest_idle_connection_makes_room() {
        let mut table = Table::new(3);
        let (a, mut a_closed, _) = admitted(&mut table);
        let (b, mut b_closed, _) = admitted(&mut table);
        let (c, _c_closed, evicted) = admitted(&mut table);
        assert!(!evicted);
        // a goes busy and idle again: now b has been idle longest.
        table.request_started(a);
        table.request_finished(a);
        table.request_started(c);
        let (_d, _, evicted) = admitted(&mut table);
        assert!(evicted);
        assert_eq!(b_closed.try_recv(), Ok(()), "b was idle the longest");
        assert!(a_closed.try_recv().is_err(), "a is still open");
        assert_eq!(table.open(), 3);
        table.closed(b);
        assert_eq!(table.open(), 3, "an evicted connection's own close changes nothing");
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let mut table = Table::new(2);
        let (a, _a_closed, _) = admitted(&mut table);
        let (b, _b_closed, _) = admitted(&mut table);
        table.request_started(a);
        table.request_started(b);
        assert!(matches!(table.admit(), Admission::Refused));
        // Two requests on a: it is idle only when both are done.
        table.request_started(a);
        table.request_finished(a);
        assert!(matches!(table.admit(), Admission::Refused));
        table.request_finished(a);
        let (_c, _, evicted) = admitted(&mut table);
        assert!(evicted);
        table.closed(b);
        let (_d, _, evicted) = admitted(&mut table);
        assert!(!evicted, "room after a connection closed on its own");
    }

    #[test]
    fn the_idle_queue_stays_proportional_to_the_open_connections() {
        let mut table = Table::new(4);
        let (a, _a_closed, _) = admitted(&mut table);
        for _ in 0..100_000 {
            table.request_started(a);
            table.request_finished(a);
        }
        assert!(table.idle.len() <= 2 * table.open() + 65, "{}", table.idle.len());
        let (_b, _b_closed, _) = admitted(&mut table);
        assert_eq!(table.open(), 2);
    }
}
