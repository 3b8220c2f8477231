//! Carrying out healing actions: in the gateway for what it enforces, at the agent's control
//! URL (judged by the egress policy) for resets.

use super::*;

/// A URL without what may be a credential: user info, query and fragment.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() { format!("{host}/{path}") } else { format!("{scheme}://{host}/{path}") }
}

/// Runs healing actions.
#[derive(Clone, Debug)]
pub struct Executor {
    /// Where agents' control URLs are kept.
    pub(super) log: Arc<dyn ImmuneLog>,
    pub(super) guard: Arc<ImmuneGuard>,
    pub(super) config: ImmuneConfig,
    /// Where control URLs may point.
    pub(super) egress: EgressPolicy,
    /// Sends to control URLs (an HTTP client outside this layer).
    pub(super) sender: Arc<dyn ControlSender>,
}

/// What an agent's control URL receives.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ControlRequest<'a> {
    pub action_id: &'a str,
    pub agent_id: &'a AgentId,
    pub incident_id: &'a IncidentId,
    pub action: Action,
    pub diagnosis: Diagnosis,
}

impl Executor {
    /// Carries out `action`; `(ok, detail)`.
    pub async fn run(&self, request: ControlRequest<'_>) -> (bool, String) {
        let c = &self.config;
        match request.action {
            Action::Throttle => {
                let per_minute = c.throttle_calls_per_minute.get();
                self.guard.throttle(request.agent_id, per_minute, c.restriction);
                (true, format!("gateway: throttled to {per_minute} calls per minute for {} s", c.restriction.as_secs()))
            }
            Action::RevokeTools => {
                self.guard.revoke_tools(request.agent_id, c.restriction);
                (true, format!("gateway: calls offering tools refused for {} s", c.restriction.as_secs()))
            }
            Action::Quarantine => {
                tokio::time::sleep(c.quarantine_cooldown).await;
                (true, format!("gateway: held in quarantine for {} ms", c.quarantine_cooldown.as_millis()))
            }
            Action::ResetMemory | Action::SwitchModel | Action::ResetAgent => self.control(&request).await,
        }
    }

    /// Sends the action to the agent's control URL.
    async fn control(&self, request: &ControlRequest<'_>) -> (bool, String) {
        let url = match self.log.control_url(request.agent_id.clone()).await {
            Ok(Some(control)) => control.url,
            Ok(None) => {
                return (
                    false,
                    format!(
                        "no executor can {} agent {:?}: it has no control URL (PUT /api/v1/immune/agents/{{id}}/control)",
                        request.action.as_str(),
                        request.agent_id
                    ),
                );
            }
            Err(e) => return (false, format!("could not read the control URL: {e}")),
        };
        // Details land in incident timelines anyone with a read key sees: no credentials.
        let shown = redact_url(&url);
        let pinned = match outbound::judge(&self.egress, &url).await {
            Ok(pinned) => pinned,
            Err(why) => return (false, format!("control URL {shown} refused: {why}")),
        };
        let body = match serde_json::to_vec(request) {
            Ok(body) => body,
            Err(e) => return (false, format!("could not encode the request for {shown}: {e}")),
        };
        let post = Post {
            url: &url,
            pinned: pinned.as_ref().map(|(name, addr)| (name.as_str(), *addr)),
            body,
            timeout: self.config.control_timeout,
        };
        match self.sender.post_json(post).await {
            Ok(status) if (200..300).contains(&status) => (true, format!("control URL {shown} answered {status}")),
            Ok(status) => (false, format!("control URL {shown} answered {status}")),
            Err(e) => (false, format!("control URL {shown}: {e}")),
        }
    }
}
