//! The `--land as-is` arm of an object run: every planned object not landed yet, several at
//! once (their parts share the lander's permits, `objects::land`), each recorded in the
//! checkpoint as it lands; an expired presigned URL has the source list its objects once
//! more.

use super::object_job::ObjectRunError;
use super::object_plan::{reference_of, relist, Live};
use super::object_progress::SharedCheckpoint;
use crate::objects::land::{AsIsLander, LandError, LandJob};
use crate::objects::source::ObjectSource;
use crate::objects::ObjectError;
use crate::pipeline::StopSignal;
use crate::report::{Event, Reporter};
use crate::sink::join_path;
use crate::state::objects::PlannedObject;
use futures::stream::{self, StreamExt};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Land every planned object not landed yet, `concurrency` objects at once (their parts
/// share the lander's permits). A stop lets the objects in flight finish.
#[allow(clippy::too_many_arguments)]
pub(super) async fn land_as_is(
    lander: &AsIsLander,
    source: &dyn ObjectSource,
    shared: &Arc<SharedCheckpoint>,
    live: Live,
    run_id: &str,
    concurrency: usize,
    reporter: Arc<dyn Reporter>,
    stop: StopSignal,
) -> Result<(), ObjectRunError> {
    let todo: Vec<PlannedObject> = shared.unlanded();
    // The URLs may be re-listed once (an expiry): every object then reads the new ones.
    let live = Arc::new(Mutex::new((live, false)));
    let results = stream::iter(todo)
        .map(|planned| {
            let (live, reporter, stop) = (live.clone(), reporter.clone(), stop.clone());
            async move {
                if stop.is_stopped() {
                    return Ok(false);
                }
                let entry = land_one(lander, source, shared, &live, &planned, run_id).await?;
                reporter.report(Event::ObjectLanded {
                    name: entry.name.clone(),
                    url: entry.url.clone(),
                    bytes: entry.size,
                });
                shared.landed(entry).await?;
                Ok::<_, ObjectRunError>(true)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    // What landed is saved whatever happened next, so a rerun lands less again.
    let flushed = shared.flush().await;
    let mut stopped = false;
    for r in results {
        stopped |= !r?;
    }
    flushed?;
    if stopped {
        let p = shared.progress();
        return Err(ObjectRunError::Interrupted {
            run_id: run_id.to_string(),
            landed: p.landed.len() as u64,
            planned: p.planned.map_or(0, |v| v.len() as u64),
        });
    }
    Ok(())
}

/// Land one object; an expired presigned URL has the source list its objects once more.
async fn land_one(
    lander: &AsIsLander,
    source: &dyn ObjectSource,
    shared: &Arc<SharedCheckpoint>,
    live: &Mutex<(Live, bool)>,
    planned: &PlannedObject,
    run_id: &str,
) -> Result<crate::state::objects::ManifestObject, ObjectRunError> {
    let path = join_path(&[run_id, &planned.name]);
    let mut retried = false;
    loop {
        let reference = {
            let guard = live.lock().await;
            reference_of(planned, &guard.0, run_id)?
        };
        let resume = shared.staging_of(&planned.name);
        let job = LandJob {
            object: &reference,
            path: path.clone(),
            run_id,
            resume: resume.as_ref(),
            ledger: shared.clone(),
        };
        match lander.land(job).await {
            Ok(entry) => return Ok(entry),
            Err(LandError::Object(ObjectError::Expired { .. })) if !retried => {
                retried = true;
                let mut guard = live.lock().await;
                if !guard.1 {
                    // Once per run: a second expiry is the source's problem to fix.
                    guard.1 = true;
                    guard.0 = relist(source, shared, &crate::report::SilentReporter).await?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}
