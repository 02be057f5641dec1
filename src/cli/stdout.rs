//! A command's answer on stdout. A reader that stops early (`gatelake … | head`) closes the
//! pipe: that is the reader's choice, not a failure of the command, so the rest of the answer
//! is dropped quietly where `println!` would panic.

use std::io::{ErrorKind, Write};

/// Write `text` and a newline to stdout. A closed pipe ends the answer silently; any other
/// failure (a full disk behind a redirection) is said on stderr and returned as `false`.
pub fn answer(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => true,
        Err(e) => {
            eprintln!("error: cannot write the answer to stdout: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_written() {
        // The test harness captures stdout; what matters is that a plain write succeeds.
        assert!(answer("settings"));
    }
}
