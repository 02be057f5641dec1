//! Stopping a pull from outside (Ctrl-C, SIGTERM): the fetch stage checks the signal at every
//! page boundary, and a stopped run keeps its checkpoint.

use tokio::sync::watch;

/// Asks a running pull to stop at the next page boundary (Ctrl-C, SIGTERM). Cheap to clone.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

/// The sending side of a [`StopSignal`].
#[derive(Debug)]
pub struct StopHandle(watch::Sender<bool>);

impl StopSignal {
    pub fn new() -> (StopHandle, StopSignal) {
        let (tx, rx) = watch::channel(false);
        (StopHandle(tx), StopSignal(rx))
    }

    /// A signal that never fires.
    pub fn never() -> StopSignal {
        let (tx, rx) = watch::channel(false);
        // Keeping the sender alive would be a leak per call; a dropped sender with `false`
        // simply never reads as stopped.
        drop(tx);
        StopSignal(rx)
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop is asked for (never, if the sender is gone without asking).
    pub async fn stopped(&mut self) {
        if self.0.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}
