//! The fetch stage: walk the listing from the resume point, page by page, with up to
//! `--concurrency` predicted requests in flight (or, for cursor and link styles, the next
//! request read ahead from the page's pointer); locate each page's records and its next
//! request; set bad pages aside under `--on-bad-page skip`; hand pages on in order.

use super::error::PullError;
use super::lineage::page_line;
use super::listing::FetchEnd;
use super::messages::PageMsg;
use super::stop::StopSignal;
use crate::config::{BadPagePolicy, SourceConfig};
use crate::report::{Event, Reporter};
use crate::secret::redact_url;
use crate::source::client::{ApiClient, FetchedPage, SourceError};
use crate::source::extract::{ExtractError, ExtractedPage, JsonDoc};
use crate::source::paginate::{
    guess, next_after_bad_page, next_request, Blind, PageView, PaginateError, Paginator,
};
use crate::source::request::PageRequest;
use crate::source::trace::AttemptTrace;
use crate::state::checkpoint::ListingNotes;
use crate::state::entries::RejectedPage;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;
use url::Url;

/// The largest page body parsed on the runtime's own worker (about a millisecond or two of
/// parsing, which holds up none of the pull's other tasks for long); see `fetch_stage`.
const INLINE_PARSE_MAX: u64 = 1 << 20;

/// What the fetch stage works from.
pub(super) struct FetchInput {
    pub(super) source: SourceConfig,
    pub(super) client: ApiClient,
    pub(super) reporter: Arc<dyn Reporter>,
    /// Where pages go, in order (the encoder).
    pub(super) pages: mpsc::Sender<PageMsg>,
    /// The first request to make; `None`: the listing already ended.
    pub(super) start: Option<Url>,
    /// What committed chunks already hold: a resumed run counts on from there, so a
    /// `--total-path` rule still compares the whole run's records with the total.
    pub(super) before: CommittedSoFar,
    pub(super) stop: StopSignal,
}

/// Pages, listing notes and records in committed chunks when the stage starts.
pub(super) struct CommittedSoFar {
    pub(super) pages: u64,
    pub(super) notes: ListingNotes,
    pub(super) rows: u64,
}

/// A page request started ahead of its turn (`--concurrency`): the URL asked for and the task
/// fetching it. Dropping it cancels the request, so a discarded guess or a stopped run leaves
/// nothing running.
struct InFlight {
    url: Url,
    /// Started from the pointer of the page before, ahead of its parse (`read_ahead`).
    guessed: bool,
    task: tokio::task::JoinHandle<Result<FetchedPage, SourceError>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Walk the pages from `start` (none: the listing already ended): fetch, locate records,
/// work out the next request, hand the page on. Returns whether the listing ended (false:
/// stopped by the signal or by a downstream failure).
///
/// With `source.concurrency` above 1 and a style that can predict its next requests (offset,
/// page number), the requests for the pages after the current one are started before it
/// arrives, up to that many in flight. Pages are still located and handed on one by one, in
/// order, each with the next request worked out from the page itself; a prediction is used
/// only when it is exactly that request. When it is not (a short page, a page size halved
/// after a 504, an API serving fewer records than asked for) or the listing ends, the
/// requests ahead are cancelled and their answers, even errors, are never looked at. So
/// records, their order and the resume points are the same as one page at a time.
///
/// With `source.read_ahead` and a style that reads its next request from a pointer (cursor,
/// links), that request is started from the pointer alone as soon as the page is in, while
/// the page is parsed (`paginate::guess`), and goes through the same check: used only if it
/// is the request the parsed page asks for. After one wrong guess the stage stops guessing.
pub(super) async fn fetch_stage(input: FetchInput) -> Result<FetchEnd, PullError> {
    let FetchInput {
        source,
        client,
        reporter,
        pages,
        start,
        before,
        mut stop,
    } = input;
    let source = &source;
    let client = Arc::new(client);
    let paginator: Arc<dyn Paginator> = Arc::from(paginator_for(source)?);
    let stop_rules = Arc::new(source.pagination.stop.clone());
    let origin = Arc::new(source.url.clone());
    let records_path: Arc<str> = Arc::from(source.records_path.as_str());
    let concurrency = source.concurrency.max(1);
    // The page size as 504s shrink it and successes grow it back, from the configured size
    // (never from the size a resumed request was saved with).
    let sizing = crate::source::page_size::PageSizing::new(paginator.clone()).map(Arc::new);
    // A request at the page size as it stands (shrunk by 504s, grown back by successes).
    let sized = |url: Url| match &sizing {
        Some(sizing) => sizing.apply(&url),
        None => url,
    };
    let start_fetch = |url: Url, page_no: u64, guessed: bool| {
        let (client, reporter, sizing) = (client.clone(), reporter.clone(), sizing.clone());
        let task_url = url.clone();
        InFlight {
            url,
            guessed,
            task: tokio::spawn(async move {
                client
                    .fetch_shrinking(&task_url, page_no, reporter.as_ref(), sizing.as_deref())
                    .await
            }),
        }
    };
    // Requests in flight, in page order: the front one is the current page's.
    let mut window: VecDeque<InFlight> = VecDeque::new();
    // What predictions go by: the records a full page held (the last page that had a next
    // one), and the listing's total once a page gave it (`--total-path`).
    let mut full_page: Option<u64> = None;
    let mut total: Option<u64> = None;

    let mut next = start;
    let CommittedSoFar {
        pages: mut page_no,
        mut notes,
        rows,
    } = before;
    // A checkpoint from before the notes were kept: the records landed are the best count.
    if notes.received == 0 {
        notes.received = rows;
    }
    let mut records_so_far = notes.received;
    let shrinks_before = notes.page_size_shrinks;
    let stopped = |notes: ListingNotes| FetchEnd {
        ended: false,
        capped: None,
        notes,
    };
    let mut capped = None;
    // Start a cursor or link page's next request from its pointer while the page is parsed.
    let mut reading_ahead = source.read_ahead;
    while let Some(url) = next.take() {
        if let Some(m) = source.max_pages.filter(|m| page_no >= *m) {
            // There is a next page: the listing is cut here, not ended.
            capped = Some(m);
            break;
        }
        if stop.is_stopped() {
            return Ok(stopped(notes));
        }
        let url = sized(url);
        page_no += 1;
        if let Some(wrong) = window.front().filter(|f| f.url != url) {
            // Not the request that was predicted: every guess after the last page was wrong.
            // A wrong read-ahead is not repeated: this API's pages do not end with their
            // pointer (or its stop rules end listings the pointer continues).
            if wrong.guessed && reading_ahead {
                reading_ahead = false;
                tracing::debug!(
                    page = page_no,
                    "the request read ahead from the last page's pointer is not the one the page asks for: it is dropped, and this run waits for each page's parse from now on"
                );
            }
            window.clear();
        }
        if window.is_empty() {
            window.push_back(start_fetch(url.clone(), page_no, false));
        }
        while window.len() < concurrency {
            let ahead = window.len() as u64;
            if source.max_pages.is_some_and(|m| page_no + ahead > m) {
                break;
            }
            // Past the total, or a range's end (`max_records`, known before any page), a walk
            // one page at a time would not ask (full pages assumed).
            let end = match (total, source.pagination.stop.max_records) {
                (Some(t), Some(m)) => Some(t.min(m)),
                (t, m) => t.or(m),
            };
            let per_page = full_page.or_else(|| paginator.configured_page_size());
            if let (Some(end), Some(per_page)) = (end, per_page) {
                if records_so_far.saturating_add(ahead.saturating_mul(per_page)) >= end {
                    break;
                }
            }
            // A prediction only changes the query of a URL already on the origin; checked
            // anyway, as every next request is, before anything is sent.
            let Some(predicted) = window
                .back()
                .and_then(|last| paginator.predict(&last.url, full_page))
                .map(sized)
                .filter(|p| crate::source::paginate::same_origin(&origin, p))
            else {
                break;
            };
            window.push_back(start_fetch(predicted, page_no + ahead, false));
        }
        let Some(mut current) = window.pop_front() else {
            return Err(PullError::Internal("no request for the next page".into()));
        };
        let skip = source.on_bad_page == BadPagePolicy::Skip;
        let fetched = tokio::select! {
            f = &mut current.task => f.map_err(|e| PullError::Internal(format!("page fetch task: {e}")))?,
            _ = stop.stopped() => return Ok(stopped(notes)),
        };
        drop(current);
        let mut fetched = match fetched {
            Ok(f) => f,
            Err(SourceError::TooLarge { limit, .. }) if skip => {
                // Not read whole: set aside without a body, if the next page can be found.
                let reason = format!("larger than --max-page-bytes ({limit} bytes)");
                let blind =
                    next_after_bad_page(&*paginator, &origin, &url, &HeaderMap::new(), None)
                        .map_err(|source| PullError::Paginate {
                            page: page_no,
                            url: redact_url(&url),
                            source,
                        })?;
                let msg = rejected_msg(
                    page_no,
                    (&url, &client.sent(&url)),
                    blind,
                    (reason, Vec::new()),
                    None,
                    "next request",
                    notes.clone(),
                )?;
                if pages.send(msg.0).await.is_err() {
                    return Ok(stopped(notes));
                }
                next = msg.1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // The URL that answered: a 504 may have made the client ask for smaller pages.
        let url = fetched.url.clone();
        if reading_ahead
            && window.is_empty()
            && source.max_pages.is_none_or(|m| page_no < m)
            && !stop.is_stopped()
        {
            let headers = &fetched.headers;
            let guessed = guess(
                &*paginator,
                &stop_rules,
                &origin,
                &url,
                headers,
                &fetched.body,
            );
            if let Some(guess) = guessed {
                window.push_back(start_fetch(sized(guess), page_no + 1, true));
            }
        }
        let shown = redact_url(&url);
        let body_len = fetched.body.len() as u64;
        let attempts = std::mem::take(&mut fetched.attempts);
        // A skipped page needs its body and headers after the parser has consumed the page.
        let kept = skip.then(|| (fetched.body.clone(), fetched.headers.clone()));
        // Parsing a page is CPU work: the next request of a cursor listing waits for it, and
        // a hand-off to the blocking pool would add a thread wake-up to every page. On the
        // pull's multi-threaded runtime a page of up to `INLINE_PARSE_MAX` is parsed right
        // here, after one yield so that the tasks this one just woke or spawned (the read-
        // ahead request above, an upload) are under way first; the other worker runs them
        // meanwhile. A larger page is parsed with this worker's other tasks handed to another
        // thread (`block_in_place`). Parsing every page that way made the worker's role
        // move from thread to thread, page after page (17 threads in a long pull), and each
        // thread's heap grew in turn to what the role allocates: a 10,000,000-record pull
        // peaked 10 MiB above a 1,000,000-record one, and used 3% more CPU.
        let parse = {
            let (paginator, stop_rules) = (paginator.clone(), stop_rules.clone());
            let (origin, records_path) = (origin.clone(), records_path.clone());
            move || {
                locate(
                    fetched,
                    &*paginator,
                    &stop_rules,
                    &origin,
                    &records_path,
                    (records_so_far, page_no),
                )
            }
        };
        let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
        let located = if multi_thread && body_len <= INLINE_PARSE_MAX {
            tokio::task::yield_now().await;
            parse()
        } else if multi_thread {
            tokio::task::block_in_place(parse)
        } else {
            tokio::task::spawn_blocking(parse)
                .await
                .map_err(|e| PullError::Internal(format!("page parser: {e}")))?
        };
        let Located {
            page,
            next: page_next,
            total: page_total,
            warning,
        } = match located {
            Ok(found) => found,
            Err(LocateError::Extract(source)) => match kept {
                Some((body, headers)) => {
                    let reason = source.to_string();
                    let text = std::str::from_utf8(&body).ok();
                    let doc = text.and_then(|t| JsonDoc::parse(t).ok());
                    let blind =
                        next_after_bad_page(&*paginator, &origin, &url, &headers, doc.as_ref())
                            .map_err(|source| PullError::Paginate {
                                page: page_no,
                                url: shown.clone(),
                                source,
                            })?;
                    let what = if doc.is_some() {
                        "next request"
                    } else {
                        "cursor or link"
                    };
                    let msg = rejected_msg(
                        page_no,
                        (&url, &client.sent(&url)),
                        blind,
                        (reason, attempts),
                        Some(body),
                        what,
                        notes.clone(),
                    )?;
                    reporter.report(Event::PageFetched {
                        page: page_no,
                        records: 0,
                        bytes: body_len,
                    });
                    if pages.send(msg.0).await.is_err() {
                        return Ok(stopped(notes));
                    }
                    next = msg.1;
                    continue;
                }
                None => {
                    return Err(PullError::Extract {
                        page: page_no,
                        url: shown.clone(),
                        source,
                    })
                }
            },
            Err(LocateError::Paginate(source)) => {
                return Err(PullError::Paginate {
                    page: page_no,
                    url: shown.clone(),
                    source,
                })
            }
        };
        let records = page.len() as u64;
        records_so_far += records;
        if records > 0 && page_next.is_some() {
            full_page = Some(records);
        }
        total = page_total.or(total);
        notes.received = records_so_far;
        notes.api_total = page_total.or(notes.api_total);
        if let Some(sizing) = &sizing {
            notes.page_size_shrinks = shrinks_before + sizing.shrinks();
        }
        reporter.report(Event::PageFetched {
            page: page_no,
            records,
            bytes: body_len,
        });
        if let Some(message) = warning {
            reporter.report(Event::Warning {
                message: message.clone(),
            });
            notes.warnings.push(message);
        }
        let sent = client.sent(&url);
        let lineage = page_line(page_no, &sent, attempts, body_len, records, None);
        let msg = PageMsg::Page {
            page,
            number: page_no,
            url,
            next: page_next.clone(),
            notes: notes.clone(),
            lineage,
        };
        if pages.send(msg).await.is_err() {
            // The encoder stopped; its error is the one to report.
            return Ok(stopped(notes));
        }
        next = page_next;
    }
    // Requests still in flight were guesses past the end: cancel them before saying so.
    window.clear();
    // A failed send means the encoder stopped and reports its own error.
    let ended = pages.send(PageMsg::End).await.is_ok();
    Ok(FetchEnd {
        ended,
        capped,
        notes,
    })
}

/// The message for a page set aside (why, and the attempts that fetched it), and the
/// request after it. `url` is the page's position, `sent` the request rendered from it.
fn rejected_msg(
    number: u64,
    (url, sent): (&Url, &PageRequest),
    blind: Blind,
    (reason, attempts): (String, Vec<AttemptTrace>),
    body: Option<Bytes>,
    what: &'static str,
    notes: ListingNotes,
) -> Result<(PageMsg, Option<Url>), PullError> {
    let next = match blind {
        Blind::Next(n) => Some(n),
        Blind::End => None,
        Blind::Unknown => {
            return Err(PullError::Unskippable {
                page: number,
                url: redact_url(url),
                reason,
                what,
            })
        }
    };
    let bytes = body.as_ref().map_or(0, |b| b.len() as u64);
    let lineage = page_line(number, sent, attempts, bytes, 0, Some(reason.clone()));
    let rejected = RejectedPage {
        page: number,
        request: redact_url(url),
        reason,
        body_path: None,
        bytes,
    };
    let msg = PageMsg::Rejected {
        number,
        url: url.clone(),
        next: next.clone(),
        rejected,
        body,
        notes,
        lineage,
    };
    Ok((msg, next))
}

enum LocateError {
    Extract(ExtractError),
    Paginate(PaginateError),
}

/// A page's records, the request after it, and the listing's total when `--total-path`
/// names one (it bounds how far ahead requests are started).
struct Located {
    page: ExtractedPage,
    next: Option<Url>,
    total: Option<u64>,
    /// The pointer rule's warning: the listing ended on a page that looked full.
    warning: Option<String>,
}

fn locate(
    fetched: FetchedPage,
    paginator: &dyn Paginator,
    stop: &crate::source::paginate::StopRules,
    origin: &Url,
    records_path: &str,
    (records_before, page_no): (u64, u64),
) -> Result<Located, LocateError> {
    let (ranges, members, step, total) = {
        let text = crate::source::extract::body_text(&fetched.body)
            .ok_or(LocateError::Extract(ExtractError::NotUtf8))?;
        let mut doc =
            JsonDoc::parse_with_records(text, records_path).map_err(LocateError::Extract)?;
        let records = doc.records(records_path).map_err(LocateError::Extract)?;
        let view = PageView {
            url: &fetched.url,
            headers: &fetched.headers,
            doc: &doc,
            records: records.len() as u64,
            records_so_far: records_before + records.len() as u64,
            page: page_no,
        };
        let step = next_request(paginator, stop, origin, &view).map_err(LocateError::Paginate)?;
        // `next_request` has read it already when it matters; a bad value only loses the bound.
        let total = stop
            .total_path
            .as_deref()
            .and_then(|path| doc.get_u64(path).ok().flatten());
        let members = doc.take_record_members(records_path);
        (
            ExtractedPage::ranges_of(text, &records),
            members,
            step,
            total,
        )
    };
    Ok(Located {
        page: ExtractedPage {
            body: fetched.body,
            ranges,
            members,
        },
        next: step.next,
        total,
        warning: step.warning,
    })
}

/// The run's request template bound to its run (`run_id`, `started_at` fill the
/// placeholders) with the style's body fields: what every page's request is rendered from,
/// and what the checkpoint saves each next request as.
pub(crate) fn request_for(
    source: &SourceConfig,
    run_id: &str,
    started_at: &str,
) -> Result<crate::source::request::BoundRequest, PullError> {
    let paginator = paginator_for(source)?;
    let run = crate::source::request::RunValues { run_id, started_at };
    Ok(source
        .request
        .bind(paginator.body_fields(), &run)?
        .keeping_positions(paginator.position_params()))
}

/// The configured style's paginator. A pagination its style cannot use (only a library
/// caller can build one: the CLI checks it while resolving) stops the run before page 1.
pub(crate) fn paginator_for(source: &SourceConfig) -> Result<Box<dyn Paginator>, PullError> {
    crate::source::paginate::paginator(&source.pagination).map_err(|e| PullError::Paginate {
        page: 1,
        url: redact_url(&source.url),
        source: e,
    })
}
