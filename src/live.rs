//! What of an instance is still alive: a run in progress, a directory walk or a socket reader
//! that outlived its deadline, a command run through sudo that we may not kill. The scheduler
//! starts no run of an instance while any of it lives (it skips and counts the run instead), so
//! a stuck spool or a hung command never piles up copies of itself.

use std::sync::{Arc, Mutex};

/// The live work of one instance, shared by everything that may outlive a run.
#[derive(Debug, Clone, Default)]
pub struct Live(Arc<Mutex<Works>>);

#[derive(Debug, Default)]
struct Works {
    next: u64,
    alive: Vec<(u64, String)>,
}

/// Held while the work it names lives; dropping it says the work is over.
#[derive(Debug)]
#[must_use = "the work counts as alive only while its guard is held"]
pub struct Guard {
    live: Live,
    id: u64,
}

impl Live {
    /// Records `what` as alive until the guard is dropped.
    pub fn hold(&self, what: impl Into<String>) -> Guard {
        let mut w = self.lock();
        w.next += 1;
        let id = w.next;
        w.alive.push((id, what.into()));
        Guard {
            live: self.clone(),
            id,
        }
    }

    /// Records `what` as alive, unless something already is: then what that is. One lock for
    /// the look and the record, so two runs can never both find the instance idle.
    pub fn try_hold(&self, what: impl Into<String>) -> Result<Guard, String> {
        let mut w = self.lock();
        if !w.alive.is_empty() {
            return Err(describe(&w));
        }
        w.next += 1;
        let id = w.next;
        w.alive.push((id, what.into()));
        Ok(Guard {
            live: self.clone(),
            id,
        })
    }

    /// What is alive, for a log line and a message: `None` when nothing is.
    pub fn describe(&self) -> Option<String> {
        let w = self.lock();
        (!w.alive.is_empty()).then(|| describe(&w))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Works> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn describe(w: &Works) -> String {
    w.alive
        .iter()
        .map(|(_, what)| what.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.live.lock().alive.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_while_held() {
        let live = Live::default();
        assert_eq!(live.describe(), None);
        let a = live.hold("a walk of /q/deferred");
        let b = live.clone().hold("`sudo find`");
        assert_eq!(
            live.describe().as_deref(),
            Some("a walk of /q/deferred; `sudo find`")
        );
        drop(a);
        assert_eq!(live.describe().as_deref(), Some("`sudo find`"));
        let refused = live.try_hold("another run").unwrap_err();
        assert_eq!(refused, "`sudo find`");
        drop(b);
        assert_eq!(live.describe(), None);
        let _run = live.try_hold("a run").unwrap();
        assert!(live.try_hold("a second run").is_err());
    }
}
