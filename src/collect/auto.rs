//! Method `auto`: use the least-privileged method that works on this host, tried in that
//! order: showq (a socket, group postdrop), postqueue (a setgid program,
//! authorized_mailq_users), scan (reads the queue directories), find (sudo). The first to
//! succeed is kept, and the choice and the reasons the others were passed over are logged and
//! shown by `check`. If every method fails, all their errors are reported and the choice is
//! made again at the next run.

use std::path::PathBuf;

use super::{find, postqueue, scan, showq, Collection, Method};
use crate::exec::Limits;
use crate::postconf;
use crate::queue::FIND_ORDER;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_directory: PathBuf,
    pub postqueue: PathBuf,
    pub postconf: PathBuf,
    pub sudo: PathBuf,
    pub find: PathBuf,
    pub postfix_user: String,
    pub queue_directory: Option<PathBuf>,
    pub age_thresholds: Vec<u64>,
}

#[derive(Debug)]
pub struct Auto {
    options: Options,
    /// The method in use and why, once one worked.
    chosen: Option<(Box<Method>, String)>,
    postconf: postconf::Cache,
}

impl Auto {
    pub fn new(options: Options) -> Self {
        Auto {
            postconf: postconf::Cache::new(&options.postconf, &options.config_directory),
            options,
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

    /// The methods to try, least privilege first.
    async fn candidates(&mut self, limits: &Limits) -> Vec<Method> {
        let o = &self.options;
        let mut out = vec![
            Method::Showq(showq::Showq::new(showq::Options {
                config_directory: o.config_directory.clone(),
                postconf: o.postconf.clone(),
                age_thresholds: o.age_thresholds.clone(),
            })),
            Method::Postqueue(postqueue::Postqueue::new(postqueue::Options {
                config_directory: o.config_directory.clone(),
                postqueue: o.postqueue.clone(),
                postconf: o.postconf.clone(),
                age_thresholds: o.age_thresholds.clone(),
            })),
            Method::Scan(scan::Scan::new(scan::Options {
                config_directory: o.config_directory.clone(),
                postconf: o.postconf.clone(),
                queue_directory: o.queue_directory.clone(),
            })),
        ];
        let queue_directory = match &o.queue_directory {
            Some(d) => Some(d.clone()),
            None => self
                .postconf
                .get(limits)
                .await
                .ok()
                .map(|p| p.queue_directory),
        };
        if let Some(directory) = queue_directory {
            let o = &self.options;
            out.push(Method::Find(find::Find::new(find::Options {
                directory,
                queues: FIND_ORDER.iter().map(|q| q.to_string()).collect(),
                user: o.postfix_user.clone(),
                sudo: o.sudo.clone(),
                find: o.find.clone(),
            })));
        }
        out
    }
}
