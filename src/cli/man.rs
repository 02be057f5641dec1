//! `gatelake man`: manual pages generated from the clap definitions (one per command:
//! `gatelake.1`, `gatelake-pull.1`, `gatelake-auth-check.1`, …), each with the exit codes, so
//! that `man gatelake-pull` says what `--help` says. The release tarball ships them under
//! `man/man1/`.

use super::exit_code::ExitCode;
use clap::{Args, Command};
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page (gatelake.1, gatelake-pull.1, gatelake-auth-check.1, …) into DIR
    /// instead of printing one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The command whose page to print, e.g. `pull` or `auth check`. [default: gatelake's own]
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Every page of `cmd` (the whole command line's definition, handed in by the caller so that
/// this file needs nothing above it): (file name, roff source), the top command's first.
pub fn pages(cmd: Command) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, &mut out)?;
    Ok(out)
}

fn collect(cmd: &Command, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    let man = Man::new(cmd.clone())
        .source(format!("gatelake {}", env!("CARGO_PKG_VERSION")))
        .manual("gatelake manual");
    let mut page = Vec::new();
    man.render(&mut page)?;
    exit_status_section().to_writer(&mut page)?;
    out.push((man.get_filename(), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, out)?;
    }
    Ok(())
}

/// The EXIT STATUS section, from the same table as `--help` and the README.
fn exit_status_section() -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["EXIT STATUS"]);
    for code in ExitCode::ALL {
        roff.control("TP", []);
        roff.text([bold((code as u8).to_string())]);
        roff.text([roman(code.meaning())]);
    }
    roff.control("PP", []);
    roff.text([roman(super::exit_code::RULE)]);
    roff
}

/// The page for `command` (`[]` for gatelake's own, `["auth", "check"]` for a nested one).
fn page_for(pages: &[(String, Vec<u8>)], command: &[String]) -> Option<Vec<u8>> {
    let name = std::iter::once("gatelake")
        .chain(command.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-");
    pages
        .iter()
        .find(|(file, _)| file.strip_suffix(".1") == Some(name.as_str()))
        .map(|(_, page)| page.clone())
}

fn write_all(dir: &Path, pages: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (file, page) in pages {
        std::fs::write(dir.join(file), page)?;
    }
    Ok(())
}

pub fn run(args: &ManArgs, cmd: Command) -> ExitCode {
    let pages = match pages(cmd) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot render the manual pages: {e}");
            return ExitCode::Failure;
        }
    };
    if let Some(dir) = &args.dir {
        if !args.command.is_empty() {
            eprintln!("error: --dir writes every page; name no command with it");
            return ExitCode::Usage;
        }
        return match write_all(dir, &pages) {
            Ok(()) => {
                eprintln!("wrote {} manual pages into {}", pages.len(), dir.display());
                ExitCode::Success
            }
            Err(e) => {
                eprintln!(
                    "error: cannot write the manual pages into {}: {e}",
                    dir.display()
                );
                ExitCode::Failure
            }
        };
    }
    let Some(page) = page_for(&pages, &args.command) else {
        let known: Vec<String> = pages
            .iter()
            .filter_map(|(f, _)| f.strip_suffix(".1"))
            .map(|n| {
                n.replacen("gatelake", "", 1)
                    .replace('-', " ")
                    .trim()
                    .to_string()
            })
            .filter(|n| !n.is_empty())
            .collect();
        eprintln!(
            "error: no manual page for `gatelake {}`; there is one for gatelake itself and for: {}",
            args.command.join(" "),
            known.join(", ")
        );
        return ExitCode::Usage;
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&page).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::Success,
        Err(e) => {
            eprintln!("error: cannot write the manual page: {e}");
            ExitCode::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::Cli;
    use clap::CommandFactory;

    #[test]
    fn every_command_has_a_page_with_its_exit_codes() {
        let pages = pages(Cli::command()).unwrap();
        let names: Vec<&str> = pages.iter().map(|(f, _)| f.as_str()).collect();
        for expected in [
            "gatelake.1",
            "gatelake-pull.1",
            "gatelake-demo.1",
            "gatelake-auth.1",
            "gatelake-auth-check.1",
            "gatelake-sql.1",
            "gatelake-completions.1",
            "gatelake-man.1",
        ] {
            assert!(names.contains(&expected), "{expected} missing: {names:?}");
        }
        for (file, page) in &pages {
            let text = String::from_utf8_lossy(page);
            let title = text
                .lines()
                .find(|l| l.starts_with(".TH "))
                .unwrap_or_default();
            assert!(
                title.contains(file.trim_end_matches(".1")),
                "{file}: {title}"
            );
            assert!(text.contains("EXIT STATUS"), "{file}");
        }
        let pull = page_for(&pages, &["pull".into()]).unwrap();
        assert!(String::from_utf8_lossy(&pull).contains("\\-\\-paginate"));
        assert!(page_for(&pages, &["auth".into(), "check".into()]).is_some());
        assert!(page_for(&pages, &[]).is_some());
        assert!(page_for(&pages, &["nope".into()]).is_none());
    }
}
