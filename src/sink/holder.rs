//! Who holds a job's lock, as written into the lock object, and whether that holder is a
//! process on this machine that no longer exists — in which case its lock can be taken over
//! at once instead of waiting for the lease to run out.
//!
//! "This machine" is decided conservatively: the same host name *and* the same boot id
//! (`/proc/sys/kernel/random/boot_id`, which also tells a reboot apart). A host name that
//! names nothing in particular (`localhost`, unknown) never counts. The process is gone when
//! its pid does not exist, is a zombie, or now belongs to a process that started at another
//! time (the pid was reused). Anything uncertain counts as alive: waiting out a lease is slow,
//! breaking a live run's lease is wrong. (Even then the checkpoint's conditional writes would
//! stop the second writer; the lock is the early, friendly refusal.)

use std::time::{Duration, SystemTime};

/// Who holds a job's lock: written into the lock object so that a second run can say whom
/// it is waiting for and whether that holder still exists. Names only, no secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockHolder {
    pub host: String,
    pub pid: u32,
    pub job: String,
    /// RFC 3339 time the lock was taken.
    pub since: String,
    /// The machine's boot id: the same host name on another machine, or after a reboot,
    /// is not this process's machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// When the process started (clock ticks since boot, Linux), so a reused pid is not
    /// mistaken for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
    /// RFC 3339 time the holder last renewed its lease (leases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed: Option<String>,
    /// The lease's length in seconds (leases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn this_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown host".into())
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
}

/// State and start time of process `pid` from `/proc/<pid>/stat`: `None` when it does not
/// exist (or `/proc` cannot tell).
fn proc_stat(pid: &str) -> Option<(char, Option<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after it start
    // after the last ')'. There, field 3 (state) is first and field 22 (start time) 20th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18).and_then(|f| f.parse().ok());
    Some((state, start))
}

impl LockHolder {
    /// This process, for `job`.
    pub fn this_process(job: &str) -> Self {
        Self {
            host: this_host(),
            pid: std::process::id(),
            job: job.to_string(),
            since: rfc3339(time::OffsetDateTime::now_utc()),
            boot_id: boot_id(),
            process_start: proc_stat("self").and_then(|(_, start)| start),
            renewed: None,
            lease_seconds: None,
        }
    }

    /// A copy that says it renewed a lease of `seconds` just now.
    pub fn renewed_now(&self, seconds: u64) -> Self {
        Self {
            renewed: Some(rfc3339(time::OffsetDateTime::now_utc())),
            lease_seconds: Some(seconds),
            ..self.clone()
        }
    }

    /// The holder recorded in a lock object's bytes.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// A description of the holder from the lock object's bytes.
    pub fn describe(bytes: &[u8]) -> String {
        match Self::parse(bytes) {
            Some(h) => h.to_string(),
            None => "an unknown process".into(),
        }
    }

    /// How long the holder's lease has left at `now`, from its last renewal (clocks of two
    /// machines differ a little: an estimate). `None` when it records no lease.
    pub fn lease_left(&self, now: SystemTime) -> Option<Duration> {
        let renewed = time::OffsetDateTime::parse(
            self.renewed.as_deref()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        let expires = SystemTime::from(renewed) + Duration::from_secs(self.lease_seconds?);
        Some(expires.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// Whether the holder is a process on this machine (same host name and boot) that no
    /// longer exists. Uncertain answers are `false`.
    pub fn is_gone_from_this_machine(&self) -> bool {
        let host = this_host();
        let meaningful =
            !host.is_empty() && host != "unknown host" && !host.eq_ignore_ascii_case("localhost");
        if !meaningful || self.host != host {
            return false;
        }
        match (&self.boot_id, boot_id()) {
            // Rebooted since: every process of that boot is gone.
            (Some(theirs), Some(ours)) if *theirs != ours => return true,
            (Some(_), Some(_)) => {}
            // Without boot ids on both sides the host name alone is too weak.
            _ => return false,
        }
        if self.pid == std::process::id() {
            return false;
        }
        process_is_gone(self.pid, self.process_start)
    }
}

/// Whether process `pid` (that started at `start`, when known) no longer exists.
fn process_is_gone(pid: u32, start: Option<u64>) -> bool {
    if cfg!(target_os = "linux") && std::path::Path::new("/proc/self/stat").exists() {
        return match proc_stat(&pid.to_string()) {
            None => true,
            // A zombie has exited; only its exit status waits to be collected.
            Some(('Z' | 'X', _)) => true,
            Some((_, Some(now_start))) => start.is_some_and(|s| s != now_start),
            Some((_, None)) => false,
        };
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists and may be signalled; no
        // signal is sent. ESRCH means no such process.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, start);
        false
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} on {} (job {}, since {})",
            self.pid, self.host, self.job, self.since
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_child_is_gone() {
        let me = LockHolder::this_process("orders");
        assert!(!me.is_gone_from_this_machine());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = LockHolder {
            pid,
            process_start: None,
            ..me.clone()
        };
        if me.boot_id.is_some() && me.host != "localhost" && me.host != "unknown host" {
            assert!(gone.is_gone_from_this_machine(), "{gone:?}");
        }
        // Another machine's process, or one named only by a vague host, is never "gone".
        let elsewhere = LockHolder {
            host: "another-host".into(),
            ..gone.clone()
        };
        assert!(!elsewhere.is_gone_from_this_machine());
        let other_boot = LockHolder {
            boot_id: None,
            ..gone.clone()
        };
        assert!(!other_boot.is_gone_from_this_machine());
        // A live process is not gone; the same pid with another start time is a reused pid.
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let start = proc_stat(&sleeper.id().to_string()).and_then(|(_, s)| s);
        let live = LockHolder {
            pid: sleeper.id(),
            process_start: start,
            ..me.clone()
        };
        assert!(!live.is_gone_from_this_machine(), "{live:?}");
        let reused = LockHolder {
            process_start: start.map(|s| s + 1),
            ..live.clone()
        };
        if me.boot_id.is_some() && start.is_some() && me.host != "localhost" {
            assert!(reused.is_gone_from_this_machine(), "{reused:?}");
        }
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[test]
    fn lease_left_counts_from_the_last_renewal() {
        let h = LockHolder::this_process("orders").renewed_now(60);
        let left = h.lease_left(SystemTime::now()).unwrap();
        assert!(
            left > Duration::from_secs(55) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        let later = SystemTime::now() + Duration::from_secs(100);
        assert_eq!(h.lease_left(later), Some(Duration::ZERO));
        assert_eq!(
            LockHolder::this_process("x").lease_left(SystemTime::now()),
            None
        );
        // Old records (no new fields) still parse.
        let old = br#"{"host":"h","pid":1,"job":"j","since":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(LockHolder::parse(old).unwrap().pid, 1);
        assert_eq!(
            LockHolder::describe(old),
            "process 1 on h (job j, since 2026-01-01T00:00:00Z)"
        );
    }
}
