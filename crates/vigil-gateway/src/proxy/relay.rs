//! Relaying a streamed answer event by event while reading what the call cost, and the
//! vital of a call once its answer is read.

use std::future::Future;

use tokio::sync::watch;
use vigil_services::governance::{Domain, PolicyGuard, Subject};

use super::*;

/// Fills usage, tools and cost from what was read. Usage the provider did not report is
/// estimated and flagged, never left at zero.
pub(super) fn finish_vital(
    vital: &mut Vital,
    answer: &Answer,
    prompt_chars: usize,
    complete: bool,
    prices: &PriceTable,
) {
    vital.model_served = answer.model_served.clone();
    vital.tool_names = answer.tool_names();
    vital.tool_calls = u32::try_from(vital.tool_names.len()).unwrap_or(u32::MAX);
    let usage: Usage = match answer.usage {
        Some(usage) => usage,
        None => estimate_usage(prompt_chars, answer.output_chars),
    };
    if !complete && answer.usage.is_none() {
        vital.error_class.get_or_insert_with(|| "interrupted".to_owned());
    }
    vital.usage = Some(usage);
    prices.price(vital);
}

/// What a streamed call has measured so far. Recorded exactly once: when the stream ends,
/// breaks, or is dropped because the client went away.
pub(super) struct StreamRecord {
    pub(super) vital: Vital,
    pub(super) answer: Answer,
    pub(super) started: Instant,
    pub(super) prompt_chars: usize,
    pub(super) recorder: Recorder,
    pub(super) prices: Arc<PriceTable>,
    /// The call's budget reservation, settled with what the call cost.
    pub(super) hold: Option<Hold>,
}

impl StreamRecord {
    fn finish(mut self, outcome: CallOutcome) {
        self.vital.outcome = outcome;
        self.vital.latency_us = elapsed_us(self.started);
        finish_vital(&mut self.vital, &self.answer, self.prompt_chars, outcome == CallOutcome::Ok, &self.prices);
        if let Some(hold) = self.hold {
            // Usage that never arrived was estimated from what was relayed: charged as such.
            let note = match outcome {
                CallOutcome::Ok => "ok",
                CallOutcome::Cancelled => "client_gone",
                _ => "interrupted",
            };
            hold.settle(settled_cost(&self.vital), note);
        }
        self.recorder.record(self.vital);
    }
}

type UpstreamStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

type Changed = Pin<Box<dyn Future<Output = Option<watch::Receiver<u32>>> + Send>>;

/// Waits for the next change of the policy in force, handing the receiver back.
fn next_change(mut changes: watch::Receiver<u32>) -> Changed {
    Box::pin(async move { changes.changed().await.ok().map(|()| changes) })
}

/// What a streamed call needs to be cut when a kill switch that stops it comes on: the
/// policy in force, the call's facts, and a wait for the next change.
pub(super) struct Cut {
    guard: Arc<PolicyGuard>,
    facts: OwnedFacts,
    changed: Changed,
}

/// A call's facts, owned for as long as its stream lasts.
pub(super) struct OwnedFacts {
    pub(super) model: String,
    pub(super) agent: String,
    pub(super) key: Option<String>,
    pub(super) feature: Option<String>,
    pub(super) user: Option<String>,
    pub(super) endpoint: &'static str,
}

impl Cut {
    pub(super) fn new(guard: Arc<PolicyGuard>, facts: OwnedFacts) -> Cut {
        // The first poll judges the call by the policy in force now: a switch turned on
        // while the provider was still answering is in force already, not a change to come.
        let changes = guard.watch();
        let changed: Changed = Box::pin(async move { Some(changes) });
        Cut { guard, facts, changed }
    }

    /// Ready with the refusal once a change of policy stops this call; pending otherwise.
    fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<Option<Refusal>> {
        loop {
            let Poll::Ready(changed) = self.changed.as_mut().poll(cx) else { return Poll::Pending };
            let Some(changes) = changed else { return Poll::Ready(None) };
            let f = &self.facts;
            let subject = Subject {
                model: Some(&f.model),
                agent: Some(&f.agent),
                key: f.key.as_deref(),
                feature: f.feature.as_deref(),
                user: f.user.as_deref(),
                endpoint: Some(f.endpoint),
            };
            if let Some(refusal) = self.guard.switched_off(Domain::ModelCalls, &subject) {
                return Poll::Ready(Some(refusal));
            }
            self.changed = next_change(changes);
        }
    }
}

/// Relays an upstream SSE stream event by event, reading each on the way.
pub(super) struct Relay {
    pub(super) upstream: UpstreamStream,
    pub(super) scanner: Scanner,
    pub(super) pending: VecDeque<Bytes>,
    pub(super) strip_usage: bool,
    pub(super) dialect: Dialect,
    pub(super) done: bool,
    /// The upstream ended without finishing its answer; after the pending events, the
    /// client's stream is aborted.
    pub(super) truncated: bool,
    pub(super) record: Option<StreamRecord>,
    /// Cuts the stream when a kill switch that stops it comes on.
    pub(super) cut: Option<Cut>,
}

impl Relay {
    /// Ends the stream with an error event in the dialect's shape, which SDKs raise as an
    /// error, because a kill switch now stops the call.
    fn cut_off(&mut self, refusal: &Refusal) {
        let event = match self.dialect {
            Dialect::Anthropic => {
                let body =
                    json!({ "type": "error", "error": { "type": "permission_error", "message": refusal.reason } });
                format!("event: error\ndata: {body}\n\n")
            }
            Dialect::OpenAi | Dialect::OpenAiResponses => {
                let body = json!({ "error": { "message": refusal.reason, "type": "permission_error", "param": null, "code": refusal.code } });
                format!("data: {body}\n\n")
            }
        };
        self.pending.push_back(Bytes::from(event));
        if let Some(record) = self.record.as_mut() {
            record.vital.error_class = Some(format!("policy:{}", refusal.code));
        }
        self.end(CallOutcome::Interrupted);
    }

    fn take_event(&mut self, event: crate::sse::Event) {
        let Some(record) = self.record.as_mut() else { return };
        let Some(data) = event.data.as_deref() else {
            self.pending.push_back(event.raw);
            return;
        };
        if data.trim() == "[DONE]" {
            record.answer.finished = true;
            self.pending.push_back(event.raw);
            return;
        }
        let Ok(mut chunk) = serde_json::from_str::<Value>(data) else {
            self.pending.push_back(event.raw);
            return;
        };
        if self.dialect != Dialect::OpenAi {
            let kind = chunk.get("type").and_then(Value::as_str);
            let content = matches!(kind, Some("content_block_delta" | "response.output_text.delta"));
            if content && record.vital.ttft_us.is_none() {
                record.vital.ttft_us = Some(elapsed_us(record.started));
            }
            match self.dialect {
                Dialect::Anthropic => crate::anthropic::add_event(&mut record.answer, &chunk),
                _ => crate::responses::add_event(&mut record.answer, &chunk),
            }
            self.pending.push_back(event.raw);
            return;
        }
        let has_choices = chunk.get("choices").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
        if has_choices && record.vital.ttft_us.is_none() {
            record.vital.ttft_us = Some(elapsed_us(record.started));
        }
        record.answer.add_chunk(&chunk);
        let has_usage = chunk.get("usage").is_some_and(|u| !u.is_null());
        if self.strip_usage && has_usage {
            if !has_choices {
                return; // the usage-only chunk the client did not ask for
            }
            if let Some(object) = chunk.as_object_mut() {
                object.remove("usage");
            }
            self.pending.push_back(Bytes::from(format!("data: {chunk}\n\n")));
            return;
        }
        self.pending.push_back(event.raw);
    }

    fn end(&mut self, outcome: CallOutcome) {
        self.done = true;
        // Closing the upstream connection now stops the provider's work at once, even while
        // the client is still reading what is pending.
        self.upstream = Box::pin(futures_util::stream::empty());
        if let Some(record) = self.record.take() {
            record.finish(outcome);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Dropped before the end: the client went away. Dropping `upstream` closes the
        // upstream connection, which cancels the provider's work.
        if let Some(record) = self.record.take() {
            record.finish(CallOutcome::Cancelled);
        }
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(bytes) = self.pending.pop_front() {
                if bytes.is_empty() && self.truncated {
                    let message = "the provider's stream ended before the answer was complete";
                    return Poll::Ready(Some(Err(std::io::Error::other(message))));
                }
                return Poll::Ready(Some(Ok(bytes)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            if let Some(cut) = self.cut.as_mut() {
                match cut.poll_stopped(cx) {
                    Poll::Ready(Some(refusal)) => {
                        self.cut = None;
                        self.cut_off(&refusal);
                        continue;
                    }
                    // The policy can no longer change (shutting down): nothing to watch.
                    Poll::Ready(None) => self.cut = None,
                    Poll::Pending => {}
                }
            }
            match self.upstream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => match self.scanner.push(&chunk) {
                    Ok(events) => events.into_iter().for_each(|e| self.take_event(e)),
                    Err(e) => {
                        self.end(CallOutcome::Interrupted);
                        return Poll::Ready(Some(Err(std::io::Error::other(e))));
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    let reason = without_url(&e);
                    tracing::warn!(error = %reason, "upstream stream broke off");
                    if let Some(record) = self.record.as_mut() {
                        record.vital.error_class = Some("interrupted".to_owned());
                    }
                    self.end(CallOutcome::Interrupted);
                    // Abort the client's stream too, so it cannot take a truncated answer
                    // for a complete one.
                    return Poll::Ready(Some(Err(std::io::Error::other(reason))));
                }
                Poll::Ready(None) => {
                    if let Some(event) = self.scanner.finish() {
                        self.take_event(event);
                    }
                    let complete = self.record.as_ref().is_some_and(|r| r.answer.finished);
                    self.end(if complete { CallOutcome::Ok } else { CallOutcome::Interrupted });
                    if !complete {
                        // Relay what came, then abort: the client must see the truncation.
                        self.pending.push_back(Bytes::new());
                        self.truncated = true;
                    }
                }
            }
        }
    }
}
