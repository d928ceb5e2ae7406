//! `postfix-dogstatsd check`: collect every instance once and show what was found and exactly
//! what would be sent, like `datadog-agent check postfix`; with `log:`, the mail flow of the
//! last minutes too (`recent`), counted as `run` counts it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use tokio::sync::watch;

use crate::collect::{self, Collection, Method};
use crate::config::{Config, Instance};
use crate::dogstatsd::{self, Sink, SinkError};
use crate::live::Live;
use crate::metrics::{self, Cycle, Kind, LogState, Status, Value};
use crate::recent::{self, grouped, Recent};

/// Runs the check and prints it; `Ok(true)` when every instance collected without error and
/// the mail log (when `log:` is on) could be read. `log_since`: how far back the log is read.
pub async fn run(config: &Config, send: bool, log_since: Duration) -> Result<bool, SinkError> {
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
    let mut flow = String::new();
    match &config.log {
        Some(log) => {
            // What `run` would follow, read from a time instead of its saved position.
            let (chosen, why) = crate::follow::choose(log, &cancel).await;
            let _ = writeln!(text, "mail log: {chosen} ({why})");
            let instances = crate::follow::instances(config);
            let recent = recent::read(log, &chosen, &instances, log_since, &cancel).await;
            all_ok &= recent.problem.is_none();
            write_flow(&mut flow, &recent, log_since);
        }
        None => text.push_str("mail log: off (no `log:` section, or `source: none`)\n"),
    }
    let _ = write!(text, "\n{table}{flow}\n");
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

/// The mail flow of the window: a line of totals, what the count covers when it is not the
/// whole window, any error, then one table per metric of the counts `run` would send for
/// these lines (tag names as columns), and the message sizes.
fn write_flow(out: &mut String, r: &Recent, window: Duration) {
    let unparsed: u64 = r.flush.unparsed.iter().map(|(_, n)| n).sum();
    let _ = writeln!(
        out,
        "mail flow, last {} (from {}): {} lines, {} not understood",
        crate::config::age_label(window.as_secs()),
        recent::local_text(r.since, r.now),
        grouped(r.flush.lines),
        grouped(unparsed)
    );
    for note in &r.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    if let Some(problem) = &r.problem {
        let _ = writeln!(out, "  error: {problem}");
    }
    // What `run` would send for these lines, as tables: the counts, each metric's own tags
    // as columns.
    let report = metrics::log_report(&r.flush, &LogState::default(), &[], &[]);
    let mut tables: Vec<(&str, Vec<Row<'_>>)> = Vec::new();
    for sample in &report.samples {
        let (Kind::Count, Value::Int(n)) = (sample.kind, sample.value) else {
            continue;
        };
        if sample.name == metrics::LOG_LINES {
            continue; // in the line of totals
        }
        let tags = sample
            .tags
            .iter()
            .map(|t| t.split_once(':').unwrap_or((t, "")))
            .collect();
        match tables.iter_mut().find(|(name, _)| *name == sample.name) {
            Some((_, rows)) => rows.push((tags, n)),
            None => tables.push((sample.name, vec![(tags, n)])),
        }
    }
    for (name, rows) in &tables {
        let mut header: Vec<String> = rows[0].0.iter().map(|(k, _)| k.to_uppercase()).collect();
        header.push("COUNT".to_owned());
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|(tags, n)| {
                let mut row: Vec<String> = tags.iter().map(|(_, v)| (*v).to_owned()).collect();
                row.push(grouped(*n));
                row
            })
            .collect();
        write_table(out, name, &header, &body, 1);
    }
    if !r.flush.sizes.is_empty() {
        let body: Vec<Vec<String>> = r
            .flush
            .sizes
            .iter()
            .map(|s| {
                let kept = s.bytes.len() as f64;
                let mean = s.bytes.iter().sum::<u64>() as f64 / kept.max(1.0);
                vec![
                    s.instance.clone(),
                    grouped((kept / s.rate).round() as u64),
                    grouped(mean.round() as u64),
                ]
            })
            .collect();
        let header = ["INSTANCE", "MESSAGES", "MEAN BYTES"].map(str::to_owned);
        write_table(out, metrics::MESSAGES_SIZE, &header, &body, 2);
    }
    out.push('\n');
}

/// A count's tags (name, value) and its value.
type Row<'a> = (Vec<(&'a str, &'a str)>, u64);

/// `title`, then the rows under their header, aligned: text columns to the left, the last
/// `numbers` columns to the right.
fn write_table(
    out: &mut String,
    title: &str,
    header: &[String],
    body: &[Vec<String>],
    numbers: usize,
) {
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let _ = writeln!(out, "  {title}");
    for row in std::iter::once(header).chain(body.iter().map(Vec::as_slice)) {
        let first_number = row.len().saturating_sub(numbers);
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i >= first_number {
                let _ = write!(line, "  {cell:>w$}");
            } else {
                let _ = write!(line, "  {cell:<w$}");
            }
        }
        out.push_str("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
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
