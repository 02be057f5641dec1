//! `gatelake demo`: where its API listens, so that an interrupted demo run resumes when the
//! same command is run again, as the interruption message says.
//!
//! The demo API picks a free port each time, and a run's checkpoint holds the request after
//! its last committed chunk, on the port the API had then. So before starting the API, the
//! demo reads the destination's checkpoint: an unfinished demo run that pulled the same data
//! (`--records`, `--page-size`) gets its API back on its old port and is resumed like any
//! other run. Only when that cannot be done (the port is taken, the data differs) is the run
//! started afresh, and the user is told why before the pipeline discards the old files.

use gatelake::demo::{resumable_port, DemoApi};
use gatelake::engine::Engine;
use gatelake::state::checkpoint::{Checkpoint, RunStatus};

/// The demo API to pull from, and whether the pull must discard an unfinished run.
pub struct DemoSource {
    pub api: DemoApi,
    pub restart: bool,
}

/// Start the demo API for a pull into `dest`: on the port of an interrupted demo run of the
/// same data when there is one (to resume it), else on a free port.
pub async fn start_api(
    records: u64,
    page_size: u64,
    dest: &str,
    restart: bool,
) -> std::io::Result<DemoSource> {
    let fresh = |restart| async move {
        Ok(DemoSource {
            api: DemoApi::start(records, page_size).await?,
            restart,
        })
    };
    if restart {
        return fresh(true).await;
    }
    let Some(cp) = unfinished_run(dest).await else {
        return fresh(false).await;
    };
    let Some(port) = resumable_port(&cp.source_url, records, page_size) else {
        eprintln!(
            "gatelake demo: the unfinished run {} pulled other data ({}), not --records {records} --page-size {page_size}; starting a new run (the unfinished run's files are removed)",
            cp.run_id, cp.source_url
        );
        return fresh(true).await;
    };
    match DemoApi::start_on(port, records, page_size).await {
        Ok(api) => Ok(DemoSource {
            api,
            restart: false,
        }),
        Err(e) => {
            eprintln!(
                "gatelake demo: the unfinished run {} cannot be resumed: its demo API's port {port} is not free ({e}); starting a new run (the unfinished run's files are removed)",
                cp.run_id
            );
            fresh(true).await
        }
    }
}

/// The unfinished run in a local destination, if any. A storage account is not looked at:
/// opening one needs the identity settings of a pull, and the demo writes to a local folder
/// unless told otherwise (a pull there then resumes or stops as any pull does).
async fn unfinished_run(dest: &str) -> Option<Checkpoint> {
    if gatelake::sink::azure::is_azure_destination(dest) {
        return None;
    }
    // The demo's own settings (none): a local folder needs no identity.
    let engine = Engine::default();
    let sink = engine.sink(dest, None).ok()?;
    let cp = engine.checkpoint_store(sink).load().await.ok()??;
    (cp.status == RunStatus::Running).then_some(cp)
}

/// What the demo says about its `load.sql` when the run is in a local folder.
pub const LOCAL_LOAD_SQL_NOTE: &str = "load.sql is illustrative only: Synapse cannot read a local folder. Copy the run to ADLS Gen2 and run `gatelake sql --dest abfss://…` for a script to run there";
