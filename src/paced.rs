//! Reading a listing from a writer that sends every message with a write of its own.
//!
//! postqueue does (strace: 50,005 writes for 50,000 messages) and so does the showq service
//! (about 30,000 reads of its socket for 50,000 messages). A reader that waits in epoll wakes
//! once per write, and its wake-ups cost the writer too: method postqueue paid 1.9 times the
//! CPU of `postqueue -j > /dev/null`, method showq as much as postqueue itself. So a listing
//! is read from a non-blocking descriptor kept out of tokio's reactor, on a clock: drain what
//! is there, then pause: a drain takes dozens of messages at a time, not one.
//!
//! How long to pause depends on what we know of the writer's room (what it can write before
//! it must wait for us):
//! - a pipe's room is known (we enlarge it to 1 MiB and ask the kernel what we got): the pause
//!   adapts so that each drain finds a quarter to three quarters of it, so the writer seldom
//!   waits. That is `read`, on the async runtime, whose clock ticks in milliseconds.
//! - a Unix socket's room is the writer's send buffer less the overhead of each write (about
//!   20 KB when every write is a small message, less if the system lowered its buffers),
//!   which showq fills in a millisecond or two. `read_blocking` runs on a thread of its own
//!   with a finer clock, and keeps its shortest pause while data flows: guessing the room
//!   wrong one way would have it crawl.
//!
//! Either way the pause grows while the writer is idle, and a drain stops after 1 MiB so that
//! the async driver yields to the runtime.

use std::future::Future;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The longest pause: what an idle writer costs us is 20 wake-ups a second.
const PAUSE_MAX: Duration = Duration::from_millis(50);
/// The shortest pause of each driver.
const ASYNC_PAUSE_MIN: Duration = Duration::from_millis(1);
const THREAD_PAUSE_MIN: Duration = Duration::from_micros(250);
/// Bytes read at a time, and at most in one drain (then the async driver yields).
const CHUNK: usize = 64 * 1024;
const DRAIN_MAX: usize = 1024 * 1024;

/// What a drain found.
enum Step<E> {
    /// The writer closed its end.
    End,
    /// The sink rejected a chunk.
    Rejected(E),
    /// Read on at once: the drain stopped at `DRAIN_MAX`, not for want of data.
    Again,
    /// Read again after this long.
    Pause(Duration),
}

/// What the writer can put in before it has to wait for us.
#[derive(Debug, Clone, Copy)]
enum Room {
    Known(usize),
    Unknown,
}

struct Pacer {
    buf: Vec<u8>,
    room: Room,
    pause: Duration,
    min: Duration,
}

impl Pacer {
    fn new(room: Room, min: Duration) -> Self {
        Pacer {
            buf: vec![0u8; CHUNK],
            room,
            pause: min,
            min,
        }
    }

    fn drain<E>(
        &mut self,
        source: &mut impl Read,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> io::Result<Step<E>> {
        let mut drained = 0;
        while drained < DRAIN_MAX {
            match source.read(&mut self.buf) {
                Ok(0) => return Ok(Step::End),
                Ok(n) => {
                    drained += n;
                    if let Err(e) = sink(&self.buf[..n]) {
                        return Ok(Step::Rejected(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if drained >= DRAIN_MAX {
            self.pause = self.min;
            return Ok(Step::Again);
        }
        let longer = (self.pause * 2).min(PAUSE_MAX);
        self.pause = match self.room {
            // Near the ceiling: the writer may have been waiting for room.
            Room::Known(room) if drained >= room / 4 * 3 => (self.pause / 2).max(self.min),
            Room::Known(room) if drained < room / 4 => longer,
            Room::Known(_) => self.pause,
            Room::Unknown if drained == 0 => longer,
            Room::Unknown => self.min,
        };
        Ok(Step::Pause(self.pause))
    }
}

/// Feeds `source` to `sink` until EOF, or until the sink rejects a chunk, on the async
/// runtime; the caller's `select!` bounds it in time. `source` must be non-blocking and not
/// registered with tokio (its writes would wake the reactor again). `room` is what the writer
/// can put in before it has to wait for us. `finished` resolves when nothing more will be
/// written (a child's exit): it ends a pause at once, so a short listing is not held up.
pub async fn read<E>(
    source: &mut impl Read,
    room: usize,
    finished: impl Future<Output = ()>,
    sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> io::Result<Result<(), E>> {
    let mut pacer = Pacer::new(Room::Known(room), ASYNC_PAUSE_MIN);
    let finished = std::pin::pin!(finished);
    let mut finished = Some(finished);
    loop {
        let pause = match pacer.drain(source, sink)? {
            Step::End => return Ok(Ok(())),
            Step::Rejected(e) => return Ok(Err(e)),
            Step::Again => {
                tokio::task::yield_now().await;
                continue;
            }
            Step::Pause(pause) => pause,
        };
        match finished.as_mut() {
            Some(done) => tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = done.as_mut() => finished = None,
            },
            // The writer is gone but something still holds its end open (a grandchild): it is
            // paced like the writer was, until EOF or the caller's deadline.
            None => tokio::time::sleep(pause).await,
        }
    }
}

/// The same on the calling thread, for a writer whose room is not known, with
/// sub-millisecond pauses. It ends within one pause of `stop` turning true, with
/// `Interrupted`.
pub fn read_blocking<E>(
    source: &mut impl Read,
    stop: &AtomicBool,
    sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> io::Result<Result<(), E>> {
    let mut pacer = Pacer::new(Room::Unknown, THREAD_PAUSE_MIN);
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
        }
        match pacer.drain(source, sink)? {
            Step::End => return Ok(Ok(())),
            Step::Rejected(e) => return Ok(Err(e)),
            Step::Again => {}
            Step::Pause(pause) => std::thread::sleep(pause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands out its chunks one per read, with a `WouldBlock` between them.
    struct Trickle {
        chunks: Vec<Vec<u8>>,
        blocked: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.blocked = !self.blocked;
            if self.blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if self.chunks.is_empty() {
                return Ok(0);
            }
            let chunk = self.chunks.remove(0);
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    #[tokio::test]
    async fn every_byte_arrives_in_order_and_io_errors_pass_through() {
        let mut source = Trickle {
            chunks: (0..10)
                .map(|i| format!("line {i}\n").into_bytes())
                .collect(),
            blocked: false,
        };
        let mut got = Vec::new();
        read(
            &mut source,
            1024,
            std::future::pending(),
            &mut |c: &[u8]| {
                got.extend_from_slice(c);
                Ok::<(), ()>(())
            },
        )
        .await
        .unwrap()
        .unwrap();
        let want: String = (0..10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(got).unwrap(), want);

        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
        let err = read(
            &mut Broken,
            1024,
            std::future::pending(),
            &mut |_: &[u8]| Ok::<(), ()>(()),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
