//! The one shutdown signal: a [`Shutdown`] token, created once at the entry point (`burnwatch
//! run`, `burnwatch demo`, a test) and passed down to every task, which awaits
//! [`Shutdown::requested`]. Triggering it (SIGTERM, SIGINT, the demo's `--duration`, a test) is
//! the only way the daemon stops.
//!
//! The token says *that* the daemon stops; the order comes from who waits for whom, so a
//! result in flight is never lost between two stages:
//!
//! 1. **collectors stop**: each rule generation's probes and scrapes await a [`Shutdown::child`]
//!    of the token (a reload triggers only its generation's child); checks in flight get a
//!    short grace, then are aborted;
//! 2. **queued results are applied**: the evaluator, awaiting the token, joins its collectors,
//!    then applies everything still queued;
//! 3. **last evaluation**: it evaluates and publishes a last snapshot;
//! 4. **checkpoint**: it saves the engine state, then ends, which closes its snapshot channel;
//! 5. **alerting saved**: the alerting task ends when that channel closes (so it has seen the
//!    last snapshot), flushes what is due, gives delivery its grace period (delivery's own
//!    stage token, triggered by alerting after that last flush), records the outcomes and
//!    saves its state;
//! 6. **OTLP last push**: the exporter pushes the last snapshot and alerting view once more;
//! 7. **server closes**: the HTTP server stopped accepting when the token fired; open
//!    connections were told to finish and get [`crate::server::DRAIN`]; its task is awaited
//!    last.
//!
//! [`crate::daemon::Daemon::shutdown`] runs and awaits stages 1 to 7 in this order.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::watch;

/// A cloneable "stop now" signal. Clones share the signal; a [`child`](Shutdown::child) fires
/// with its parent, or on its own. Triggering is idempotent and never blocks.
#[derive(Clone)]
pub struct Shutdown(Arc<Node>);

struct Node {
    fired: watch::Sender<bool>,
    /// Children still alive; they fire when this one does.
    children: Mutex<Vec<Weak<Node>>>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A new, untriggered token.
    pub fn new() -> Shutdown {
        Shutdown(Arc::new(Node {
            fired: watch::Sender::new(false),
            children: Mutex::new(Vec::new()),
        }))
    }

    /// A token that fires when this one does, and can also be triggered alone (a rule
    /// generation's collectors stop on a reload without stopping the daemon).
    pub fn child(&self) -> Shutdown {
        let child = Shutdown::new();
        let mut kids = self
            .0
            .children
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Under the lock: a trigger either sees this child or fired before the check below.
        if self.is_triggered() {
            child.trigger();
        } else {
            kids.retain(|k| k.strong_count() > 0);
            kids.push(Arc::downgrade(&child.0));
        }
        child
    }

    /// Fires the signal (and every child's). Idempotent.
    pub fn trigger(&self) {
        self.0.fired.send_replace(true);
        let kids = std::mem::take(
            &mut *self
                .0
                .children
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for kid in kids.iter().filter_map(Weak::upgrade) {
            Shutdown(kid).trigger();
        }
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.0.fired.borrow()
    }

    /// Resolves once the signal has fired (at once if it already has). The future owns what
    /// it needs, so it can be handed to a spawned task.
    pub fn requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut fired = self.0.fired.subscribe();
        async move {
            // The sender lives in `self`'s node, which the future does not keep: when every
            // token is gone nobody can trigger any more, and that counts as fired too.
            let _ = fired.wait_for(|f| *f).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trigger_reaches_every_clone_and_child_once_or_many_times() {
        let root = Shutdown::new();
        let clone = root.clone();
        let child = root.child();
        let grandchild = child.child();
        let waiting = tokio::spawn(grandchild.requested());
        assert!(!clone.is_triggered() && !grandchild.is_triggered());
        clone.trigger();
        clone.trigger();
        assert!(root.is_triggered() && child.is_triggered() && grandchild.is_triggered());
        waiting.await.expect("the grandchild's wait ends");
        root.requested().await;
        // A child made after the trigger is born triggered.
        assert!(root.child().is_triggered());
    }

    #[tokio::test]
    async fn a_child_fires_alone_without_its_parent() {
        let root = Shutdown::new();
        let first = root.child();
        let second = root.child();
        first.trigger();
        first.requested().await;
        assert!(!root.is_triggered() && !second.is_triggered());
        // Dropped children are forgotten, not kept until the parent fires.
        drop(first);
        let _third = root.child();
        let kids = root.0.children.lock().expect("lock").len();
        assert_eq!(kids, 2);
    }

    #[tokio::test]
    async fn with_every_token_gone_a_wait_ends() {
        let t = Shutdown::new();
        let wait = t.requested();
        drop(t);
        wait.await;
    }
}
