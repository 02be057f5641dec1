//! Where "now" comes from, and how a wait is waited: injected, so that token expiry, refresh
//! and retry pacing are tested with a fake clock instead of real sleeps. Everything that
//! reads the time to decide something (a credential's freshness, a handed-in token's expiry,
//! a retry's deadline) takes a [`Clock`]; everything that waits takes a [`Sleeper`].
//!
//! This module sits at the bottom of the crate: it names nothing else in it.

use std::time::{Duration, SystemTime};

/// Where "now" comes from (a fake in tests).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;

    /// How long since `earlier`; zero when the clock says `earlier` is still to come (a
    /// wall clock set back).
    fn since(&self, earlier: SystemTime) -> Duration {
        self.now().duration_since(earlier).unwrap_or(Duration::ZERO)
    }
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How a wait is waited (a fake in tests advances its clock instead of sleeping).
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    async fn sleep(&self, duration: Duration);
}

/// Waits on the tokio timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait::async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A clock that only moves when told to, and a sleeper that moves it instead of waiting:
/// for tests of expiry, refresh and retry pacing, here and in other modules.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FakeClock {
    now: std::sync::Mutex<SystemTime>,
    slept: std::sync::Mutex<Vec<Duration>>,
}

#[cfg(test)]
impl FakeClock {
    pub(crate) fn at(now: SystemTime) -> Self {
        Self {
            now: std::sync::Mutex::new(now),
            slept: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Every wait asked of it, in order.
    pub(crate) fn slept(&self) -> Vec<Duration> {
        self.slept.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
#[async_trait::async_trait]
impl Sleeper for FakeClock {
    async fn sleep(&self, duration: Duration) {
        self.slept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(duration);
        self.advance(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fake_sleeper_advances_its_clock_instead_of_waiting() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = FakeClock::at(t0);
        let started = std::time::Instant::now();
        clock.sleep(Duration::from_secs(3600)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(clock.since(t0), Duration::from_secs(3600));
        assert_eq!(clock.slept(), vec![Duration::from_secs(3600)]);
        // A clock set back does not make elapsed time negative.
        assert_eq!(clock.since(t0 + Duration::from_secs(7200)), Duration::ZERO);
    }
}
