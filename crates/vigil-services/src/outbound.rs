//! Requests Vigil sends on a caller's behalf (agents' control URLs), through a port.
//!
//! [`judge`] decides where a call may go: the URL passes the [`EgressPolicy`], and so does
//! every address its host resolves to right now; the call is then pinned to the address
//! judged, so a rebinding name gets no second lookup to answer differently. The sending
//! itself is a [`ControlSender`], an adapter the composition root plugs in (the HTTP
//! client lives outside this layer); it must connect to the pinned address, through no
//! proxy, and follow no redirect.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use vigil_core::egress::EgressPolicy;

/// A boxed future, for the port's object-safe method.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One POST of a JSON body.
#[derive(Debug)]
pub struct Post<'a> {
    pub url: &'a str,
    /// `(host name, address)`: connect to this address for this name. `None` when the URL
    /// names an address itself.
    pub pinned: Option<(&'a str, SocketAddr)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

/// Why a POST got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("could not be reached: {0}")]
    Failed(String),
}

/// Sends POSTs for the services; implemented by the composition root's HTTP client.
pub trait ControlSender: Send + Sync + std::fmt::Debug {
    /// POSTs `post.body` as JSON and returns the answer's status.
    fn post_json<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<u16, SendError>>;
}

/// Where a call to `url` may connect, or why it may not be made: `Ok(None)` when the URL
/// names an address (judged by its form alone), `Ok(Some((name, address)))` for a name.
pub async fn judge(egress: &EgressPolicy, url: &str) -> Result<Option<(String, SocketAddr)>, String> {
    let parsed = egress.check_url(url).map_err(|e| e.to_string())?;
    let Some(name) = parsed.domain() else { return Ok(None) };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((name, port)).await.map_err(|e| format!("{name} does not resolve: {e}"))?.collect();
    let first = *addrs.first().ok_or_else(|| format!("{name} resolves to no address"))?;
    for addr in &addrs {
        egress.check_addr(Some(name), *addr).map_err(|e| format!("{name} resolves to {e}"))?;
    }
    Ok(Some((name.to_owned(), first)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_url_is_judged_by_the_addresses_its_name_resolves_to() {
        let strict = EgressPolicy::default();
        let refused = judge(&strict, "http://localhost:9/control").await.expect_err("loopback by name");
        assert!(refused.contains("localhost resolves to") && refused.contains("loopback"), "{refused}");
        let refused = judge(&strict, "http://169.254.169.254/latest").await.expect_err("metadata");
        assert!(refused.contains("link-local"), "{refused}");
        let allow = ["127.0.0.0/8", "::1"].map(|a| vigil_core::egress::Allowed::parse(a).expect("entry")).to_vec();
        let lenient = EgressPolicy { allow, own: None };
        let (name, addr) = judge(&lenient, "http://localhost:9/control").await.expect("allowed").expect("a name");
        assert_eq!((name.as_str(), addr.ip().is_loopback(), addr.port()), ("localhost", true, 9));
        assert_eq!(judge(&lenient, "http://127.0.0.1:9/control").await, Ok(None), "an address needs no lookup");
    }
}
