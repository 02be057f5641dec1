//! What a pagination style says about itself, so that nothing outside its own file has to
//! match on it: its `--paginate` name and one line of help, the settings it reads (each a
//! flag, a `GATELAKE_*` variable and a job-file key), whether its pages can be requested
//! ahead, and how it builds its [`Paginator`] from a plain [`Pagination`].
//!
//! The CLI's `--paginate` values, their help, the style flags, the job file's `paginate` and
//! settings resolution all read these descriptions through the registry (`STYLES` in
//! `mod.rs`); this file must never name a particular style.

use super::{PaginateError, Paginator};
use std::collections::BTreeMap;

/// How a style's pages can be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// One request: there is no next page.
    Single,
    /// Each next request is only known once the page before it has arrived (cursors, links).
    Sequential,
    /// The next requests can be worked out before the pages arrive (offset, page number), so
    /// that `--concurrency` can keep several in flight.
    Predictable,
}

impl Pages {
    pub fn predictable(self) -> bool {
        self == Pages::Predictable
    }
}

/// What a setting's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// Any text: a body path, a header or parameter name.
    Text,
    /// A whole number (`u64`).
    Count,
}

/// One setting a style reads. Its key is the job file's key and the id `--show-settings`
/// prints; `flag` and `env` are the same name spelt for the command line and the environment
/// (a test checks they agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// `cursor_path`.
    pub key: &'static str,
    /// `cursor-path` (for `--cursor-path`).
    pub flag: &'static str,
    /// `GATELAKE_CURSOR_PATH`.
    pub env: &'static str,
    /// The placeholder in `--help`: `PATH`, `NAME`, `N`.
    pub value_name: &'static str,
    /// One paragraph of `--help`.
    pub help: &'static str,
    pub kind: SettingKind,
    /// The value when none is given; also shown by `--show-settings` as a default.
    pub default: Option<&'static str>,
    /// Read only when this other setting of the style has a value (a page size goes with
    /// the parameter it is sent in).
    pub only_with: Option<&'static str>,
}

impl Setting {
    /// A text setting without a default.
    pub const fn text(
        key: &'static str,
        flag: &'static str,
        env: &'static str,
        value_name: &'static str,
        help: &'static str,
    ) -> Self {
        Self {
            key,
            flag,
            env,
            value_name,
            help,
            kind: SettingKind::Text,
            default: None,
            only_with: None,
        }
    }

    /// The same setting holding a whole number.
    pub const fn count(self) -> Self {
        Self {
            kind: SettingKind::Count,
            ..self
        }
    }

    /// The same setting with a default.
    pub const fn or(self, default: &'static str) -> Self {
        Self {
            default: Some(default),
            ..self
        }
    }

    /// The same setting, read only when `key` has a value.
    pub const fn only_with(self, key: &'static str) -> Self {
        Self {
            only_with: Some(key),
            ..self
        }
    }
}

/// The page size, for the styles that send one (offset; page number with a size parameter).
/// Shared so that `--page-size` is one flag whichever style reads it.
pub const PAGE_SIZE: Setting = Setting::text(
    "page_size",
    "page-size",
    "GATELAKE_PAGE_SIZE",
    "N",
    "offset: records per page; page: records per page, sent in --page-size-param (refused without it). A 504 integration timeout halves it for a while (never below 1/16). [default: 100]",
)
.count()
.or("100");

/// A pagination style: one file, one line in the registry.
pub trait Style: Sync {
    /// The style's name, as given to `--paginate` and recorded in the manifest.
    fn name(&self) -> &'static str;

    /// One line for `--paginate`'s help.
    fn about(&self) -> &'static str;

    /// Whether its pages can be requested ahead.
    fn pages(&self) -> Pages;

    /// The settings it reads, in the order they are resolved and shown.
    fn settings(&self) -> &'static [Setting] {
        &[]
    }

    /// The paginator for these settings; a setting it cannot use is an error that names the
    /// flag (the CLI shows it as a usage error, exit 2).
    fn paginator(&self, settings: &StyleSettings<'_>) -> Result<Box<dyn Paginator>, PaginateError>;

    /// The settings that begin the listing at its `page`-th page (0-based) in pages of
    /// `size` records, so that a listing can be split into ranges (`--ranges`); `None` for
    /// styles whose pages cannot be addressed (cursors, links).
    fn start_at(
        &self,
        _settings: &StyleSettings<'_>,
        _page: u64,
        _size: u64,
    ) -> Result<Option<Vec<(&'static str, String)>>, PaginateError> {
        Ok(None)
    }
}

/// A style's settings as given, read with the style's own defaults.
pub struct StyleSettings<'a> {
    given: &'a BTreeMap<String, String>,
    declared: &'static [Setting],
}

impl<'a> StyleSettings<'a> {
    pub(super) fn new(given: &'a BTreeMap<String, String>, declared: &'static [Setting]) -> Self {
        Self { given, declared }
    }

    fn declared(&self, key: &str) -> Option<&'static Setting> {
        self.declared.iter().find(|s| s.key == key)
    }

    /// The text of setting `key`: as given, or its default.
    pub fn text(&self, key: &str) -> Option<String> {
        match self.given.get(key) {
            Some(v) => Some(v.clone()),
            None => self
                .declared(key)
                .and_then(|s| s.default)
                .map(str::to_string),
        }
    }

    /// The whole number of setting `key`: as given, or its default.
    pub fn count(&self, key: &str) -> Result<Option<u64>, PaginateError> {
        match self.text(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                PaginateError::Settings(format!(
                    "--{}: '{v}' is not a whole number",
                    key.replace('_', "-")
                ))
            }),
        }
    }

    /// Setting `key`, which must be at least 1.
    pub fn positive(&self, key: &str) -> Result<u64, PaginateError> {
        match self.count(key)? {
            Some(n) if n > 0 => Ok(n),
            _ => Err(PaginateError::Settings(format!(
                "--{} must be at least 1",
                key.replace('_', "-")
            ))),
        }
    }
}
