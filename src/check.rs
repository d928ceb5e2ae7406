//! `postfix-dogstatsd check`: collect every instance once and show what was found and exactly
//! what would be sent, like `datadog-agent check postfix`.

use std::fmt::Write as _;
use std::io::Write as _;

use tokio::sync::watch;

use crate::collect::{self, Collection, Method};
use crate::config::{Config, Instance};
use crate::dogstatsd::{self, Sink, SinkError};
use crate::live::Live;
use crate::metrics::{self, Cycle, Status};

/// Runs the check and prints it; `Ok(true)` when every instance collected without error.
pub async fn run(config: &Config, send: bool) -> Result<bool, SinkError> {
    let sink = if send {
        Some(Sink::new(&config.target)?)
    } else {
        None
    };
    let (_keep, cancel) = watch::channel(false);
    let config = &crate::discover::expand(config.clone(), &cancel).await;
    let mut tasks = Vec::new();
    for instance in config.instances.clone() {
        let cancel = cancel.clone();
        tasks.push(tokio::spawn(async move {
            let mut method = Method::new(&instance.method);
            let (collection, duration) =
                collect::collect_once(&mut method, instance.timeout, &cancel, &Live::default())
                    .await;
            (instance, collection, duration)
        }));
    }
    let mut table = String::new();
    let mut lines = Vec::new();
    let mut all_ok = true;
    for task in tasks {
        let Ok((instance, collection, duration)) = task.await else {
            all_ok = false;
            continue;
        };
        let report = metrics::report(
            &instance,
            &config.global_tags,
            &collection,
            Cycle {
                duration: Some(duration),
                skipped: 0,
            },
        );
        all_ok &= report.check.status == Status::Ok;
        write_instance(
            &mut table,
            &instance,
            &collection,
            report.check.status,
            duration.as_secs_f64(),
        );
        lines.extend(dogstatsd::report_lines(&report));
    }
    let mut text = format!("config: {}\ntarget: {}\n", config.source, config.target);
    if let Some(log) = &config.log {
        // What `run` would follow; its counts come from `run`, which keeps a position.
        let (chosen, why) = crate::follow::choose(log, &cancel).await;
        let _ = writeln!(text, "mail log: {chosen} ({why})");
    }
    let _ = write!(text, "\n{table}\n");
    write_series(&mut text, config, &lines);
    match &sink {
        Some(sink) => match sink.send(&lines) {
            Ok(()) => {
                let _ = writeln!(text, "DogStatsD lines (sent to {}):", config.target);
            }
            Err(e) => {
                // Not sent is a failed check: exit non-zero, and say why.
                all_ok = false;
                let _ = writeln!(
                    text,
                    "DogStatsD lines (NOT sent: {}):",
                    crate::error_chain(&e)
                );
            }
        },
        None => text.push_str("DogStatsD lines (not sent; --send sends them):\n"),
    }
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    // A reader that stops early (`| head`) is not an error worth a panic.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(all_ok)
}

fn write_instance(
    out: &mut String,
    instance: &Instance,
    c: &Collection,
    status: Status,
    secs: f64,
) {
    let status = match status {
        Status::Ok => "OK",
        Status::Critical => "CRITICAL",
    };
    let how = if c.how.is_empty() {
        instance.method.name()
    } else {
        &c.how
    };
    let _ = writeln!(out, "{}: {status} ({how}, {secs:.3} s)", instance.label());
    // Every queue the instance asked for gets a row: a number, or "error" when it was not read.
    let wanted = c.queue_names();
    let listed = c.snapshot.queues.iter().any(|q| q.listing.is_some());
    if !wanted.is_empty() {
        let _ = write!(out, "  {:<10} {:>10}", "QUEUE", "MESSAGES");
        if listed {
            let _ = write!(
                out,
                " {:>12} {:>10} {:>10}",
                "BYTES", "RECIPIENTS", "OLDEST(s)"
            );
        }
        out.push('\n');
    }
    for q in wanted {
        match c.snapshot.get(q) {
            Some(stats) => {
                let _ = write!(out, "  {q:<10} {:>10}", stats.messages);
                if let Some(l) = &stats.listing {
                    let _ = write!(
                        out,
                        " {:>12} {:>10} {:>10}",
                        l.bytes, l.recipients, l.oldest_age
                    );
                }
                out.push('\n');
            }
            None => {
                let _ = writeln!(out, "  {q:<10} {:>10}", "error");
            }
        }
    }
    for e in &c.errors {
        let _ = writeln!(out, "  error: {}", crate::error_chain(e));
    }
    out.push('\n');
}

/// What the config costs in Datadog custom metrics: the series sent this cycle, and the most
/// each instance can send, metric by metric.
fn write_series(text: &mut String, config: &Config, lines: &[String]) {
    let sent = lines.iter().filter(|l| !l.starts_with("_sc|")).count();
    let mut most_total = 0;
    let mut rows = String::new();
    for instance in &config.instances {
        let most = metrics::most_series(instance);
        let n: usize = most.iter().map(|(_, n)| n).sum();
        most_total += n;
        let per: Vec<String> = most.iter().map(|(name, n)| format!("{name} {n}")).collect();
        let _ = writeln!(rows, "  {}: {n} ({})", instance.label(), per.join(", "));
    }
    let _ = writeln!(
        text,
        "series (each a Datadog custom metric): {sent} sent this cycle, at most {most_total} per cycle\n{rows}"
    );
}
