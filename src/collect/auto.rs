//! Method `auto`: use the least-privileged method that works on this host, tried in that
//! order: showq (a socket, group postdrop), postqueue (a setgid program,
//! authorized_mailq_users), scan (reads the queue directories), find (sudo). The first to
//! succeed is kept, and the choice and the reasons the others were passed over are logged and
//! shown by `check`. If every method fails, all their errors are reported and the choice is
//! made again at the next run.

use super::{Collection, InstanceSettings, Method, MethodConfig, MethodKind, Need, Reads};
use crate::exec::Limits;
use crate::postconf;
use crate::queue::FIND_ORDER;

/// The methods auto tries, least privilege first.
pub const ORDER: [MethodKind; 4] = [
    MethodKind::Showq,
    MethodKind::Postqueue,
    MethodKind::Scan,
    MethodKind::Find,
];

/// Auto reads what the methods it tries read, except find's `queues` (it counts the standard
/// ones).
pub const READS: Reads = Reads {
    config_directory: true,
    queue_directory: Need::Optional,
    queues: false,
    lists_messages: true,
};

/// Auto passes the instance's settings on to the method it tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options(pub InstanceSettings);

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options(s.clone())
    }
}

/// Auto's own failures are those of the methods it tried; it has none of its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {}

#[derive(Debug)]
pub struct Auto {
    settings: InstanceSettings,
    /// The method in use and why, once one worked.
    chosen: Option<(Box<Method>, String)>,
    postconf: postconf::Cache,
}

impl Auto {
    pub fn new(Options(settings): Options) -> Self {
        Auto {
            postconf: postconf::Cache::new(&settings.commands.postconf, &settings.config_directory),
            settings,
            chosen: None,
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        if let Some((method, why)) = &mut self.chosen {
            let mut c = Box::pin(method.collect(limits)).await;
            c.how = format!("auto: {} ({why})", c.how);
            return c;
        }
        let mut passed_over: Vec<String> = Vec::new();
        let mut errors = Vec::new();
        for mut method in self.candidates(limits).await {
            let mut c = Box::pin(method.collect(limits)).await;
            if c.errors.is_empty() {
                let why = if passed_over.is_empty() {
                    "the least privileged method, and it works".to_owned()
                } else {
                    format!("passed over: {}", passed_over.join("; "))
                };
                tracing::info!(method = method.name(), reason = %why, "method auto chose {}", method.name());
                c.how = format!("auto: {} ({why})", c.how);
                self.chosen = Some((Box::new(method), why));
                return c;
            }
            passed_over.push(format!("{}: {}", method.name(), c.error_text()));
            errors.append(&mut c.errors);
        }
        Collection {
            how: "auto: no method works".to_owned(),
            errors,
            ..Collection::default()
        }
    }

    /// The methods to try, in `ORDER`. A method that needs the queue directory (find) gets
    /// postconf's when `directory` is not given, and is left out when postconf cannot say.
    async fn candidates(&mut self, limits: &Limits) -> Vec<Method> {
        let mut settings = self.settings.clone();
        settings.queues = FIND_ORDER.iter().map(|q| q.to_string()).collect();
        let mut out = Vec::new();
        for kind in ORDER {
            let mut settings = settings.clone();
            if kind.reads().queue_directory == Need::Required && settings.queue_directory.is_none()
            {
                match self.postconf.get(limits).await {
                    Ok(params) => settings.queue_directory = Some(params.queue_directory),
                    Err(_) => continue,
                }
            }
            out.push(Method::new(&MethodConfig::Run(kind, Box::new(settings))));
        }
        out
    }
}
