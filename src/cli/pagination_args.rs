//! `--paginate` and the style flags, built from the registry of pagination styles
//! (`gatelake::source::paginate::STYLES`) rather than written out here: each style names its
//! values, their help and the settings it reads, so a new style brings its flags with it.
//!
//! clap's derive cannot declare arguments from a list, so [`PaginationArgs`] implements
//! `Args` by hand and is flattened into `PullArgs` where the fields used to be; `--help`
//! lists the same flags in the same place. The job file's `paginate` value is checked
//! against the same registry ([`StyleName`]).

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use gatelake::source::paginate::{Setting, SettingKind, STYLES};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The id of `--paginate` (and of its `GATELAKE_PAGINATE` variable and job-file key).
pub const PAGINATE: &str = "paginate";

/// `--paginate` and the style flags as given on the command line or in their variables.
#[derive(Debug, Clone, Default)]
pub struct PaginationArgs {
    /// The style's name (one of the registry's: clap has checked it).
    pub style: Option<String>,
    /// Each style flag given, by its setting's key, as text (whole numbers in decimal).
    pub values: BTreeMap<&'static str, String>,
}

/// Every style setting once, in the order the styles list them (a setting two styles share,
/// like the page size, where it first appears).
pub fn style_settings() -> Vec<&'static Setting> {
    let mut out: Vec<&'static Setting> = Vec::new();
    for style in STYLES {
        for s in style.settings() {
            if !out.iter().any(|o| o.key == s.key) {
                out.push(s);
            }
        }
    }
    out
}

impl FromArgMatches for PaginationArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        let bad = |e: clap::parser::MatchesError| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, e.to_string())
        };
        if let Some(style) = matches.try_get_one::<String>(PAGINATE).map_err(bad)? {
            self.style = Some(style.clone());
        }
        for s in style_settings() {
            let value = match s.kind {
                SettingKind::Text => matches.try_get_one::<String>(s.key).map_err(bad)?.cloned(),
                SettingKind::Count => matches
                    .try_get_one::<u64>(s.key)
                    .map_err(bad)?
                    .map(u64::to_string),
            };
            if let Some(v) = value {
                self.values.insert(s.key, v);
            }
        }
        Ok(())
    }
}

impl Args for PaginationArgs {
    fn augment_args(cmd: Command) -> Command {
        let styles = STYLES
            .iter()
            .map(|s| PossibleValue::new(s.name()).help(s.about()));
        let mut cmd = cmd.arg(
            Arg::new(PAGINATE)
                .long(PAGINATE)
                .env("GATELAKE_PAGINATE")
                .value_name("STYLE")
                .help("Pagination style. [default: none]")
                .value_parser(PossibleValuesParser::new(styles)),
        );
        for s in style_settings() {
            let arg = Arg::new(s.key)
                .long(s.flag)
                .env(s.env)
                .value_name(s.value_name)
                .help(s.help);
            cmd = cmd.arg(match s.kind {
                SettingKind::Text => arg.value_parser(clap::value_parser!(String)),
                SettingKind::Count => arg.value_parser(clap::value_parser!(u64)),
            });
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// The registry's style names, for serde's "expected one of" list.
static STYLE_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| STYLES.iter().map(|s| s.name()).collect());

/// A job file's `paginate` value: the name of a registered style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleName(pub &'static str);

// Read as an enum whose variants are the registry's names, so that the job file's errors
// are the ones a derived enum gives (an unknown name lists the known ones; a number is
// "wanted string or table"), with the value's line.
impl<'de> serde::Deserialize<'de> for StyleName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StyleName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a pagination style")
            }
            fn visit_enum<A: serde::de::EnumAccess<'de>>(
                self,
                data: A,
            ) -> Result<StyleName, A::Error> {
                use serde::de::{Error, VariantAccess};
                let (name, variant): (String, A::Variant) = data.variant()?;
                variant.unit_variant()?;
                match STYLES.iter().find(|s| s.name() == name) {
                    Some(s) => Ok(StyleName(s.name())),
                    None => Err(A::Error::unknown_variant(&name, STYLE_NAMES.as_slice())),
                }
            }
        }
        deserializer.deserialize_enum("Paginate", STYLE_NAMES.as_slice(), Visitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Probe {
        #[command(flatten)]
        pagination: PaginationArgs,
    }

    #[test]
    fn flags_come_from_the_registry() {
        use clap::Parser;
        let p = Probe::try_parse_from([
            "probe",
            "--paginate",
            "page",
            "--page-size-param",
            "per_page",
            "--page-size",
            "20",
        ])
        .unwrap();
        assert_eq!(p.pagination.style.as_deref(), Some("page"));
        assert_eq!(
            p.pagination
                .values
                .get("page_size_param")
                .map(String::as_str),
            Some("per_page")
        );
        assert_eq!(
            p.pagination.values.get("page_size").map(String::as_str),
            Some("20")
        );
        let err = Probe::try_parse_from(["probe", "--paginate", "no-such-style"]).unwrap_err();
        assert!(
            err.to_string().contains("[possible values: none, cursor"),
            "{err}"
        );
        let err = Probe::try_parse_from(["probe", "--page-size", "x"]).unwrap_err();
        assert!(err.to_string().contains("--page-size <N>"), "{err}");
        // Every setting of every style is a flag, once.
        let keys: Vec<&str> = style_settings().iter().map(|s| s.key).collect();
        for style in STYLES {
            for s in style.settings() {
                assert!(keys.contains(&s.key), "{}", s.key);
            }
        }
    }

    #[test]
    fn the_job_file_names_a_registered_style() {
        #[derive(serde::Deserialize)]
        struct Job {
            paginate: StyleName,
        }
        let job: Job = toml::from_str("paginate = \"next-link\"").unwrap();
        assert_eq!(job.paginate, StyleName("next-link"));
        let err = toml::from_str::<Job>("paginate = \"no-such-style\"")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("unknown variant `no-such-style`, expected one of `none`, `cursor`"),
            "{err}"
        );
        assert!(err.contains("line 1"), "{err}");
        let err = toml::from_str::<Job>("paginate = 3")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("wanted string or table"), "{err}");
    }
}
