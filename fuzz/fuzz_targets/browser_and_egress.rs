//! What a web page or a caller controls about where a request comes from and where Vigil
//! calls on its behalf: `Host`, `Origin`, `Content-Type`, `Sec-Fetch-Site` (the local-mode
//! browser checks) and URLs judged by the egress policy. No panics; a change no page could
//! mark as intended is never let through in local mode; a URL the policy accepts never
//! names a non-public address.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use vigil_core::config::Mode;
use vigil_core::egress::{Allowed, EgressPolicy, special_range};
use vigil_server::origin;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let mut headers = HeaderMap::new();
    for name in ["host", "origin", "content-type", "sec-fetch-site"] {
        if let Some(value) = parts.next().filter(|v| !v.is_empty())
            && let Ok(value) = HeaderValue::from_bytes(value)
        {
            headers.insert(name, value);
        }
    }
    for mode in [Mode::Local, Mode::Production] {
        for mutating in [false, true] {
            let verdict = origin::check(mode, &headers, mutating);
            // No key, no intent header and no body type: only a refusal is right.
            if mode == Mode::Local && mutating && !headers.contains_key("content-type") {
                assert!(verdict.is_err(), "a bare change passed: {headers:?}");
            }
        }
    }

    let Ok(text) = std::str::from_utf8(parts.next().unwrap_or(data)) else { return };
    let _ = Allowed::parse(text);
    let strict = EgressPolicy::default();
    if let Ok(url) = strict.check_url(text) {
        assert!(matches!(url.scheme(), "http" | "https"));
        assert!(url.username().is_empty() && url.password().is_none());
        if let Some(host) = url.host() {
            let ip = match host {
                url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
                url::Host::Domain(_) => None,
            };
            assert!(ip.is_none_or(|ip| special_range(ip).is_none()), "accepted {text:?}");
        }
    }
});
