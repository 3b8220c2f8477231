//! The gateway's mock provider ([`vigil_gateway::mock`]) on its own runtime, recording what
//! it receives.

use std::net::SocketAddr;

pub use vigil_gateway::mock::{EMBEDDING_TOKENS, Seen, USAGE};
use vigil_gateway::mock::{MockState, router};

pub struct MockUpstream {
    pub url: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

impl MockUpstream {
    pub fn start() -> MockUpstream {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let state = MockState::recording();
        let seen = state.seen.clone().expect("recording");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        MockUpstream { url: format!("http://{addr}/v1"), seen, _runtime: runtime }
    }

    pub fn last(&self) -> Seen {
        self.seen.lock().expect("lock").last().cloned().expect("a request reached the mock")
    }
}
