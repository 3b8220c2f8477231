//! The HTTP client behind [`vigil_services::outbound::ControlSender`]: it connects to the
//! address the services judged (pinned, no second lookup), through no proxy, follows no
//! redirect, and gives up at the timeout.

use vigil_services::outbound::{BoxFuture, ControlSender, Post, SendError};

/// Sends control requests with reqwest, one client per request (they are rare, and each
/// pins its own address).
#[derive(Debug, Default)]
pub struct ReqwestSender;

impl ControlSender for ReqwestSender {
    fn post_json<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<u16, SendError>> {
        Box::pin(async move {
            let mut builder =
                reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().timeout(post.timeout);
            if let Some((name, addr)) = post.pinned {
                builder = builder.resolve(name, addr);
            }
            let client = builder.build().map_err(|e| SendError::Failed(format!("cannot build an HTTP client: {e}")))?;
            let sent = client
                .post(post.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(post.body)
                .send()
                .await;
            match sent {
                Ok(response) => Ok(response.status().as_u16()),
                Err(e) if e.is_timeout() => Err(SendError::Timeout(post.timeout)),
                Err(e) => Err(SendError::Failed(e.to_string())),
            }
        })
    }
}
