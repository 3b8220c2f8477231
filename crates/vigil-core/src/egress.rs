//! Where Vigil may send a request on a caller's behalf (an agent's control URL today): the
//! rules, free of IO, so every outbound call made for someone else passes the same checks.
//!
//! A caller with a write key registers the URL, so it is untrusted input, and a server-side
//! request to it could reach what the caller cannot: Vigil itself, the machine's loopback
//! services, a cloud metadata endpoint (`169.254.169.254`), or the private network. The rules:
//!
//! - `http` and `https` only, and no credentials in the URL (secrets belong in config files).
//! - Every address the host stands for (an IP literal, in any spelling the URL standard
//!   accepts, or each address its name resolves to) must be a public unicast address, unless
//!   [`EgressPolicy`] allows it by network (`10.0.0.0/8`, `127.0.0.1`) or the host by name.
//! - Never Vigil itself (its own listen address and port), allowed or not.
//!
//! [`EgressPolicy::check_url`] judges the URL's form (at registration, and again before each
//! call); [`EgressPolicy::check_addr`] judges each address a name resolved to, right before
//! the call, which connects to exactly the address judged. Redirects are the caller's job to
//! refuse (the executor follows none).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// One entry of `egress.allow`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Allowed {
    /// An address or network, such as `10.1.2.3` or `10.0.0.0/8`.
    Net(#[serde(serialize_with = "display")] ipnet::IpNet),
    /// A host name (lowercase), allowed whatever it resolves to.
    Host(String),
}

fn display<S: serde::Serializer>(net: &ipnet::IpNet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(net)
}

impl Allowed {
    /// Parses `10.0.0.0/8`, `10.1.2.3`, `::1`, or a host name.
    pub fn parse(text: &str) -> Result<Allowed, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(Allowed::Net(net.trunc()));
        }
        if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return Ok(Allowed::Net(ipnet::IpNet::from(ip)));
        }
        let name_ok = !text.is_empty()
            && text.len() <= 253
            && text.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
            });
        if name_ok {
            Ok(Allowed::Host(text.to_ascii_lowercase()))
        } else {
            Err(format!("{text:?} is neither an address, a network such as 10.0.0.0/8, nor a host name"))
        }
    }
}

/// Why a URL or an address may not be called.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("{0:?} is not a URL: {1}")]
    NotAUrl(String, String),
    #[error("only http:// and https:// URLs are called, not {0}://")]
    Scheme(String),
    #[error("credentials in a URL are refused (they would be sent to whoever answers); keep secrets in config files")]
    Credentials,
    #[error("the URL names no host")]
    NoHost,
    #[error("{addr} is a {range} address; add it (or its network, or the host name) to egress.allow to call it")]
    NotPublic { addr: IpAddr, range: &'static str },
    #[error("{0} is Vigil itself")]
    Itself(SocketAddr),
}

/// The rules for calls made on a caller's behalf.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EgressPolicy {
    pub allow: Vec<Allowed>,
    /// Vigil's own listen address, never called.
    #[serde(skip)]
    pub own: Option<SocketAddr>,
}

impl EgressPolicy {
    /// Checks a URL's form, and its host when that is an address. Returns the parsed URL
    /// (whose host is normalized: `http://2130706433/` names `127.0.0.1`).
    pub fn check_url(&self, text: &str) -> Result<Url, EgressError> {
        let url = Url::parse(text.trim()).map_err(|e| EgressError::NotAUrl(text.to_owned(), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::Credentials);
        }
        let port = url.port_or_known_default().unwrap_or(80);
        match url.host() {
            None => Err(EgressError::NoHost),
            Some(Host::Ipv4(ip)) => self.check_addr(None, SocketAddr::new(IpAddr::V4(ip), port)).map(|()| url),
            Some(Host::Ipv6(ip)) => self.check_addr(None, SocketAddr::new(IpAddr::V6(ip), port)).map(|()| url),
            Some(Host::Domain(_)) => Ok(url),
        }
    }

    /// Checks one address that `host` (a name, if the URL used one) stands for.
    pub fn check_addr(&self, host: Option<&str>, addr: SocketAddr) -> Result<(), EgressError> {
        if let Some(own) = self.own
            && addr.port() == own.port()
            && (addr.ip() == own.ip() || own.ip().is_unspecified() || addr.ip().is_loopback())
        {
            return Err(EgressError::Itself(addr));
        }
        let ip = canonical(addr.ip());
        let Some(range) = special_range(ip) else { return Ok(()) };
        let allowed = self.allow.iter().any(|entry| match entry {
            Allowed::Net(net) => net.contains(&ip),
            Allowed::Host(name) => host.is_some_and(|h| h.eq_ignore_ascii_case(name)),
        });
        if allowed { Ok(()) } else { Err(EgressError::NotPublic { addr: ip, range }) }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is, or `None` for a public unicast one.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        () if ip.is_unspecified() || a == 0 => "unspecified (this host)",
        () if ip.is_loopback() => "loopback",
        () if ip.is_private() => "private",
        () if ip.is_link_local() => "link-local (cloud metadata lives here)",
        () if a == 100 && (64..128).contains(&b) => "shared (carrier-grade NAT)",
        () if ip.is_multicast() => "multicast",
        () if ip.is_broadcast() => "broadcast",
        () if ip.is_documentation() => "documentation",
        () if a == 198 && (b == 18 || b == 19) => "benchmarking",
        () if a == 192 && b == 0 && c == 0 => "IETF protocol assignments",
        () if a >= 240 => "reserved",
        () => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        () if ip.is_unspecified() => "unspecified (this host)",
        () if ip.is_loopback() => "loopback",
        () if ip.is_multicast() => "multicast",
        () if first & 0xfe00 == 0xfc00 => "unique local (private)",
        () if first & 0xffc0 == 0xfe80 => "link-local",
        () if first == 0x2001 && ip.segments()[1] == 0x0db8 => "documentation",
        // NAT64 and 6to4 embed an IPv4 address, which could be any of the above.
        () if first == 0x0064 && ip.segments()[1] == 0xff9b => "NAT64 (embeds an IPv4 address)",
        () if first == 0x2002 => "6to4 (embeds an IPv4 address)",
        () => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> EgressPolicy {
        let allow = allow.iter().map(|a| Allowed::parse(a).expect("allowed entry")).collect();
        EgressPolicy { allow, own: Some("127.0.0.1:7700".parse().expect("addr")) }
    }

    #[test]
    fn private_and_special_addresses_in_any_spelling_are_refused() {
        let strict = policy(&[]);
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:9000/control",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://0.0.0.0:9/",
            "http://10.1.2.3/",
            "http://192.168.0.10/",
            "http://172.16.5.4/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::7f00:1]/",
        ] {
            assert!(matches!(strict.check_url(url), Err(EgressError::NotPublic { .. })), "{url}");
        }
        assert!(strict.check_url("https://agents.example.com/control/a").is_ok(), "names are judged when resolved");
        assert!(strict.check_url("http://93.184.216.34/control").is_ok());
    }

    #[test]
    fn schemes_credentials_and_vigil_itself_are_refused() {
        let lenient = policy(&["127.0.0.0/8", "::1"]);
        assert_eq!(lenient.check_url("ftp://93.184.216.34/x"), Err(EgressError::Scheme("ftp".into())));
        assert_eq!(lenient.check_url("file:///etc/passwd"), Err(EgressError::Scheme("file".into())));
        assert_eq!(lenient.check_url("http://user:pw@93.184.216.34/"), Err(EgressError::Credentials));
        assert_eq!(lenient.check_url("http://token@93.184.216.34/"), Err(EgressError::Credentials));
        assert!(matches!(lenient.check_url("not a url"), Err(EgressError::NotAUrl(..))));
        assert!(lenient.check_url("http://127.0.0.1:9000/control").is_ok(), "allowed by network");
        assert!(lenient.check_url("http://[::1]:9000/control").is_ok());
        for own in ["http://127.0.0.1:7700/api/v1/keys", "http://127.0.0.2:7700/", "http://[::1]:7700/"] {
            assert!(matches!(lenient.check_url(own), Err(EgressError::Itself(_))), "{own}");
        }
    }

    #[test]
    fn resolved_addresses_are_judged_and_names_can_be_allowed() {
        let named = policy(&["agents.internal"]);
        let private: SocketAddr = "10.0.0.7:80".parse().expect("addr");
        assert!(named.check_addr(Some("agents.internal"), private).is_ok());
        assert!(named.check_addr(Some("AGENTS.internal"), private).is_ok(), "names compare without case");
        assert!(named.check_addr(Some("rebound.example.com"), private).is_err(), "a name resolving inside is refused");
        assert!(named.check_addr(Some("public.example.com"), "93.184.216.34:443".parse().expect("addr")).is_ok());
    }

    #[test]
    fn allow_entries_parse_or_say_why_not() {
        assert_eq!(Allowed::parse("10.0.0.0/8"), Ok(Allowed::Net("10.0.0.0/8".parse().expect("net"))));
        assert_eq!(Allowed::parse("10.1.2.3/8"), Ok(Allowed::Net("10.0.0.0/8".parse().expect("net"))));
        assert_eq!(Allowed::parse("[::1]"), Ok(Allowed::Net("::1/128".parse().expect("net"))));
        assert_eq!(Allowed::parse("Agents.Internal"), Ok(Allowed::Host("agents.internal".into())));
        for bad in ["", "http://x", "a b", "-x.com", "10.0.0.0/33"] {
            assert!(Allowed::parse(bad).is_err(), "{bad:?}");
        }
    }
}
