//! Object references in an API's pages: a pull whose records describe objects
//! (`--objects-path files --object-url-field url`, or `--object-uri-field s3_uri`) instead of
//! being the data. Each record becomes an [`ObjectRef`]; the listing itself is paged by the
//! configured pagination style exactly as a pull of records is (the same paginator, stop rules,
//! pointer rule and host pinning), so an API that pages its file list is followed to its end.
//!
//! This file only *reads* references: where an object's bytes come from (and whether its host
//! may be contacted at all) is decided by the object reader, before any request. A reference
//! URL is a secret while it carries a signature, so no message here quotes one: records are
//! named by page and index, never by URL.

use super::url::S3Uri;
use super::{Checksum, ObjectLocation, ObjectRef};
use crate::config::Pagination;
use crate::report::{Event, Reporter};
use crate::secret::redact_url;
use crate::source::client::{ApiClient, FetchedPage, SourceError};
use crate::source::extract::{ExtractError, JsonDoc};
use crate::source::paginate::{next_request, PageView, PaginateError};
use std::collections::HashSet;
use url::Url;

/// Where an object's location is in a reference record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationField {
    /// A presigned or plain HTTPS URL (`--object-url-field`).
    Url(String),
    /// An `s3://bucket/key` URI (`--object-uri-field`), read with the run's AWS credentials.
    Uri(String),
}

/// The algorithm of a reference's own checksum field (`--object-checksum-algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumAlgorithm {
    /// Hex MD5 (what most APIs publish).
    #[default]
    Md5,
    /// Hex or base64 SHA-256.
    Sha256,
    /// Base64 SHA-1.
    Sha1,
    /// Base64 CRC32.
    Crc32,
    /// Base64 CRC32C.
    Crc32c,
}

impl ChecksumAlgorithm {
    /// Every algorithm by its flag value, for parsing and help.
    pub const NAMES: &'static [(&'static str, ChecksumAlgorithm)] = &[
        ("md5", ChecksumAlgorithm::Md5),
        ("sha256", ChecksumAlgorithm::Sha256),
        ("sha1", ChecksumAlgorithm::Sha1),
        ("crc32", ChecksumAlgorithm::Crc32),
        ("crc32c", ChecksumAlgorithm::Crc32c),
    ];

    /// The algorithm named `name` (case-insensitive).
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown checksum algorithm {name:?}: use one of {}",
                    known.join(", ")
                )
            })
    }

    fn checksum(self, value: String) -> Checksum {
        match self {
            ChecksumAlgorithm::Md5 => Checksum::Md5(value.to_ascii_lowercase()),
            ChecksumAlgorithm::Sha256 => Checksum::Sha256(value),
            ChecksumAlgorithm::Sha1 => Checksum::Sha1(value),
            ChecksumAlgorithm::Crc32 => Checksum::Crc32(value),
            ChecksumAlgorithm::Crc32c => Checksum::Crc32c(value),
        }
    }
}

/// Which fields of a reference record say what (paths are dot-separated, as `--records-path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefFields {
    /// Where the reference records are in a page (`--objects-path`); empty: the page is the
    /// array.
    pub objects_path: String,
    pub location: LocationField,
    /// `--object-size-field`: the object's size in bytes (checked against what is read).
    pub size: Option<String>,
    /// `--object-checksum-field`, in `checksum_algorithm`.
    pub checksum: Option<String>,
    pub checksum_algorithm: ChecksumAlgorithm,
    /// `--object-records-field`: the records the object holds (checked with `--land records`).
    pub records: Option<String>,
    /// `--object-name-field`: the object's name under the run's folder; by default the S3 key
    /// or the URL's path.
    pub name: Option<String>,
}

impl RefFields {
    /// References by URL in `objects_path`, with no optional field.
    pub fn urls(objects_path: &str, url_field: &str) -> Self {
        Self::with(objects_path, LocationField::Url(url_field.to_string()))
    }

    /// References by `s3://` URI in `objects_path`, with no optional field.
    pub fn uris(objects_path: &str, uri_field: &str) -> Self {
        Self::with(objects_path, LocationField::Uri(uri_field.to_string()))
    }

    fn with(objects_path: &str, location: LocationField) -> Self {
        Self {
            objects_path: objects_path.to_string(),
            location,
            size: None,
            checksum: None,
            checksum_algorithm: ChecksumAlgorithm::default(),
            records: None,
            name: None,
        }
    }
}

/// Why a listing of references could not be read. Never quotes a reference's URL.
#[derive(Debug, thiserror::Error)]
pub enum RefsError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("page {page} of the object listing ({url}): {source}. Check --objects-path (where the references are in a page)")]
    Page {
        page: u64,
        url: String,
        #[source]
        source: ExtractError,
    },
    #[error("page {page} of the object listing ({url}): {source}")]
    Paginate {
        page: u64,
        url: String,
        #[source]
        source: PaginateError,
    },
    #[error("page {page}, object reference {index}: {problem}")]
    Reference {
        page: u64,
        /// 0-based, within the page.
        index: usize,
        problem: String,
    },
    #[error("two object references are both named {name:?} (page {page}, reference {index} is the second): they would land on the same path. Name objects with --object-name-field, or fix the API's listing")]
    DuplicateName {
        name: String,
        page: u64,
        index: usize,
    },
}

/// Everything a walked listing of references gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefListing {
    /// In listing order.
    pub objects: Vec<ObjectRef>,
    /// Pages read.
    pub pages: u64,
    /// The pointer rule's warnings (a listing that ended on a page that looked full); the run
    /// records them.
    pub warnings: Vec<String>,
}

/// The references in one page's records.
pub fn refs_of_page(
    doc: &JsonDoc<'_>,
    fields: &RefFields,
    page: u64,
) -> Result<Vec<ObjectRef>, RefsError> {
    let records = doc
        .records(&fields.objects_path)
        .map_err(|source| RefsError::Page {
            page,
            url: String::new(),
            source,
        })?;
    records
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            reference(raw, fields).map_err(|problem| RefsError::Reference {
                page,
                index,
                problem,
            })
        })
        .collect()
}

/// One reference record → an [`ObjectRef`], or what is wrong with it (never quoting a URL).
fn reference(raw: &str, fields: &RefFields) -> Result<ObjectRef, String> {
    let doc = JsonDoc::parse(raw).map_err(|e| e.to_string())?;
    let text = |path: &str| {
        doc.get_text(path)
            .map_err(|e| format!("field {path:?}: {e}"))
    };
    let (location, default_name) = match &fields.location {
        LocationField::Url(path) => {
            let value = text(path)?.ok_or_else(|| missing(&doc, path, "--object-url-field"))?;
            let url = Url::parse(&value).map_err(|e| {
                format!("field {path:?} is not a URL ({e}); an object URL must be absolute (https://...)")
            })?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(format!(
                    "field {path:?} is a {}: URL, not an HTTPS URL; for s3:// references use --object-uri-field",
                    url.scheme()
                ));
            }
            let name = name_of_url(&url);
            (ObjectLocation::Url { url: value }, name)
        }
        LocationField::Uri(path) => {
            let value = text(path)?.ok_or_else(|| missing(&doc, path, "--object-uri-field"))?;
            let (bucket, key) = parse_s3_uri(&value).map_err(|e| format!("field {path:?}: {e}"))?;
            let name = key.clone();
            (ObjectLocation::S3 { bucket, key }, name)
        }
    };
    let number = |path: &Option<String>, what: &str| -> Result<Option<u64>, String> {
        let Some(path) = path else { return Ok(None) };
        match text(path)? {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("field {path:?} ({what}) is {v:?}, not a whole number")),
        }
    };
    let size = number(&fields.size, "the object's size")?;
    let records = number(&fields.records, "the object's record count")?;
    let checksum = match &fields.checksum {
        Some(path) => text(path)?.map(|v| fields.checksum_algorithm.checksum(v)),
        None => None,
    };
    let name = match &fields.name {
        Some(path) => text(path)?.ok_or_else(|| missing(&doc, path, "--object-name-field"))?,
        None => default_name,
    };
    check_name(&name)?;
    Ok(ObjectRef {
        location,
        name,
        size,
        checksum,
        records,
        etag: None,
        version_id: None,
        last_modified: None,
    })
}

fn missing(doc: &JsonDoc<'_>, path: &str, flag: &str) -> String {
    let keys = doc.top_level_keys();
    format!(
        "no {path:?} field (or it is null or empty); the reference's fields are: {}. Set {flag} to the field that holds it",
        keys.join(", ")
    )
}

/// `s3://bucket/key` → (bucket, key), with [`S3Uri`]'s rules and a key that names an object.
fn parse_s3_uri(value: &str) -> Result<(String, String), String> {
    let uri = S3Uri::parse(value).map_err(|e| e.to_string())?;
    if uri.key.is_empty() || uri.key.ends_with('/') {
        return Err(format!(
            "{value:?} names no object: an s3:// reference is s3://bucket/key"
        ));
    }
    Ok((uri.bucket, uri.key))
}

/// A URL's path, decoded, without its leading `/`: the object's key (virtual-hosted style) or
/// bucket and key (path style). Never its query, which holds the signature.
fn name_of_url(url: &Url) -> String {
    let path = url.path().trim_start_matches('/');
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// A name that lands under the run's folder and nowhere else.
fn check_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.chars().any(char::is_control)
        || name
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(format!(
            "the object's name {name:?} cannot be a path under the run's folder (empty, absolute, or with empty, '.' or '..' segments); name objects with --object-name-field"
        ));
    }
    Ok(())
}

/// Walks a listing of references from `first` to its end with `pagination`, pinned to
/// `origin`'s host. `prefetched` is page 1 when the caller already holds it (an export's final
/// status document): it is used instead of asking again.
pub async fn list_refs(
    client: &ApiClient,
    origin: &Url,
    pagination: &Pagination,
    fields: &RefFields,
    prefetched: Option<FetchedPage>,
    reporter: &dyn Reporter,
) -> Result<RefListing, RefsError> {
    let paginator =
        crate::source::paginate::paginator(pagination).map_err(|source| RefsError::Paginate {
            page: 1,
            url: redact_url(origin),
            source,
        })?;
    let mut listing = RefListing::default();
    let mut names = HashSet::new();
    let mut prefetched = prefetched;
    let mut next = Some(match &prefetched {
        Some(page) => page.url.clone(),
        None => paginator.first(origin),
    });
    while let Some(url) = next.take() {
        let page_no = listing.pages + 1;
        let fetched = match prefetched.take() {
            Some(page) => page,
            None => client.fetch(&url, page_no, reporter).await?,
        };
        let shown = redact_url(&fetched.url);
        let text = std::str::from_utf8(&fetched.body).map_err(|_| RefsError::Page {
            page: page_no,
            url: shown.clone(),
            source: ExtractError::NotUtf8,
        })?;
        let doc = JsonDoc::parse_with_records(text, &fields.objects_path).map_err(|source| {
            RefsError::Page {
                page: page_no,
                url: shown.clone(),
                source,
            }
        })?;
        let refs = refs_of_page(&doc, fields, page_no).map_err(|e| match e {
            RefsError::Page { page, source, .. } => RefsError::Page {
                page,
                url: shown.clone(),
                source,
            },
            other => other,
        })?;
        let count = refs.len() as u64;
        for (index, object) in refs.into_iter().enumerate() {
            if !names.insert(object.name.clone()) {
                return Err(RefsError::DuplicateName {
                    name: object.name,
                    page: page_no,
                    index,
                });
            }
            listing.objects.push(object);
        }
        listing.pages = page_no;
        reporter.report(Event::PageFetched {
            page: page_no,
            records: count,
            bytes: fetched.body.len() as u64,
        });
        let view = PageView {
            url: &fetched.url,
            headers: &fetched.headers,
            doc: &doc,
            records: count,
            records_so_far: listing.objects.len() as u64,
            page: page_no,
        };
        let step =
            next_request(&*paginator, &pagination.stop, origin, &view).map_err(|source| {
                RefsError::Paginate {
                    page: page_no,
                    url: shown.clone(),
                    source,
                }
            })?;
        if let Some(message) = step.warning {
            reporter.report(Event::Warning {
                message: message.clone(),
            });
            listing.warnings.push(message);
        }
        next = step.next;
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str, fields: &RefFields) -> Result<Vec<ObjectRef>, RefsError> {
        let doc = JsonDoc::parse_with_records(body, &fields.objects_path).unwrap();
        refs_of_page(&doc, fields, 1)
    }

    #[test]
    fn url_references_take_their_name_from_the_path_and_never_the_query() {
        let fields = RefFields::urls("files", "url");
        let refs = page(
            r#"{"files":[{"url":"https://b.s3.eu-west-1.amazonaws.com/exports/2026/part%20one.csv?X-Amz-Signature=abc"}],"next":null}"#,
            &fields,
        )
        .unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].name, "exports/2026/part one.csv");
        assert!(
            matches!(&refs[0].location, ObjectLocation::Url { url } if url.contains("X-Amz-Signature"))
        );
        assert_eq!((refs[0].size, refs[0].records), (None, None));
    }

    #[test]
    fn uri_references_with_every_optional_field() {
        let mut fields = RefFields::uris("data.files", "s3_uri");
        fields.size = Some("bytes".into());
        fields.checksum = Some("meta.md5".into());
        fields.records = Some("rows".into());
        fields.name = Some("label".into());
        let body = r#"{"data":{"files":[
            {"s3_uri":"s3://bucket/a/b.jsonl","bytes":12,"meta":{"md5":"ABCDEF"},"rows":"3","label":"x/b.jsonl"},
            {"s3_uri":"s3://bucket/c.jsonl","bytes":"0","meta":{},"rows":null,"label":"c.jsonl"}
        ]}}"#;
        let refs = page(body, &fields).unwrap();
        assert_eq!(
            refs[0].location,
            ObjectLocation::S3 {
                bucket: "bucket".into(),
                key: "a/b.jsonl".into()
            }
        );
        assert_eq!(refs[0].name, "x/b.jsonl");
        assert_eq!(refs[0].size, Some(12));
        assert_eq!(refs[0].checksum, Some(Checksum::Md5("abcdef".into())));
        assert_eq!(refs[0].records, Some(3));
        assert_eq!(
            (refs[1].size, &refs[1].checksum, refs[1].records),
            (Some(0), &None, None)
        );
    }

    #[test]
    fn checksum_algorithms_by_name() {
        assert_eq!(
            ChecksumAlgorithm::parse("SHA256"),
            Ok(ChecksumAlgorithm::Sha256)
        );
        assert_eq!(
            ChecksumAlgorithm::parse("crc32c"),
            Ok(ChecksumAlgorithm::Crc32c)
        );
        let err = ChecksumAlgorithm::parse("whirlpool").unwrap_err();
        assert!(err.contains("md5, sha256, sha1, crc32, crc32c"), "{err}");
        assert_eq!(
            ChecksumAlgorithm::Crc32.checksum("AAAA".into()),
            Checksum::Crc32("AAAA".into())
        );
    }

    #[test]
    fn bad_references_are_named_by_page_and_index_without_their_url() {
        let secret = "X-Amz-Signature=deadbeef";
        let cases: &[(&str, RefFields, &str)] = &[
            (
                r#"{"files":[{"url":"https://h/ok"},{"href":"https://h/x"}]}"#,
                RefFields::urls("files", "url"),
                "reference 1: no \"url\" field (or it is null or empty); the reference's fields are: href. Set --object-url-field",
            ),
            (
                r#"{"files":[{"url":"ftp://h/x?X-Amz-Signature=deadbeef"}]}"#,
                RefFields::urls("files", "url"),
                "is a ftp: URL, not an HTTPS URL",
            ),
            (
                r#"{"files":[{"url":"/relative?X-Amz-Signature=deadbeef"}]}"#,
                RefFields::urls("files", "url"),
                "is not a URL",
            ),
            (
                r#"{"files":[{"u":"s3://bucket"}]}"#,
                RefFields::uris("files", "u"),
                "names no object",
            ),
            (
                r#"{"files":[{"u":"https://bucket/key"}]}"#,
                RefFields::uris("files", "u"),
                "an S3 URI starts with s3://",
            ),
            (
                r#"{"files":[{"u":"s3://b/../../etc/passwd"}]}"#,
                RefFields::uris("files", "u"),
                "cannot be a path under the run's folder",
            ),
            (
                r#"{"files":[{"u":"s3://b/k","size":"big"}]}"#,
                RefFields {
                    size: Some("size".into()),
                    ..RefFields::uris("files", "u")
                },
                "field \"size\" (the object's size) is \"big\", not a whole number",
            ),
        ];
        for (body, fields, expected) in cases {
            let err = page(body, fields).unwrap_err().to_string();
            assert!(err.contains(expected), "{body}: {err}");
            assert!(err.starts_with("page 1, object reference"), "{err}");
            assert!(!err.contains(secret), "{err}");
        }
    }

    #[test]
    fn a_page_without_the_objects_path_says_which_flag_to_fix() {
        let fields = RefFields::urls("files", "url");
        let doc = JsonDoc::parse(r#"{"items":[]}"#).unwrap();
        let err = refs_of_page(&doc, &fields, 2).unwrap_err();
        assert!(matches!(err, RefsError::Page { page: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("--objects-path"), "{err}");
    }

    #[test]
    fn names_stay_under_the_run_folder() {
        for ok in ["a", "a/b.csv", "x y/z"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/abs", "a//b", "a/./b", "../x", "a\\b", "a/", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
