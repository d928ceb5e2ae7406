//! The long-running daemon: start the schedules, then wait for signals. SIGHUP reloads (a bad
//! new config is logged and the running one kept), SIGTERM and SIGINT stop: running children
//! are killed, the last lines flushed, and the process exits 0. systemd hears about each step
//! through sd_notify (every call is a no-op without NOTIFY_SOCKET).

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{self, Config, ConfigErrors, DatadogEnv, Source};
use crate::discover;
use crate::dogstatsd::{Sink, SinkError};
use crate::follow::LogTask;
use crate::schedule::Generation;

/// How long a stop waits for running collections to end (their children get SIGTERM, then
/// SIGKILL after 2 s); systemd's default stop timeout is far longer, our promise is 5 s.
const STOP_WAIT: Duration = Duration::from_millis(4500);

#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error(transparent)]
    Config(ConfigErrors),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("cannot listen for signals")]
    Signal(#[source] std::io::Error),
}

pub async fn run(source: Source, env: DatadogEnv) -> Result<(), Fatal> {
    // Before anything else: SIGHUP's default action would end the process.
    let mut hup = signal(SignalKind::hangup()).map_err(Fatal::Signal)?;
    let mut term = signal(SignalKind::terminate()).map_err(Fatal::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Fatal::Signal)?;

    let (stop, stopping) = watch::channel(false);
    let config = config::load(&source, &env).map_err(Fatal::Config)?;
    let config = Arc::new(discover::expand(config, &stopping).await);
    announce(&config);
    let mut sink = Sink::new(&config.target)?;
    let lives = crate::schedule::Lives::default();
    let mut generation = Generation::start(&config, &sink, &stopping, &lives);
    let mut log = start_log(&config, &sink);
    let mut retired: Vec<JoinHandle<()>> = Vec::new();
    notify(&[NotifyState::Ready]);
    let watchdog = sd_notify::watchdog_enabled().map(|period| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period / 2);
            loop {
                tick.tick().await;
                notify(&[NotifyState::Watchdog]);
            }
        })
    });

    loop {
        tokio::select! {
            _ = hup.recv() => {
                let mut states = vec![NotifyState::Reloading];
                states.extend(NotifyState::monotonic_usec_now().ok());
                notify(&states);
                match reload(&source, &env, &stopping).await {
                    Ok((config, new_sink)) => {
                        announce(&config);
                        retired.extend(generation.retire());
                        sink = new_sink;
                        generation = Generation::start(&config, &sink, &stopping, &lives);
                        // The old log task flushes and saves its position before the new
                        // one loads it: no line counted twice across a reload.
                        stop_log(log.take()).await;
                        log = start_log(&config, &sink);
                        tracing::info!("reloaded: the new config is running");
                    }
                    Err(e) => tracing::error!("reload failed, the running config stays in place: {}", crate::error_chain(&e)),
                }
                retired.retain(|h| !h.is_finished());
                notify(&[NotifyState::Ready]);
            }
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
        }
    }

    notify(&[NotifyState::Stopping]);
    let _ = stop.send(true);
    if let Some(w) = watchdog {
        w.abort();
    }
    retired.extend(generation.retire());
    // The log's last flush and save happen here, within the same wait.
    retired.extend(log.map(LogTask::retire));
    let all = async {
        for h in retired {
            let _ = h.await;
        }
    };
    if tokio::time::timeout(STOP_WAIT, all).await.is_err() {
        tracing::warn!("some collections did not end in time; exiting anyway");
    }
    Ok(())
}

async fn reload(
    source: &Source,
    env: &DatadogEnv,
    cancel: &crate::exec::Cancel,
) -> Result<(Arc<Config>, Sink), Fatal> {
    let config = config::load(source, env).map_err(Fatal::Config)?;
    let config = discover::expand(config, cancel).await;
    let sink = Sink::new(&config.target)?;
    Ok((Arc::new(config), sink))
}

fn start_log(config: &Config, sink: &Sink) -> Option<LogTask> {
    config.log.as_ref().map(|log| {
        LogTask::start(
            log,
            crate::follow::instances(config),
            &config.global_tags,
            sink,
        )
    })
}

/// Retires the log task and waits for its last flush, at most `STOP_WAIT`.
async fn stop_log(log: Option<LogTask>) {
    let Some(log) = log else { return };
    if tokio::time::timeout(STOP_WAIT, log.retire()).await.is_err() {
        tracing::warn!("the log task did not finish its last flush in time");
    }
}

fn announce(config: &Config) {
    for note in &config.notes {
        tracing::info!("{note}");
    }
    tracing::info!(
        config = %config.source,
        target = %config.target,
        instances = config.instances.len(),
        "collecting"
    );
    for i in &config.instances {
        tracing::info!(
            instance = %i.label(),
            interval = i.interval.as_secs_f64(),
            timeout = i.timeout.as_secs_f64(),
            "instance scheduled"
        );
    }
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}
