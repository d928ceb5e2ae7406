//! Method `scan`: read an instance's queue directories directly (no fork, no socket), every
//! queue `corrupt` included, and from each queue file and its defer log what `postqueue -j`
//! lists: sizes, arrival times, recipients with their delay reasons (SPEC 8). Files are read
//! the way showq reads them (`listing::qfile`, `listing::defer`), and only when they may have
//! changed: the first cycle reads every file, later ones list the directories (one `stat` per
//! file) and read what is new or changed (`cache`).
//!
//! Reading the queue directories and files takes uid postfix or root, `CAP_DAC_READ_SEARCH`,
//! or ACLs granting read and search (README: Methods and permissions).

pub mod cache;

use std::ffi::OsString;
use std::io::{self, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use cache::{Cache, Stat, Summary, Verdict};

use super::listing::qfile::{self, Bytes, End, Meta, Rules};
use super::{Collection, InstanceSettings, Need, Reads};
use crate::exec::{Limits, Stopped};
use crate::postconf;
use crate::queue::{self, Hashing, ACTIVE, CORRUPT, DEFER, DEFERRED, HOLD, SCANNED};
use crate::snapshot::{distinct_by, domain_of, ListingRules};
use crate::walk::{read_dir_level, WalkError};

/// Threads sharing one scan at most.
const SCAN_THREADS: usize = 4;
/// Files the walk hands over at a time.
const BATCH: usize = 1024;
/// Files a reader takes at a time.
const READ_BATCH: usize = 64;
/// Files larger than this are read without their message content when the size record says
/// where it is (showq seeks over it too).
const SPARSE_ABOVE: u64 = 256 << 10;
/// The most of one file read: Postfix's own are far smaller (`message_size_limit`).
const MAX_READ: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_directory: PathBuf,
    pub postconf: PathBuf,
    /// The queue directory; when `None` it is read with postconf (hourly).
    pub queue_directory: Option<PathBuf>,
    /// Seconds of each `postfix.queue.older_than` series.
    pub age_thresholds: Vec<u64>,
}

/// Scan reads every queue under the queue directory: `directory`, or postconf's.
pub const READS: Reads = Reads {
    config_directory: true,
    queue_directory: Need::Optional,
    queues: false,
    lists_messages: true,
};

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options {
            config_directory: s.config_directory.clone(),
            postconf: s.commands.postconf.clone(),
            queue_directory: s.queue_directory.clone(),
            age_thresholds: s.age_thresholds.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Scan {
    options: Options,
    postconf: postconf::Cache,
    /// What the last cycles read, shared with the blocking walk (one at a time: `live`).
    cache: Arc<Mutex<Cache>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("queue {queue}: permission denied: cannot {what} {}: {fix} (README: Methods and permissions)", path.display())]
    Denied {
        queue: String,
        path: PathBuf,
        what: &'static str,
        fix: &'static str,
    },
    #[error("queue {queue}: cannot read {}", path.display())]
    Walk {
        queue: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the directory scan {0}")]
    Stopped(Stopped),
    #[error("cannot read the Postfix parameters")]
    Postconf(#[from] postconf::Error),
}

/// What the method needs to know of the Postfix instance to read its files.
#[derive(Debug, Clone)]
struct Layout {
    dir: PathBuf,
    hashing: Hashing,
    rules: Rules,
}

impl Scan {
    pub fn new(options: Options) -> Self {
        Scan {
            postconf: postconf::Cache::new(&options.postconf, &options.config_directory),
            options,
            cache: Arc::new(Mutex::new(Cache::new(&SCANNED))),
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        let mut collection = Collection {
            how: "directory scan".to_owned(),
            ..Collection::default()
        };
        let layout = match &self.options.queue_directory {
            // Given the directory, the method forks nothing: Postfix's default hashing.
            Some(dir) => Layout {
                dir: dir.clone(),
                hashing: Hashing::default(),
                rules: Rules::default(),
            },
            None => match self.postconf.get(limits).await {
                Ok(params) => {
                    collection.postfix_version = Some(params.mail_version);
                    Layout {
                        dir: params.queue_directory,
                        hashing: params.hashing,
                        rules: Rules {
                            utf8: params.utf8,
                            ..Rules::default()
                        },
                    }
                }
                Err(e) => {
                    collection.errors.push(Error::from(e).into());
                    return collection;
                }
            },
        };
        let held = limits
            .live
            .hold(format!("a scan of {}", layout.dir.display()));
        let deadline = limits.deadline.into_std();
        let cache = self.cache.clone();
        let rules = ListingRules::now(&self.options.age_thresholds);
        let walk = tokio::task::spawn_blocking(move || {
            let _held = held;
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            scan(&mut cache, &layout, &rules, deadline)
        });
        match crate::exec::within(limits, tokio::time::Instant::now(), walk).await {
            Ok(Ok(scanned)) => {
                collection.snapshot = scanned.snapshot;
                collection.files_read = Some(scanned.files_read);
                collection
                    .errors
                    .extend(scanned.errors.into_iter().map(Into::into));
            }
            Ok(Err(join)) => {
                // The walk itself failed (a panic): say so, not "shutting down".
                collection.errors.push(
                    Error::Walk {
                        queue: "all".to_owned(),
                        path: PathBuf::new(),
                        source: io::Error::other(join.to_string()),
                    }
                    .into(),
                );
            }
            Err(stopped) => collection.errors.push(Error::Stopped(stopped).into()),
        }
        collection
    }
}

/// What one scan found.
#[derive(Debug)]
pub struct Scanned {
    /// The queues read, in `SCANNED` order; a queue that failed is left out.
    pub snapshot: crate::snapshot::Snapshot,
    /// Queue files and defer logs read (not only listed).
    pub files_read: u64,
    pub errors: Vec<Error>,
}

/// What the walk hands over, directory by directory.
#[derive(Debug)]
enum Walked {
    /// A directory about to be listed, with its mtime and ctime before the listing.
    Dir(Arc<Path>, i64, i64),
    /// Files of the directory announced last by this walker.
    Files(Vec<Found>),
    /// The directory is listed, and whether it had no subdirectories.
    Done(Arc<Path>, bool),
    /// A settled directory left unlisted: its times are the same.
    Kept(PathBuf),
    Failed(usize, WalkError),
}

/// A file the walk found.
#[derive(Debug)]
struct Found {
    queue: usize,
    dir: Arc<Path>,
    name: OsString,
    stat: Stat,
}

impl Found {
    fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

/// One scan of every queue under `layout.dir`, as a pipeline in bounded memory: walkers list
/// the directories (one `stat` a file) and hand files over in batches; this thread asks the
/// cache about each and hands those to read to the readers, whose results it stores as they
/// come; then what was not seen is dropped and the rest added up.
fn scan(cache: &mut Cache, layout: &Layout, rules: &ListingRules, deadline: Instant) -> Scanned {
    let mut failed: Vec<Option<Error>> = SCANNED.iter().map(|_| None).collect();
    let mut files_read = 0;
    cache.start_cycle();
    // A directory changed within the last two seconds may change again within the same
    // clock tick of its mtime: it is listed again next time.
    let settled_before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
        - 2_000_000_000;
    let settled = cache.settled_dirs();
    let settled = &settled;
    let roots: Vec<(usize, PathBuf, usize)> = SCANNED
        .iter()
        .enumerate()
        .map(|(i, q)| (i, layout.dir.join(q), 0))
        .collect();
    let done: Mutex<Vec<ReadOne>> = Mutex::new(Vec::new());
    let store = |cache: &mut Cache, failed: &mut Vec<Option<Error>>, files_read: &mut u64| {
        let finished = std::mem::take(&mut *done.lock().unwrap_or_else(|p| p.into_inner()));
        for r in finished {
            match r.result {
                Ok(Some(got)) => {
                    *files_read += got.files_read;
                    let (q, stat) = (r.found.queue, &r.found.stat);
                    cache.store(q, r.dir, r.path, stat, got.defer_ctime, got.summary);
                }
                // Gone since the walk (delivered, moved): the next walk sees where it went.
                Ok(None) => cache.unsettle(r.dir),
                Err((path, source, what)) => {
                    cache.unsettle(r.dir);
                    let q = r.found.queue;
                    failed[q].get_or_insert_with(|| error(SCANNED[q], path, source, what));
                }
            }
        }
    };
    // Files to read go to the readers in small batches: one hand-over (and its futex calls)
    // per file cost more than reading it.
    let (read_tx, read_rx) = sync_channel::<Vec<(Found, u32, u64)>>(BATCH / READ_BATCH);
    let read_rx = Mutex::new(read_rx);
    std::thread::scope(|s| {
        let (found_tx, found_rx) = sync_channel::<Walked>(16);
        s.spawn(move || {
            let tx = &found_tx;
            pool(roots, |(q, dir, depth), more| {
                walk_dir(q, &dir, depth, deadline, settled, more, tx);
            });
        });
        let (done, read_rx) = (&done, &read_rx);
        s.spawn(move || {
            pool(vec![(); threads()], |(), _| {
                let mut bufs = Buffers::default();
                loop {
                    let job = read_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(batch) = job else { return };
                    let read: Vec<ReadOne> = batch
                        .into_iter()
                        .map(|(f, dir, path)| {
                            let result = if Instant::now() >= deadline {
                                Err((
                                    f.path(),
                                    io::Error::new(
                                        io::ErrorKind::TimedOut,
                                        "the scan reached its deadline",
                                    ),
                                    "read",
                                ))
                            } else {
                                read_message(layout, &f, &mut bufs)
                            };
                            ReadOne {
                                found: f,
                                dir,
                                path,
                                result,
                            }
                        })
                        .collect();
                    done.lock().unwrap_or_else(|p| p.into_inner()).extend(read);
                }
            });
        });
        let mut pending: Vec<(Found, u32, u64)> = Vec::with_capacity(READ_BATCH);
        for walked in found_rx {
            let found = match walked {
                Walked::Dir(dir, mtime, ctime) => {
                    cache.listed(&dir, mtime, ctime);
                    continue;
                }
                Walked::Done(dir, leaf) => {
                    // Only deferred's hashed leaves: their files are never edited in place
                    // (Postfix edits a queue file only in active, and a file enters or leaves a
                    // directory by a rename, which changes the directory's times).
                    let deferred = dir.starts_with(layout.dir.join(DEFERRED))
                        && dir.as_ref() != layout.dir.join(DEFERRED);
                    if leaf && deferred && cache.dir_settles(&dir, settled_before) {
                        cache.settle(&dir);
                    }
                    continue;
                }
                Walked::Kept(dir) => {
                    cache.kept(&dir);
                    continue;
                }
                Walked::Failed(q, (path, source)) => {
                    failed[q].get_or_insert_with(|| error(SCANNED[q], path, source, "list"));
                    continue;
                }
                Walked::Files(found) => found,
            };
            let Some(dir) = found.first().and_then(|f| cache.dir_id(&f.dir)) else {
                continue;
            };
            for f in found {
                let path = cache.path_hash(f.dir.as_os_str().as_bytes(), f.name.as_bytes());
                let read = match cache.observe(f.queue, dir, path, &f.stat) {
                    Verdict::Read => true,
                    // A defer log changes while its message is in active (the delivery
                    // agents append to it, qmgr deletes it); held messages keep theirs.
                    // Elsewhere it changes only with its queue file, whose own change has it
                    // read again.
                    Verdict::Known if [ACTIVE, HOLD].contains(&SCANNED[f.queue]) => {
                        match defer_ctime(layout, &f) {
                            Ok(ctime) => cache.defer_changed(&f.stat, ctime),
                            Err((log, e)) => {
                                failed[f.queue]
                                    .get_or_insert_with(|| error(DEFER, log, e, "look at"));
                                false
                            }
                        }
                    }
                    Verdict::Known => false,
                };
                if read {
                    pending.push((f, dir, path));
                    if pending.len() >= READ_BATCH {
                        let _ = read_tx.send(std::mem::replace(
                            &mut pending,
                            Vec::with_capacity(READ_BATCH),
                        ));
                    }
                }
            }
            store(cache, &mut failed, &mut files_read);
        }
        if !pending.is_empty() {
            let _ = read_tx.send(pending);
        }
        drop(read_tx);
    });
    store(cache, &mut failed, &mut files_read);
    cache.sweep();
    // A first read of a large spool leaves its buffers' memory in the allocator.
    if files_read > 10_000 {
        crate::sys::release_free_memory();
    }
    let read: Vec<&str> = SCANNED
        .iter()
        .zip(&failed)
        .filter(|(_, f)| f.is_none())
        .map(|(q, _)| *q)
        .collect();
    Scanned {
        snapshot: cache.snapshot(&read, rules),
        files_read,
        errors: failed.into_iter().flatten().collect(),
    }
}

/// The ctime of a message's defer log, 0 when it has none.
fn defer_ctime(layout: &Layout, f: &Found) -> Result<i64, (PathBuf, io::Error)> {
    let log = layout
        .dir
        .join(layout.hashing.path(DEFER, &f.name.to_string_lossy()));
    match std::fs::symlink_metadata(&log) {
        Ok(m) => Ok(ctime_ns(&m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err((log, e)),
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(SCAN_THREADS))
}

/// A file read, or why not.
struct ReadOne {
    found: Found,
    dir: u32,
    path: u64,
    result: Result<Option<Message>, (PathBuf, io::Error, &'static str)>,
}

struct Message {
    summary: Summary,
    defer_ctime: i64,
    files_read: u64,
}

/// One directory: announced with its times, its files handed over in batches, its
/// subdirectories pushed to `more`; or, when `settled` holds it with the same times, left
/// unlisted.
fn walk_dir(
    q: usize,
    dir: &Path,
    depth: usize,
    deadline: Instant,
    settled: &std::collections::HashMap<PathBuf, (i64, i64)>,
    more: &mut Vec<(usize, PathBuf, usize)>,
    tx: &SyncSender<Walked>,
) {
    let times = std::fs::symlink_metadata(dir)
        .map(|m| (m.mtime() * 1_000_000_000 + m.mtime_nsec(), ctime_ns(&m)))
        .ok();
    if let Some(times) = times {
        if settled.get(dir) == Some(&times) {
            let _ = tx.send(Walked::Kept(dir.to_owned()));
            return;
        }
    }
    let shared: Arc<Path> = Arc::from(dir);
    let (mtime, ctime) = times.unwrap_or((0, 0));
    let _ = tx.send(Walked::Dir(shared.clone(), mtime, ctime));
    let mut subdirs = Vec::new();
    let mut batch = Vec::new();
    let message_queue = SCANNED[q] != CORRUPT;
    let result = read_dir_level(dir, depth, deadline, &mut subdirs, &mut |entry| {
        let name = entry.file_name();
        // showq's `mail_open_ok`: a queue ID for a name, and owner rwx (a file still being
        // written has not). Whatever is in corrupt is counted.
        if message_queue && !queue::is_queue_id(name.as_bytes()) {
            return Ok(());
        }
        let m = entry.metadata()?;
        if message_queue && m.mode() & 0o700 != 0o700 {
            return Ok(());
        }
        batch.push(Found {
            queue: q,
            dir: shared.clone(),
            name,
            stat: Stat {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                ctime: ctime_ns(&m),
                mode: m.mode(),
            },
        });
        if batch.len() >= BATCH {
            let _ = tx.send(Walked::Files(std::mem::take(&mut batch)));
        }
        Ok(())
    });
    if !batch.is_empty() {
        let _ = tx.send(Walked::Files(batch));
    }
    let leaf = subdirs.is_empty();
    more.extend(subdirs.into_iter().map(|(d, depth)| (q, d, depth)));
    match result {
        Ok(()) if times.is_some() => {
            let _ = tx.send(Walked::Done(shared, leaf));
        }
        Ok(()) => {}
        Err(e) => {
            let _ = tx.send(Walked::Failed(q, e));
        }
    }
}

fn ctime_ns(m: &std::fs::Metadata) -> i64 {
    m.ctime() * 1_000_000_000 + m.ctime_nsec()
}

/// A reader's buffers, kept from file to file.
#[derive(Debug, Default)]
struct Buffers {
    file: Vec<u8>,
    tail: Vec<u8>,
    log: Vec<u8>,
}

/// Reads `size` bytes of `file` (fewer if it shrank, no more if it grew) in one read when it
/// can: the size is known from the walk's or a `fstat`, so nothing is asked twice.
fn read_sized(file: &mut std::fs::File, size: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    let size = size.min(MAX_READ);
    buf.clear();
    buf.reserve(size as usize);
    file.take(size).read_to_end(buf)?;
    Ok(())
}

/// Reads one queue file and its defer log; `None` when the file is gone.
fn read_message(
    layout: &Layout,
    f: &Found,
    bufs: &mut Buffers,
) -> Result<Option<Message>, (PathBuf, io::Error, &'static str)> {
    let path = f.path();
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err((path, e, "read the queue file")),
    };
    let fail = |e| (path.clone(), e, "read the queue file");
    let meta = Meta {
        size: f.stat.size,
        mtime: f.stat.mtime.div_euclid(1_000_000_000),
        mode: f.stat.mode,
    };
    let id = f.name.to_string_lossy();
    let log_path = layout.dir.join(layout.hashing.path(DEFER, &id));
    let defer_ctime = match std::fs::File::open(&log_path) {
        Ok(mut log) => {
            let read = |log: &mut std::fs::File, buf: &mut Vec<u8>| {
                let m = log.metadata()?;
                read_sized(log, m.size(), buf)?;
                Ok(ctime_ns(&m))
            };
            Some(
                read(&mut log, &mut bufs.log)
                    .map_err(|e| (log_path.clone(), e, "read the defer log"))?,
            )
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err((log_path, e, "read the defer log")),
    };
    let log = defer_ctime.is_some().then_some(bufs.log.as_slice());
    let files_read = 1 + u64::from(log.is_some());
    let mut summary = None;
    if f.stat.size > SPARSE_ABOVE {
        // The envelope, then the records after the content: the content itself is skipped.
        read_sized(&mut file, 4096, &mut bufs.file).map_err(fail)?;
        if let Some((span, at)) = qfile::content_span(&bufs.file) {
            let tail_at = at.saturating_add(span);
            if at <= MAX_READ && tail_at <= f.stat.size {
                file.rewind().map_err(fail)?;
                read_sized(&mut file, at, &mut bufs.file).map_err(fail)?;
                file.seek(io::SeekFrom::Start(tail_at)).map_err(fail)?;
                read_sized(&mut file, f.stat.size - tail_at, &mut bufs.tail).map_err(fail)?;
                let bytes = Bytes::sparse(&bufs.file, tail_at, &bufs.tail);
                let (s, end) = summarize(bytes, meta, log, layout.rules);
                if !matches!(end, End::Hole(_)) {
                    summary = Some(s);
                }
            }
        }
        file.rewind().map_err(fail)?;
    }
    let summary = match summary {
        Some(s) => s,
        None => {
            read_sized(&mut file, f.stat.size, &mut bufs.file).map_err(fail)?;
            summarize(Bytes::whole(&bufs.file), meta, log, layout.rules).0
        }
    };
    Ok(Some(Message {
        summary,
        defer_ctime: defer_ctime.unwrap_or(0),
        files_read,
    }))
}

/// What a queue file and its defer log come to: showq's listing of it, with each recipient
/// counted once (its first reason) by domain and reason class.
pub fn summarize(bytes: Bytes<'_>, meta: Meta, log: Option<&[u8]>, rules: Rules) -> (Summary, End) {
    use crate::reason::{classify, Reason};
    let mut listed: Vec<(String, Reason)> = Vec::new();
    // A defer log repeats one reason for many recipients: classified once.
    let mut last: Option<(String, Reason)> = None;
    let message = qfile::read(bytes, meta, log, rules, |a, r| {
        let class = match (r, &last) {
            (Some(r), Some((text, class))) if text == r => *class,
            (Some(r), _) => {
                let class = classify(Some(r));
                last = Some((r.to_owned(), class));
                class
            }
            (None, _) => classify(None),
        };
        listed.push((a.to_owned(), class));
    });
    // By (domain, reason): a set past a handful, as a sender may give every recipient a domain
    // of its own.
    let mut counted: Vec<(String, Reason, u32)> = Vec::new();
    let mut index: std::collections::HashMap<(String, Reason), usize> =
        std::collections::HashMap::new();
    distinct_by(
        &listed,
        |(a, _)| a,
        |(a, class)| {
            let domain = domain_of(a);
            if counted.len() < 16 && index.is_empty() {
                if let Some(c) = counted.iter_mut().find(|c| c.1 == *class && c.0 == domain) {
                    c.2 += 1;
                } else {
                    counted.push((domain, *class, 1));
                }
                return;
            }
            if index.is_empty() {
                index = counted
                    .iter()
                    .enumerate()
                    .map(|(i, c)| ((c.0.clone(), c.1), i))
                    .collect();
            }
            match index.get(&(domain.clone(), *class)) {
                Some(&i) => counted[i].2 += 1,
                None => {
                    index.insert((domain.clone(), *class), counted.len());
                    counted.push((domain, *class, 1));
                }
            }
        },
    );
    (
        Summary {
            listed: message.listed,
            message_size: message.message_size,
            arrival: message.arrival,
            recipients: counted,
        },
        message.end,
    )
}

/// What a user who may not list a queue directory needs.
const LIST_FIX: &str = "this user needs read and search (r-x) on the queue directories and `defer`: run as the postfix user, grant CAP_DAC_READ_SEARCH, or ACLs (`setfacl -R -m u:USER:rX` on each)";
/// What a user who may list but not read a queue file needs: ACLs cannot give it, as Postfix
/// writes each file 0600 then 0700, and the ACL mask of a new file follows those group bits.
const READ_FIX: &str = "reading queue files and defer logs takes the postfix user or CAP_DAC_READ_SEARCH: ACLs reach the directories but not the files Postfix writes later (their ACL mask follows the file's mode, 0700)";

fn error(queue: &str, path: PathBuf, source: io::Error, what: &'static str) -> Error {
    if source.kind() == io::ErrorKind::PermissionDenied {
        Error::Denied {
            queue: queue.to_owned(),
            path,
            what,
            fix: if what == "list" { LIST_FIX } else { READ_FIX },
        }
    } else {
        Error::Walk {
            queue: queue.to_owned(),
            path,
            source,
        }
    }
}

/// Runs `work` on every job with up to `SCAN_THREADS` threads; a job may add jobs (a
/// directory its subdirectories). Idle threads sleep until there is work or none is left.
fn pool<J: Send>(jobs: Vec<J>, work: impl Fn(J, &mut Vec<J>) + Sync) {
    let state = Mutex::new((jobs, 0usize));
    let wake = Condvar::new();
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| loop {
                let job = {
                    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        if let Some(job) = st.0.pop() {
                            st.1 += 1;
                            break Some(job);
                        }
                        if st.1 == 0 {
                            break None;
                        }
                        st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                };
                let Some(job) = job else {
                    wake.notify_all();
                    return;
                };
                let mut more = Vec::new();
                work(job, &mut more);
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                st.0.extend(more);
                st.1 -= 1;
                drop(st);
                wake.notify_all();
            });
        }
    });
}

#[cfg(test)]
mod tests;
