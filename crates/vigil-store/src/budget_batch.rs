//! Admissions and settlements written together: one thread takes every budget write that
//! is waiting and commits them in one transaction (group commit).
//!
//! At thousands of metered calls a second, a transaction per admission spent most of a
//! call's CPU in commits and WAL pages (measured in BENCHMARKS.md). Here the writes that
//! arrive while a commit is running wait for the next one, so a busy gateway pays one
//! commit for many calls and an idle one still commits each at once. Each write keeps its
//! own meaning: they are applied one after another inside the transaction, each within a
//! savepoint, so an admission sees every earlier one of its batch and one that fails
//! (an id admitted twice) changes nothing and fails alone. A batch whose commit fails
//! fails every write in it, and callers treat that as any store failure (hard budgets
//! refuse).

use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::budgets::{Admission, NewReservation, Settled, Settlement, admit_in, settle_in};
use crate::{Result, Store, StoreError};

/// Writes committed together, at most.
pub const BATCH_MAX: usize = 512;

enum Work {
    Admit(NewReservation, oneshot::Sender<Result<Admission>>),
    Settle(Vec<Settlement>, oneshot::Sender<Result<Vec<Settled>>>),
}

/// The budget writes of one store, batched on a thread of their own; reads go to the store.
/// Cheap to clone; the thread ends when every clone is dropped, after the writes sent.
#[derive(Clone, Debug)]
pub struct BatchedBudgets {
    pub(crate) store: Store,
    work: mpsc::Sender<Work>,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::Admit(new, _) => f.debug_tuple("Admit").field(&new.id).finish(),
            Work::Settle(list, _) => f.debug_tuple("Settle").field(&list.len()).finish(),
        }
    }
}

impl BatchedBudgets {
    /// Starts the writer thread (`vigil-budgets`) for `store`.
    pub fn start(store: Store) -> std::io::Result<BatchedBudgets> {
        let (work, queue) = mpsc::channel::<Work>();
        let writer = store.clone();
        std::thread::Builder::new().name("vigil-budgets".to_owned()).spawn(move || {
            while let Ok(first) = queue.recv() {
                let mut batch = vec![first];
                while batch.len() < BATCH_MAX {
                    match queue.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                write(&writer, batch);
            }
        })?;
        Ok(BatchedBudgets { store, work })
    }

    pub(crate) async fn admit(&self, new: NewReservation) -> Result<Admission> {
        let (reply, answer) = oneshot::channel();
        self.send(Work::Admit(new, reply))?;
        answer.await.map_err(|_| gone())?
    }

    pub(crate) async fn settle(&self, settlements: Vec<Settlement>) -> Result<Vec<Settled>> {
        let (reply, answer) = oneshot::channel();
        self.send(Work::Settle(settlements, reply))?;
        answer.await.map_err(|_| gone())?
    }

    fn send(&self, work: Work) -> Result<()> {
        self.work.send(work).map_err(|_| gone())
    }
}

fn gone() -> StoreError {
    StoreError::Io {
        context: "the budget writer thread".to_owned(),
        source: std::io::Error::other("it is not running"),
    }
}

/// One write's result inside the transaction, handed back once it commits.
enum Outcome {
    Admitted(Result<Admission>),
    Settled(Result<Vec<Settled>>),
}

/// Applies `batch` in one transaction, each write in a savepoint, and answers each.
fn write(store: &Store, batch: Vec<Work>) {
    let committed = store.write(|tx| {
        let mut outcomes = Vec::with_capacity(batch.len());
        for work in &batch {
            tx.execute_batch("SAVEPOINT budget_write")?;
            let outcome = match work {
                Work::Admit(new, _) => Outcome::Admitted(admit_in(tx, new)),
                Work::Settle(list, _) => Outcome::Settled(list.iter().map(|s| settle_in(tx, s)).collect()),
            };
            let failed = matches!(&outcome, Outcome::Admitted(Err(_)) | Outcome::Settled(Err(_)));
            if failed {
                tx.execute_batch("ROLLBACK TO budget_write")?;
            }
            tx.execute_batch("RELEASE budget_write")?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    });
    match committed {
        Ok(outcomes) => {
            for (work, outcome) in batch.into_iter().zip(outcomes) {
                match (work, outcome) {
                    (Work::Admit(_, reply), Outcome::Admitted(result)) => {
                        let _ = reply.send(result);
                    }
                    (Work::Settle(_, reply), Outcome::Settled(result)) => {
                        let _ = reply.send(result);
                    }
                    _ => unreachable!("outcomes follow the batch, one each, in order"),
                }
            }
        }
        Err(e) => {
            // Every write of the batch is lost with the transaction: each caller is told.
            let reason = e.to_string();
            for work in batch {
                let failed = || StoreError::Io {
                    context: "a batch of budget writes".to_owned(),
                    source: std::io::Error::other(reason.clone()),
                };
                match work {
                    Work::Admit(_, reply) => {
                        let _ = reply.send(Err(failed()));
                    }
                    Work::Settle(_, reply) => {
                        let _ = reply.send(Err(failed()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budgets::BudgetScope;
    use crate::temp_store as store;
    use vigil_core::id::{ReservationId, TenantId};
    use vigil_core::time::Timestamp;

    fn reservation(id: &ReservationId, amount: i64) -> NewReservation {
        let now = Timestamp::now();
        NewReservation {
            id: id.clone(),
            tenant_id: TenantId::default_tenant(),
            at: now,
            lease_until: now.plus_micros(60_000_000),
            amount_nanos: amount,
            input_nanos: 0,
            scopes: vec![BudgetScope {
                budget: "org".into(),
                subject: "*".into(),
                since: now.plus_micros(-1),
                limit_nanos: 250,
                hard: true,
            }],
            summary: serde_json::json!({}),
        }
    }

    /// Writes of one batch see each other in order, and one that fails changes nothing and
    /// fails alone.
    #[tokio::test]
    async fn one_batch_applies_its_writes_in_order_and_a_failure_stays_its_own() {
        let (_dir, store) = store();
        let (a, b, c) = (ReservationId::mint(), ReservationId::mint(), ReservationId::mint());
        let mut answers = Vec::new();
        let mut batch = Vec::new();
        for (id, amount) in [(&a, 100), (&a, 100), (&b, 100), (&c, 100)] {
            let (reply, answer) = oneshot::channel();
            batch.push(Work::Admit(reservation(id, amount), reply));
            answers.push(answer);
        }
        write(&store, batch);
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.expect("answered"));
        }
        assert!(matches!(results[0], Ok(Admission::Admitted)));
        assert!(matches!(results[1], Err(StoreError::Conflict(_))), "{:?}", results[1]);
        assert!(matches!(results[2], Ok(Admission::Admitted)), "the failure held nothing");
        assert!(matches!(results[3], Ok(Admission::Refused(_))), "the third 100 does not fit 250");
        assert_eq!(store.held_reservations().expect("held"), 2);
        assert!(store.verify_ledger().expect("verify").intact());
    }
}
