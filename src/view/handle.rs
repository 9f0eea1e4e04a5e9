//! The handles readers hold to the agent's writers: the newest published view, the few changes
//! readers may ask for (silences from the API, reloads from the API and SIGHUP), and the one
//! read too large to publish with every snapshot (an SLO's history from its buckets). A writer
//! applies a change, or answers a read, itself, in its own order.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::notify::silence::{SilenceError, SilenceRequest};
use crate::rules::model::SloId;
use crate::slo::history::{History, HistoryError, HistoryQuery};
use crate::view::AlertingView;

/// Why a command from the API failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The silence request is invalid or names no silence.
    #[error("{0}")]
    Silence(#[from] SilenceError),
    /// The alerting task has stopped.
    #[error("alerting is shutting down")]
    Stopped,
    /// The change could not be saved to the state file, so it was undone: a change that is
    /// answered "done" must survive a crash.
    #[error("the change was not saved ({0}), so it was not made; fix data_dir and try again")]
    NotSaved(String),
}

/// A change the API asks of the alerting task, with where its answer goes.
pub(crate) enum Command {
    /// Create or update a silence; answered with its id.
    SetSilence(
        SilenceRequest,
        oneshot::Sender<Result<String, CommandError>>,
    ),
    /// Expire the silence with this id.
    ExpireSilence(String, oneshot::Sender<Result<(), CommandError>>),
}

/// The API's way in: read the view, change silences. Cheap to clone.
#[derive(Clone)]
pub struct AlertingHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) view: watch::Receiver<Arc<AlertingView>>,
}

impl AlertingHandle {
    /// The newest view.
    pub fn view(&self) -> Arc<AlertingView> {
        self.view.borrow().clone()
    }

    /// A receiver of every published view.
    pub fn subscribe(&self) -> watch::Receiver<Arc<AlertingView>> {
        self.view.clone()
    }

    /// Creates or updates a silence (Alertmanager's rules); returns its id.
    pub async fn set_silence(&self, req: SilenceRequest) -> Result<String, CommandError> {
        self.call(|tx| Command::SetSilence(req, tx)).await
    }

    /// Expires a silence now.
    pub async fn expire_silence(&self, id: String) -> Result<(), CommandError> {
        self.call(|tx| Command::ExpireSilence(id, tx)).await
    }

    /// Sends a command and waits for its answer; a task that has stopped (either way) is
    /// [`CommandError::Stopped`].
    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> Command,
    ) -> Result<T, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| CommandError::Stopped)?;
        rx.await.map_err(|_| CommandError::Stopped)?
    }
}

/// What a reload did: the rule generation in force afterwards and, when the new rules were
/// rejected (the old ones keep running), every error as `file:line:column: ...`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReloadOutcome {
    /// Whether the new rules are in force.
    pub ok: bool,
    /// The rule generation in force after the attempt.
    pub generation: u64,
    /// Why the new rules were rejected; empty on success.
    pub errors: Vec<String>,
}

/// A reload request; the sender, when given, gets the outcome.
pub(crate) type ReloadRequest = Option<tokio::sync::oneshot::Sender<ReloadOutcome>>;

/// Asks the running agent to reload its rules (SIGHUP, `POST /-/reload`). Cheap to clone.
#[derive(Clone)]
pub struct Reloader(pub(crate) mpsc::Sender<ReloadRequest>);

/// The agent has stopped, so it cannot reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the agent is shutting down")]
pub struct Stopped;

impl Reloader {
    /// Asks for a reload without waiting for it (SIGHUP).
    pub async fn request(&self) -> Result<(), Stopped> {
        self.0.send(None).await.map_err(|_| Stopped)
    }

    /// Reloads and waits for the outcome.
    pub async fn reload(&self) -> Result<ReloadOutcome, Stopped> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0.send(Some(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

/// A history request: the SLO, what is asked, and where the answer goes.
pub(crate) type HistoryRequest = (
    SloId,
    HistoryQuery,
    oneshot::Sender<Result<History, HistoryFailure>>,
);

/// Why a history was not given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryFailure {
    /// No SLO (or grouped-SLO instance) has this id.
    #[error("no SLO `{0}`")]
    UnknownSlo(SloId),
    /// The range or step cannot be read.
    #[error(transparent)]
    Query(#[from] HistoryError),
    /// The agent has stopped.
    #[error("the agent is shutting down")]
    Stopped,
}

/// Reads SLO histories from the agent's engine, which keeps the buckets (`GET
/// /api/v1/slos/{service}/{slo}/history`). The agent answers between two of its steps, so a
/// history and the snapshot of the same instant agree. Cheap to clone.
#[derive(Clone)]
pub struct HistoryHandle(pub(crate) mpsc::Sender<HistoryRequest>);

impl HistoryHandle {
    /// The history of `id` over `query`, up to the agent's now.
    pub async fn history(&self, id: SloId, query: HistoryQuery) -> Result<History, HistoryFailure> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send((id, query, tx))
            .await
            .map_err(|_| HistoryFailure::Stopped)?;
        rx.await.map_err(|_| HistoryFailure::Stopped)?
    }
}
