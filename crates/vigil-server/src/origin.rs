//! Requests a web page may have made on the operator's behalf, refused before anything else.
//!
//! Local mode trusts loopback callers without a key, and a browser on the operator's machine
//! is a loopback caller for every page it shows. Two attacks follow, and [`check`] closes
//! both:
//!
//! - **DNS rebinding**: a page on `evil.example` re-points its name at `127.0.0.1` and reads
//!   the API as same-origin. Its requests still carry `Host: evil.example`, so in local mode
//!   every request must name a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`) or none.
//! - **Cross-site requests**: any page may send a form or `fetch` with `mode: "no-cors"` to
//!   `http://127.0.0.1:7700` without asking first (no CORS preflight) as long as the request
//!   is "simple": no custom headers, and a body of type `text/plain`,
//!   `application/x-www-form-urlencoded` or `multipart/form-data`, or none. A mutating
//!   request is accepted only when it is not one of those: it carries a key header, a
//!   non-simple `Content-Type`, or [`INTENT_HEADER`]. Browsers need a preflight for each of
//!   these, and Vigil answers no preflight, so a page cannot send them. On top of that, a
//!   mutating request's `Origin` (which browsers attach to every cross-origin and every
//!   non-GET request) must be Vigil's own, and its `Sec-Fetch-Site` must not say another site.
//!
//! Production mode needs a key header on every non-public route, which no page can send
//! without a preflight: rebinding reads nothing there, and its `Host` is not restricted (a
//! reverse proxy may name Vigil however it likes). It still checks every mutation's `Origin`
//! and `Sec-Fetch-Site`, so a browser session (the console's, later) cannot be ridden
//! either; when cookies arrive, the simple-request rule must extend to them.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use vigil_core::config::Mode;

/// The header a caller without a key or a JSON body sends to say it means to change state:
/// `X-Requested-With: <anything>`, as many web frameworks spell it.
pub const INTENT_HEADER: &str = "x-requested-with";

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Local mode, and the `Host` header names something other than loopback.
    HostNotAllowed(String),
    /// A mutation from a page of another origin.
    CrossOrigin(String),
    /// A mutation a browser could send from any page without a preflight.
    Forgeable,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::HostNotAllowed(_) => "host_not_allowed",
            Refusal::CrossOrigin(_) => "cross_origin",
            Refusal::Forgeable => "intent_required",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::HostNotAllowed(host) => format!(
                "local mode answers only requests addressed to a loopback host (localhost, 127.0.0.1, [::1]), \
                 not {host:?}"
            ),
            Refusal::CrossOrigin(origin) => {
                format!("a change requested by a page of another origin ({origin:?}) is refused")
            }
            Refusal::Forgeable => format!(
                "a change needs an API key header, a Content-Type other than text/plain, form or multipart \
                 (application/json or application/octet-stream, say), or an {INTENT_HEADER} header: \
                 web pages cannot send those without asking"
            ),
        }
    }
}

/// Checks a request's headers; `mutating` for POST, PUT, PATCH and DELETE.
pub fn check(mode: Mode, headers: &HeaderMap, mutating: bool) -> Result<(), Refusal> {
    let host = text(headers, header::HOST.as_str());
    if mode == Mode::Local
        && let Some(host) = host
        && !is_loopback_authority(host)
    {
        return Err(Refusal::HostNotAllowed(host.to_owned()));
    }
    if !mutating {
        return Ok(());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        let same = host.is_some_and(|host| {
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).is_some_and(|o| o == host)
        });
        if !same {
            return Err(Refusal::CrossOrigin(origin.to_owned()));
        }
    }
    if let Some(site) = text(headers, "sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(Refusal::CrossOrigin(format!("Sec-Fetch-Site: {site}")));
    }
    // In production a request without a key header is refused by authentication anyway
    // (with the more useful "needs a key"), and one with a key header is not simple.
    let keyed = headers.contains_key("x-api-key") || headers.contains_key(header::AUTHORIZATION);
    if mode == Mode::Production || keyed || headers.contains_key(INTENT_HEADER) || !is_simple_content_type(headers) {
        return Ok(());
    }
    Err(Refusal::Forgeable)
}

fn text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Whether a browser may send this `Content-Type` (or none) cross-site without a preflight.
/// Browsers compare the MIME type's essence, ignoring case and parameters.
fn is_simple_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return true };
    let Some(essence) = crate::api::mime_essence(value) else { return false };
    matches!(essence.as_str(), "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data" | "")
}

/// Whether `authority` (a `Host` value: a name or address, with an optional port) is
/// loopback.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) => inside,
            _ => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => authority,
        },
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_port(digits: &str) -> bool {
    !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn local_mode_answers_loopback_hosts_only() {
        for host in ["127.0.0.1:7700", "localhost:7700", "LOCALHOST", "[::1]:7700", "[::1]", "127.8.9.10"] {
            assert_eq!(check(Mode::Local, &headers(&[("host", host)]), false), Ok(()), "{host}");
        }
        for host in ["evil.example.com:7700", "evil.example.com", "0.0.0.0:7700", "10.0.0.1", "[::2]:1", "localhost:x"]
        {
            let refused = check(Mode::Local, &headers(&[("host", host)]), false);
            assert_eq!(refused, Err(Refusal::HostNotAllowed(host.to_owned())), "{host}");
        }
        assert_eq!(check(Mode::Production, &headers(&[("host", "vigil.example.com")]), false), Ok(()));
        assert_eq!(check(Mode::Local, &HeaderMap::new(), false), Ok(()), "no Host: not from a browser");
    }

    #[test]
    fn mutations_a_page_could_forge_are_refused() {
        let host = ("host", "127.0.0.1:7700");
        for mode in [Mode::Local, Mode::Production] {
            let forgeable = if mode == Mode::Local { Err(Refusal::Forgeable) } else { Ok(()) };
            for forged in [
                vec![host],
                vec![host, ("content-type", "text/plain;charset=UTF-8")],
                vec![host, ("content-type", "application/x-www-form-urlencoded")],
                vec![host, ("content-type", "Multipart/Form-Data; boundary=x")],
            ] {
                assert_eq!(check(mode, &headers(&forged), true), forgeable, "{mode:?} {forged:?}");
            }
            for fine in [
                vec![host, ("content-type", "application/json")],
                vec![host, ("content-type", "application/octet-stream")],
                vec![host, ("x-requested-with", "curl")],
                vec![host, ("x-api-key", "vk_x")],
                vec![host, ("authorization", "Bearer x"), ("content-type", "text/plain")],
                vec![host, ("origin", "http://127.0.0.1:7700"), ("content-type", "application/json")],
                vec![host, ("sec-fetch-site", "same-origin"), ("content-type", "application/json")],
            ] {
                assert_eq!(check(mode, &headers(&fine), true), Ok(()), "{fine:?}");
            }
            for other in ["http://evil.example.com", "null", "http://127.0.0.1:3000", "http://localhost:7700"] {
                let sent = headers(&[host, ("origin", other), ("content-type", "application/json")]);
                assert_eq!(check(mode, &sent, true), Err(Refusal::CrossOrigin(other.to_owned())), "{other}");
            }
            let same_site = headers(&[host, ("sec-fetch-site", "same-site"), ("x-api-key", "vk_x")]);
            assert!(matches!(check(mode, &same_site, true), Err(Refusal::CrossOrigin(_))));
            assert_eq!(check(mode, &headers(&[host]), false), Ok(()), "reads are not forgeable changes");
        }
    }
}
