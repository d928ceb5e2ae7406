//! The config as users write it: every invalid case gives its exact message (golden files),
//! Datadog's own example configs and every file in examples/ validate.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use common::*;

fn yaml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in {dir}");
    files
}

#[test]
fn valid_configs_validate() {
    let mut files = yaml_files("examples");
    files.extend(yaml_files("tests/config/valid"));
    for f in files {
        let out = run(&["validate", "-c", f.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            stderr(&out)
        );
        assert!(stdout(&out).contains(": valid: "), "{}", stdout(&out));
    }
}

#[test]
fn invalid_configs_give_every_problem_with_exit_78() {
    for f in yaml_files("tests/config/invalid") {
        let out = run(&["validate", "-c", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(78), "{}", f.display());
        let name = f
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".yaml", ".txt");
        let text = stderr(&out).replace(&repo("").display().to_string(), "<repo>/");
        golden(&format!("config/{name}"), &text);
    }
}

#[test]
fn datadog_example_semantics() {
    // Datadog's example (find mode): gauges per listed queue, tagged with the directory basename.
    let out = run(&[
        "validate",
        "-c",
        repo("tests/config/valid/datadog-conf.yaml.example.yaml")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(
        stdout(&out).lines().nth(1),
        Some("  instances[0] (find postfix)")
    );
}

#[test]
fn bad_environment_is_a_config_error() {
    let out = run_env(
        &[
            "validate",
            "-c",
            repo("examples/postqueue.yaml").to_str().unwrap(),
        ],
        &[("DD_DOGSTATSD_URL", "tcp://nope")],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out)
        .contains("environment DD_DOGSTATSD_URL: \"tcp://nope\" is not a udp:// or unix:// URL"));
}

#[test]
fn usage_errors_exit_2_and_help_shows_defaults() {
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    let help = stdout(&run(&["--help"]));
    for want in [
        "run",
        "check",
        "validate",
        "--config",
        "--log-format",
        "[default: text]",
        "/etc/postfix-dogstatsd/config.yaml",
    ] {
        assert!(help.contains(want), "--help lacks {want}:\n{help}");
    }
}

#[test]
fn directory_is_the_queue_directory_for_every_method_that_reads_it() {
    // Datadog's `directory` is `postconf -h queue_directory`: adding `method: scan` or
    // `method: auto` to a find config keeps it.
    let s = Scratch::new();
    for method in ["scan", "auto"] {
        let config = s.config(&format!(
            "instances:\n  - {{method: {method}, directory: /var/spool/postfix}}\n"
        ));
        let out = run(&["validate", "-c", config.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{method}: {}", stderr(&out));
    }
    // `queue_directory` is another name for it: the same value twice is fine, two are not.
    let config = s.config(
        "instances:\n  - {method: scan, directory: /var/spool/postfix, queue_directory: /var/spool/postfix/}\n  - {method: find, queue_directory: /var/spool/postfix, queues: [deferred]}\n",
    );
    let out = run(&["validate", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let config = s.config(
        "instances:\n  - {method: auto, directory: /var/spool/postfix, queue_directory: /srv/spool}\n",
    );
    let out = run(&["validate", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("instances[0].queue_directory: `directory` already says the queue directory is /var/spool/postfix"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn only_a_regular_file_of_bounded_size_is_read() {
    let s = Scratch::new();
    let fifo = s.path("config.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Neither blocks nor reads without end: refused from what the open file is.
    for path in ["/dev/zero".as_ref(), fifo.as_path()] {
        let out = run(&["validate", "-c", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("it is not a regular file"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn running_as_root_refuses_what_others_may_change() {
    if !is_root() {
        eprintln!("SKIPPED: only root refuses (run as root, as CI does)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let config = s.write("config.yaml", "instances:\n  - method: postqueue\n");
    // Scratch files are 0666: writable by all.
    let out = run(&["validate", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not to be trusted: it is owned by uid 0 with mode 666"),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        run(&["validate", "-c", config.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    // A program it names, in a directory others may write.
    let bin = s.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::copy("/bin/true", bin.join("postqueue")).unwrap();
    std::fs::write(
        &config,
        format!(
            "commands: {{postqueue: {}/postqueue}}\ninstances:\n  - method: postqueue\n",
            bin.display()
        ),
    )
    .unwrap();
    let out = run(&["validate", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("with mode 777"), "{}", stderr(&out));
}

/// What a packaged install costs in Datadog custom metrics, at most, per cycle: 70 series
/// leaves 30 of the 100 custom metrics a Datadog Pro plan includes per host for the log
/// families. A change that pushes the default over it fails here.
const DEFAULT_SERIES_BUDGET: usize = 70;

#[test]
fn the_packaged_default_stays_within_its_series_budget() {
    // The built-in default (no config file at all) is held to the same budget in config.rs.
    {
        let config = repo("packaging/config.yaml");
        let out = run(&["check", "-c", config.to_str().unwrap()]);
        let text = stdout(&out);
        let most: usize = text
            .lines()
            .find_map(|l| {
                l.split_once(", at most ")?
                    .1
                    .strip_suffix(" per cycle")?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no series line: {text}"));
        assert!(most <= DEFAULT_SERIES_BUDGET, "{most} series: {text}");
        assert!(most >= 60, "the count looks wrong: {text}");
    }
}

/// Every key the README's configuration tables document appears in examples/full.yaml, "with
/// every key".
#[test]
fn full_example_has_every_documented_key() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let tables = readme
        .split("### Datadog keys")
        .nth(1)
        .and_then(|rest| rest.split("### Scheduling and reload").next())
        .expect("the README's key tables");
    let example = std::fs::read_to_string(repo("examples/full.yaml")).unwrap();
    let has = |key: &str| {
        example.lines().any(|l| {
            l.trim_start()
                .trim_start_matches("- ")
                .starts_with(&format!("{key}:"))
        })
    };
    let mut keys = 0;
    for row in tables.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        for documented in first.split('`').skip(1).step_by(2) {
            // `instances[].metric_patterns.include`, `.exclude`, `commands.*`: the last name.
            let name = documented.rsplit('.').next().unwrap();
            if name == "*" {
                continue;
            }
            keys += 1;
            assert!(
                has(name),
                "examples/full.yaml lacks `{documented}` ({name}:)"
            );
        }
    }
    assert!(keys >= 25, "only {keys} keys found in the README tables");
}

#[test]
fn version_exit_78_from_every_command_and_json_logs() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).starts_with(&format!("postfix-dogstatsd {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        stdout(&out)
    );
    let s = Scratch::new();
    let bad = s.config("instances: [{method: nonsense}]\n");
    for command in ["run", "check", "validate"] {
        let out = run(&[command, "-c", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(78), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("unknown method"),
            "{command}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn running_as_root_a_link_is_only_as_safe_as_its_directory() {
    if !is_root() {
        eprintln!("SKIPPED: only root refuses (run as root, as CI does)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let config = s.write("safe/config.yaml", "instances:\n  - method: postqueue\n");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A root-owned, safe file, named through a link in a directory anyone may write.
    let open = s.path("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&config, open.join("config.yaml")).unwrap();
    assert_eq!(
        run(&["validate", "-c", config.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let out = run(&["validate", "-c", open.join("config.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("with mode 777"), "{}", stderr(&out));
}

#[test]
fn without_a_config_file_the_built_in_default_runs() {
    if std::path::Path::new("/etc/postfix-dogstatsd/config.yaml").exists() {
        eprintln!("SKIPPED: the packaged config is installed here, so it is the default");
        return;
    }
    let out = run(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("built-in default config (/etc/postfix-dogstatsd/config.yaml does not exist): valid: 1 instance"),
        "{text}"
    );
    assert!(text.contains("(postqueue /etc/postfix)"), "{text}");
}
