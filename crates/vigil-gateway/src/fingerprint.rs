//! Who is calling: an agent id and a client family, from headers alone.
//!
//! Identity, in order of preference: the `X-Agent-ID` header (when it is a sane token), a
//! hash of the client's API key (stable across restarts and IPs, never the key itself),
//! else the client IP plus a hash of its User-Agent.

use std::net::IpAddr;

use vigil_core::digest::Sha256Digest;
use vigil_core::id::AgentId;

pub const AGENT_ID_LEN_MAX: usize = 128;

/// The agent id for a call.
pub fn agent_id(header: Option<&str>, client_key: Option<&str>, ip: IpAddr, user_agent: Option<&str>) -> AgentId {
    if let Some(id) = header.map(str::trim).filter(|id| {
        !id.is_empty()
            && id.len() <= AGENT_ID_LEN_MAX
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
    }) {
        return AgentId::new(id);
    }
    if let Some(key) = client_key.filter(|k| !k.is_empty()) {
        return AgentId::new(format!("key-{}", &Sha256Digest::of(key.as_bytes()).to_hex()[..16]));
    }
    let ua = Sha256Digest::of(user_agent.unwrap_or("").as_bytes()).to_hex();
    AgentId::new(format!("ip-{ip}-{}", &ua[..8]))
}

/// The client family, from the User-Agent.
pub fn agent_type(user_agent: Option<&str>) -> &'static str {
    let ua = user_agent.unwrap_or("").to_ascii_lowercase();
    const FAMILIES: &[(&str, &str)] = &[
        ("langchain", "langchain"),
        ("llamaindex", "llamaindex"),
        ("openai/python", "openai-python"),
        ("openai/js", "openai-node"),
        ("anthropic/python", "anthropic-python"),
        ("anthropic/js", "anthropic-node"),
        ("litellm", "litellm"),
        ("curl/", "curl"),
        ("python-requests", "python-requests"),
        ("python-httpx", "python-httpx"),
    ];
    FAMILIES.iter().find(|(needle, _)| ua.contains(needle)).map_or("unknown", |(_, family)| family)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn precedence() {
        assert_eq!(agent_id(Some("billing-bot"), Some("sk-1"), IP, None), "billing-bot");
        let by_key = agent_id(Some("bad id\n"), Some("sk-1"), IP, None);
        assert!(by_key.starts_with("key-") && !by_key.contains("sk-1"));
        assert_eq!(by_key, agent_id(None, Some("sk-1"), "10.0.0.9".parse().expect("ip"), Some("x")));
        assert!(agent_id(None, None, IP, Some("curl/8")).starts_with("ip-127.0.0.1-"));
    }

    #[test]
    fn families() {
        assert_eq!(agent_type(Some("OpenAI/Python 1.99.1")), "openai-python");
        assert_eq!(agent_type(Some("langchain-openai/0.3 OpenAI/Python 1.0")), "langchain");
        assert_eq!(agent_type(Some("Anthropic/Python 0.60.0")), "anthropic-python");
        assert_eq!(agent_type(None), "unknown");
    }
}
