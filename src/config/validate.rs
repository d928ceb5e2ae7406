//! The top of the config: the document, `init_config`, `dogstatsd`, `commands` and the list of
//! `instances` (each checked by `instance`), then the `DD_*` environment.

use serde_yaml::{Mapping, Value};

use super::env::{self, DatadogEnv, UrlError};
use super::instance::{self, Defaults};
use super::yaml::{keys, kind, Node, Walker};
use super::{Config, ConfigError, DEFAULT_POSTFIX_USER};
use crate::collect::{Commands, MethodConfig, MethodKind};

keys! {
    /// The top level of the file.
    TopKey {
        InitConfig = "init_config",
        Instances = "instances",
        Logs = "logs",
        Log = "log",
        Dogstatsd = "dogstatsd",
        Commands = "commands",
    }
}

keys! {
    /// `init_config:`.
    InitKey {
        PostfixUser = "postfix_user",
        Postqueue = "postqueue",
        Service = "service",
    }
}

keys! {
    /// `dogstatsd:`.
    DogstatsdKey {
        Url = "url",
        Tags = "tags",
    }
}

pub fn validate(tree: &Value, env: &DatadogEnv) -> Result<Config, Vec<ConfigError>> {
    let mut w = Walker::default();
    let empty = Mapping::new();
    let top = match tree {
        Value::Mapping(m) => m,
        Value::Null => {
            w.error(
                "(document)",
                "the file is empty",
                Some("it needs at least `instances:` with one instance"),
            );
            return Err(w.finish());
        }
        other => {
            w.error(
                "(document)",
                format!(
                    "expected a mapping with `init_config` and `instances`, found {}",
                    kind(other)
                ),
                None,
            );
            &empty
        }
    };
    let top: Node<TopKey> = w.root(top, "");
    let mut notes = Vec::new();
    if top.contains(TopKey::Logs) {
        notes.push(
            "the `logs:` section configures the Datadog Agent's log shipping; it is ignored here"
                .to_owned(),
        );
    }
    let commands = w.commands(&top, TopKey::Commands, &Commands::default());
    let defaults = init_config(&mut w, &top, &commands);
    // Agent 5 read the interval here; the Python check then ignored it. Say where it goes.
    if let Some(e) = w
        .errors
        .iter_mut()
        .find(|e| e.path == "init_config.min_collection_interval")
    {
        e.hint = Some(
            "Agent 5 read it here, Agent 6 and 7 ignore it: write `min_collection_interval` on each instance instead"
                .to_owned(),
        );
    }

    let dsd: Node<DogstatsdKey> = w.child(&top, TopKey::Dogstatsd);
    let file_target = w.string(&dsd, DogstatsdKey::Url).and_then(|url| {
        env::parse_url(&url)
            .map_err(|e| {
                w.error(
                    &dsd.at(DogstatsdKey::Url),
                    e.to_string(),
                    Some(UrlError::HINT),
                )
            })
            .ok()
    });
    let mut global_tags = w.tags(&dsd, DogstatsdKey::Tags);

    let log = super::log::from_yaml(&mut w, &top, TopKey::Log, top.get(TopKey::Logs), &commands);
    let instances = instances(&mut w, &top, &defaults, &mut notes);
    let sudoes = instances.iter().any(|i| {
        matches!(
            i.method,
            MethodConfig::Run(MethodKind::Find | MethodKind::Auto, _)
        )
    });
    if sudoes && !defaults.postfix_user_given {
        notes.push(format!(
            "init_config.postfix_user is not set: method find runs `sudo -n -u {DEFAULT_POSTFIX_USER} find ...` (the queue's owner), not `sudo -u root` as the Datadog check did; sudoers lines must allow ({DEFAULT_POSTFIX_USER}) or (ALL)"
        ));
    }
    let (target, env_tags) = env::resolve(file_target, env, &mut w.errors);
    global_tags.extend(env_tags);
    if !w.errors.is_empty() {
        return Err(w.finish());
    }
    Ok(Config {
        source: String::new(),
        target,
        global_tags,
        instances,
        log,
        notes,
    })
}

/// What `init_config` and the top-level `commands` give every instance.
fn init_config(w: &mut Walker, top: &Node<TopKey>, commands: &Commands) -> Defaults {
    let init: Node<InitKey> = w.child(top, TopKey::InitConfig);
    Defaults {
        postfix_user: w
            .user_name(&init, InitKey::PostfixUser)
            .unwrap_or_else(|| DEFAULT_POSTFIX_USER.to_owned()),
        postfix_user_given: init.contains(InitKey::PostfixUser),
        use_postqueue: w.bool(&init, InitKey::Postqueue).unwrap_or(false),
        service: w.tag_value(&init, InitKey::Service),
        commands: commands.clone(),
    }
}

fn instances(
    w: &mut Walker,
    top: &Node<TopKey>,
    defaults: &Defaults,
    notes: &mut Vec<String>,
) -> Vec<super::Instance> {
    let path = top.at(TopKey::Instances);
    let list = match top.get(TopKey::Instances) {
        None => {
            w.error(
                &path,
                "missing",
                Some("add at least one instance, e.g. `instances: [{config_directory: /etc/postfix}]`"),
            );
            return Vec::new();
        }
        Some(Value::Sequence(list)) if list.is_empty() => {
            w.error(
                &path,
                "the list is empty",
                Some("add at least one instance"),
            );
            return Vec::new();
        }
        Some(Value::Sequence(list)) => list,
        Some(other) => {
            w.error(
                &path,
                format!("expected a list, found {}", kind(other)),
                Some("write each instance as a `- ` item"),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Value::Mapping(m) = item else {
            w.error(
                &item_path,
                format!("expected a mapping, found {}", kind(item)),
                None,
            );
            continue;
        };
        out.extend(instance::instance(w, m, &item_path, defaults, notes));
    }
    out
}
