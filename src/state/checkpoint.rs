//! The checkpoint format. Versioned: a reader refuses a version it does not know rather than
//! guessing. It holds no secret: the saved next request is a redacted URL whose masked query
//! values are restored from the configured URL on resume ([`restore_url`]).

use crate::encode::schema::Schema;
use crate::secret::{is_secret_name, redact_url};
use crate::source::request::BoundRequest;
use crate::state::entries::{ManifestFile, RejectedPage};
use serde::{Deserialize, Serialize};
use url::Url;

pub const CHECKPOINT_VERSION: u32 = 1;

/// Whether the run the checkpoint describes is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Chunks are being committed; a new run resumes this one.
    Running,
    /// Manifest and `_SUCCESS` are written; a new run starts afresh (from the watermark).
    Complete,
}

/// The incremental position: the largest value of the `--since-field` among committed
/// records, and the records within `lag` of it (see `state::watermark` for the rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub field: String,
    /// The largest value seen, as the API wrote it (an RFC 3339 time or a number).
    pub max: String,
    /// Hashes (hex, 64-bit) of the committed records whose value is at least `max − lag`:
    /// the next run asks again from `max − lag` and drops these, so a record on the boundary
    /// is delivered once.
    #[serde(default)]
    pub boundary: Vec<String>,
}

/// `_state/checkpoint.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub job: String,
    pub run_id: String,
    pub status: RunStatus,
    /// The configured source URL (redacted), to notice a job whose source changed between an
    /// interrupted run and its resumption.
    pub source_url: String,
    /// The sequence number of the next chunk to commit.
    pub next_seq: u64,
    /// The request after the last page in a committed chunk (redacted); `None` once the
    /// listing has ended.
    pub next_request: Option<String>,
    /// The body of the next request, as sent (`--method POST`; redacted, the pagination
    /// pointer kept): with `next_request`, the whole request a resumed run replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_body: Option<String>,
    /// The URL of the last page in a committed chunk (redacted).
    pub last_request: Option<String>,
    /// Pages whose records are in committed chunks.
    pub pages: u64,
    /// The committed chunks, in sequence order (the manifest's file list).
    pub files: Vec<ManifestFile>,
    /// The columns chunks are written with (csv/parquet), so a resumed run writes the same,
    /// with the longest string seen per column (for NVARCHAR sizing) over committed chunks.
    pub schema: Option<Schema>,
    /// Schema changes recorded by committed chunks (drift policies), for the manifest.
    #[serde(default)]
    pub schema_changes: Vec<crate::encode::drift::SchemaChange>,
    /// The completed run whose schema this run's first page was compared with.
    #[serde(default)]
    pub compared_with_run: Option<String>,
    /// Pages set aside by `--on-bad-page skip` (one entry per page number).
    #[serde(default)]
    pub rejected: Vec<RejectedPage>,
    /// The first request of the run (redacted).
    pub first_request: Option<String>,
    /// The previous completed run's watermark: where this run started from.
    pub since: Option<Watermark>,
    /// The largest `--since-field` value among this run's committed records.
    pub watermark: Option<Watermark>,
    /// What the run learnt about its listing so far (counts, the API's total, page-size
    /// shrinks, warnings), so that a resumed run reports the whole run's.
    #[serde(default)]
    pub listing: ListingNotes,
    /// A run whose units are S3 objects: its plan, the objects landed and the parts staged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<crate::state::objects::ObjectsProgress>,
    pub started_at: String,
    pub updated_at: String,
}

/// What a run learnt about its listing, kept across resumes for the manifest and summary.
/// Each committed chunk saves the notes as of its last page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingNotes {
    /// Records the API returned over the run, before incremental de-duplication drops the
    /// ones the previous run delivered (what `--total-path` and `--expect-rows` count).
    #[serde(default)]
    pub received: u64,
    /// The listing's total as the API last reported it (`--total-path`).
    #[serde(default)]
    pub api_total: Option<u64>,
    /// Times a 504 made the run halve its page size.
    #[serde(default)]
    pub page_size_shrinks: u64,
    /// Things the run must record in its manifest and summary (a listing that ended on a
    /// page that looked full, a count mismatch let through by `--on-count-mismatch warn`).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Checkpoint {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// Rebuild a saved (redacted) request URL: every query value that was masked (`***`) is
/// taken from the same-named parameter of the configured URL. Fails when a masked value has
/// no counterpart (the job's URL changed), since guessing would send a wrong request.
pub fn restore_url(saved: &str, configured: &Url) -> Result<Url, String> {
    let mut url =
        Url::parse(saved).map_err(|e| format!("the saved next request is not a URL: {e}"))?;
    if url.query().is_none() {
        return Ok(url);
    }
    let mut pairs = Vec::new();
    for (k, v) in url.query_pairs() {
        if v == "***" && is_secret_name(&k) {
            let original = configured
                .query_pairs()
                .find(|(ck, _)| ck == &k)
                .map(|(_, cv)| cv.into_owned())
                .ok_or_else(|| format!("the saved next request needs query parameter '{k}', which the configured --url no longer has"))?;
            pairs.push((k.into_owned(), original));
        } else {
            pairs.push((k.into_owned(), v.into_owned()));
        }
    }
    url.query_pairs_mut().clear().extend_pairs(pairs);
    Ok(url)
}

/// The form the request for `position` is saved in: the URL as sent and its body (a POST's),
/// both redacted.
pub fn save_request(request: &BoundRequest, position: &Url) -> (String, Option<String>) {
    let sent = request.render(position);
    let body = sent.body.map(|b| request.redacted_body(&b));
    (request.saved_url(&sent.url), body)
}

/// The position a saved request (URL and body) was rendered from, with masked query values
/// restored from the configured URL — checked to render back to exactly the saved request,
/// so that a resumed run sends what was saved or refuses (a `--body` or `--query` that
/// changed since would otherwise mix two listings in one run).
pub fn restore_request(
    saved_url: &str,
    saved_body: Option<&str>,
    configured: &Url,
    request: &BoundRequest,
) -> Result<Url, String> {
    let url = restore_url(saved_url, configured)?;
    let position = request
        .position(&url, saved_body)
        .map_err(|e| e.to_string())?;
    let again = save_request(request, &position);
    if (again.0.as_str(), again.1.as_deref()) != (saved_url, saved_body) {
        let show = |(url, body): (&str, Option<&str>)| match body {
            Some(b) => format!("{url} with body {b}"),
            None => url.to_string(),
        };
        return Err(format!(
            "the saved next request is {}, but the configured --method/--body/--query would send {}",
            show((saved_url, saved_body)),
            show((again.0.as_str(), again.1.as_deref()))
        ));
    }
    Ok(position)
}

/// The form a request URL is saved in.
pub fn save_url(url: &Url) -> String {
    redact_url(url)
}

/// Compare two watermark values: numerically when both are numbers, else as text.
pub fn watermark_greater(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_urls_hold_no_secret_and_restore_exactly() {
        let configured =
            Url::parse("https://api.example.com/prod/orders?api_key=K%2B1&status=open").unwrap();
        let next = Url::parse(
            "https://api.example.com/prod/orders?api_key=K%2B1&status=open&cursor=a%2Bb",
        )
        .unwrap();
        let saved = save_url(&next);
        assert!(
            !saved.contains("K%2B1") && !saved.contains("K+1"),
            "{saved}"
        );
        assert_eq!(restore_url(&saved, &configured).unwrap(), next);
        let changed = Url::parse("https://api.example.com/prod/orders?status=open").unwrap();
        assert!(restore_url(&saved, &changed)
            .unwrap_err()
            .contains("api_key"));
        // A URL without secrets round-trips untouched.
        let plain = Url::parse("https://api.example.com/prod/orders?offset=500&limit=100").unwrap();
        assert_eq!(restore_url(&save_url(&plain), &configured).unwrap(), plain);
    }

    /// A POST's next request is saved whole (URL as sent, body with its pointer, secrets
    /// masked) and restored to the position it came from; a template that would send anything
    /// else is refused.
    #[test]
    fn saved_requests_replay_exactly_or_are_refused() {
        use crate::config::RequestTemplate;
        use crate::source::request::{BodyField, RunValues};
        let run = RunValues {
            run_id: "r1",
            started_at: "2026-12-07T00:00:00Z",
        };
        let template = |q: &str| RequestTemplate {
            post: true,
            body: Some(
                serde_json::from_str(&format!(
                    r#"{{"q":"{q}","api_key":"K9","at":"{{run_started}}"}}"#
                ))
                .unwrap(),
            ),
            query: vec![("trace".into(), "{run_id}".into())],
        };
        let field = || BodyField {
            param: "cursor".into(),
            path: "paging.token".into(),
            number: false,
            flag: "--cursor-body-path",
        };
        let bound = template("open").bind(vec![field()], &run).unwrap();
        let configured = Url::parse("https://h/prod/search?index=a").unwrap();
        let position = Url::parse("https://h/prod/search?index=a&cursor=c%2B1").unwrap();
        let (url, body) = save_request(&bound, &position);
        assert_eq!(url, "https://h/prod/search?index=a&trace=r1");
        let body = body.unwrap();
        assert!(
            !body.contains("K9") && body.contains(r#""token":"c+1""#),
            "{body}"
        );
        let back = restore_request(&url, Some(&body), &configured, &bound).unwrap();
        assert_eq!(bound.render(&back), bound.render(&position));
        // Another search, or a run saved without a body, is not replayed.
        let other = template("closed").bind(vec![field()], &run).unwrap();
        let err = restore_request(&url, Some(&body), &configured, &other).unwrap_err();
        assert!(err.contains("would send"), "{err}");
        assert!(restore_request(&url, None, &configured, &bound).is_err());
    }

    #[test]
    fn watermarks_compare_numbers_and_text() {
        assert!(watermark_greater("10", "9"));
        assert!(!watermark_greater("9", "10"));
        assert!(watermark_greater(
            "2026-11-24T10:00:00Z",
            "2026-11-24T09:59:59Z"
        ));
        assert!(!watermark_greater("a", "a"));
    }
}

#[cfg(test)]
mod position_tests {
    use super::*;
    use crate::source::paginate::{paginator, Pagination};

    // A cursor parameter named like a secret (`page_token`, common in real APIs) was saved
    // masked, so a killed run could never resume: its value is the listing's position.
    #[test]
    fn a_cursor_named_like_a_token_is_saved_so_a_resume_can_replay_it() {
        let pagination = Pagination::new("cursor")
            .with("cursor_path", "next_page_token")
            .with("cursor_param", "page_token");
        let p = paginator(&pagination).unwrap();
        let request = BoundRequest::plain().keeping_positions(p.position_params());
        let configured =
            Url::parse("https://api.example.com/prod/orders?api_key=K1&status=open").unwrap();
        let next = Url::parse(
            "https://api.example.com/prod/orders?api_key=K1&status=open&page_token=c%2B9",
        )
        .unwrap();
        let (saved, body) = save_request(&request, &next);
        assert!(saved.contains("page_token=c%2B9"), "{saved}");
        assert!(!saved.contains("K1"), "{saved}");
        let restored = restore_request(&saved, body.as_deref(), &configured, &request).unwrap();
        assert_eq!(restored, next);
    }

    #[test]
    fn every_paged_style_names_its_position_parameters() {
        let offset = paginator(
            &Pagination::new("offset")
                .with("offset_param", "skip_token")
                .with("limit_param", "limit")
                .with("page_size", "10"),
        )
        .unwrap();
        assert!(offset.position_params().contains(&"skip_token".to_string()));
        let page = paginator(&Pagination::new("page").with("page_param", "page_token")).unwrap();
        assert_eq!(page.position_params(), vec!["page_token".to_string()]);
    }
}
