//! Where log lines go: stderr, written by a thread of their own, so that a
//! request never waits on a `write(2)`.
//!
//! A line is appended to a queue, under a lock held for the copy alone. A
//! writer thread, woken by the first line, waits [`GATHER`] for more, then
//! writes all that queued with one `write`. Writing each line from the thread
//! that logged it cost two system calls per webhook request, about a tenth of
//! the receiver's CPU time (`perf` and `strace` of `cargo xtask hotpath`,
//! docs/performance.md), and stalled the request whenever the container
//! runtime read its pipe late. A log line from a tokio worker is what
//! `tracing-appender`'s non-blocking writer is for; this one keeps no
//! allocation per line, wakes its thread at most once per [`GATHER`] under
//! load, and loses nothing:
//!
//! - the queue is bounded ([`QUEUE_BYTES`]): when the writer falls that far
//!   behind, a thread that logs waits for room, as it waited on a full pipe
//!   before;
//! - lines are written in the order they were queued, each whole: one thread
//!   writes them;
//! - [`LineSink::close`] (at the end of `main`, by [`Flushed`](super::Flushed))
//!   writes what is queued and stops the thread; lines logged after it are
//!   written at once by the thread that logs them;
//! - [`LineSink::flush`] writes what is queued from the calling thread, after
//!   the batch being written: the panic hook calls it, so that the lines before
//!   a panic come before its message.
//!
//! Only a process killed outright (`SIGKILL`) loses the lines queued and not
//! yet written: those of the last moments before it, as a buffered writer
//! would.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tracing_subscriber::fmt::MakeWriter;

/// The most bytes of lines queued and not written: a thread that logs waits
/// past it. About 3,000 webhook lines: room for a burst while the reader of
/// stderr is slow, small next to the process's memory.
pub(crate) const QUEUE_BYTES: usize = 1024 * 1024;

/// How long the writer waits, once a line is queued, for more lines to write
/// with it. A line is written at most this late (unless the reader of stderr
/// is slower); under load, one `write` takes a millisecond's lines.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

/// Log lines written to a file (stderr) by a thread of their own. Clones
/// share the queue and the thread.
#[derive(Debug, Clone)]
pub(crate) struct LineSink {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Where lines go; without it (stderr closed) they are dropped: a log
    /// line that cannot be written has nowhere to be reported.
    file: Option<File>,
    queue: Mutex<Queue>,
    /// Signalled when lines are queued for a waiting writer, or the sink closes.
    queued: Condvar,
    /// Signalled when the writer takes the queued lines, for threads waiting
    /// for room.
    taken: Condvar,
    /// Held while lines are written, taken after `queue`: a flush from
    /// another thread writes after the batch being written.
    writing: Mutex<()>,
    /// The writer thread, until [`LineSink::close`] joins it.
    writer: Mutex<Option<JoinHandle<()>>>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Queue {
    lines: Vec<u8>,
    /// The writer waits on `queued`; the first line queued wakes it.
    writer_waiting: bool,
    /// The writer waits [`GATHER`] for more lines before it writes; a queue
    /// half full wakes it sooner.
    writer_gathering: bool,
    /// Threads waiting on `taken` for room.
    waiting_for_room: usize,
    /// No writer thread (closed, or it could not start): lines are written
    /// by the thread that logs them.
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LineSink {
    /// The process's stderr, written by a thread named `log-writer`.
    pub(crate) fn stderr() -> Self {
        Self::to_file(stderr_file(), QUEUE_BYTES)
    }

    /// Lines written to `file` (none: dropped), at most `capacity` bytes of
    /// them queued.
    pub(crate) fn to_file(file: Option<File>, capacity: usize) -> Self {
        let sink = Self {
            shared: Arc::new(Shared {
                file,
                queue: Mutex::new(Queue::default()),
                queued: Condvar::new(),
                taken: Condvar::new(),
                writing: Mutex::new(()),
                writer: Mutex::new(None),
                capacity,
            }),
        };
        let shared = Arc::clone(&sink.shared);
        match std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || shared.write_queued_lines())
        {
            Ok(writer) => *lock(&sink.shared.writer) = Some(writer),
            // No thread: every line is written by the thread that logs it.
            Err(_) => lock(&sink.shared.queue).closed = true,
        }
        sink
    }

    /// Queues `line` (a whole line), waiting for room if the queue is full.
    fn write_line(&self, line: &[u8]) {
        let shared = &*self.shared;
        if shared.file.is_none() {
            return;
        }
        let mut queue = lock(&shared.queue);
        // A line longer than the queue goes alone.
        while !queue.closed
            && !queue.lines.is_empty()
            && queue.lines.len() + line.len() > shared.capacity
        {
            queue.waiting_for_room += 1;
            queue = shared
                .taken
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.waiting_for_room -= 1;
        }
        if queue.closed {
            // What the writer left is written first, then the line.
            let left = std::mem::take(&mut queue.lines);
            let _writing = lock(&shared.writing);
            drop(queue);
            shared.write(&left);
            shared.write(line);
            return;
        }
        queue.lines.extend_from_slice(line);
        // Only a waiting writer is woken, or one gathering lines once half
        // the queue is used: a notification is a system call even when
        // nobody waits.
        let wake = std::mem::take(&mut queue.writer_waiting)
            || (shared.half_full(&queue) && std::mem::take(&mut queue.writer_gathering));
        drop(queue);
        if wake {
            shared.queued.notify_one();
        }
    }

    /// Writes the lines queued so far from this thread, after the batch
    /// the writer thread is writing, if any.
    pub(crate) fn flush(&self) {
        let shared = &*self.shared;
        let mut queue = lock(&shared.queue);
        let _writing = lock(&shared.writing);
        let lines = std::mem::take(&mut queue.lines);
        let room = queue.waiting_for_room > 0;
        drop(queue);
        if room {
            shared.taken.notify_all();
        }
        shared.write(&lines);
    }

    /// Writes what is queued and stops the writer thread; lines logged
    /// afterwards are written at once.
    pub(crate) fn close(&self) {
        let shared = &*self.shared;
        lock(&shared.queue).closed = true;
        shared.queued.notify_one();
        shared.taken.notify_all();
        let writer = lock(&shared.writer).take();
        if let Some(writer) = writer {
            // The thread only writes: it cannot panic but by a bug.
            let _ = writer.join();
        }
        // Lines queued by a thread that waited for room as the sink closed.
        self.flush();
    }
}

impl Shared {
    fn half_full(&self, queue: &Queue) -> bool {
        queue.lines.len() >= self.capacity / 2
    }

    /// The writer thread: waits for lines, takes all that are queued, writes
    /// them with one `write`, until the sink closes and nothing is left.
    fn write_queued_lines(&self) {
        let mut batch = Vec::new();
        loop {
            let mut queue = lock(&self.queue);
            while queue.lines.is_empty() && !queue.closed {
                queue.writer_waiting = true;
                queue = self
                    .queued
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            queue.writer_waiting = false;
            if queue.lines.is_empty() {
                return;
            }
            // The lines logged in the next moment go in the same `write`:
            // woken for every line, the writer cost a wake-up (two futex
            // calls and a context switch) per line, as much as it saved.
            if !queue.closed && !self.half_full(&queue) {
                queue.writer_gathering = true;
                queue = self
                    .queued
                    .wait_timeout(queue, GATHER)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                queue.writer_gathering = false;
            }
            let _writing = lock(&self.writing);
            std::mem::swap(&mut batch, &mut queue.lines);
            let room = queue.waiting_for_room > 0;
            drop(queue);
            if room {
                self.taken.notify_all();
            }
            self.write(&batch);
            batch.clear();
            // A burst's buffer is not kept for good.
            batch.shrink_to(64 * 1024);
        }
    }

    fn write(&self, lines: &[u8]) {
        if let Some(mut file) = self.file.as_ref()
            && !lines.is_empty()
        {
            // A log line that cannot be written has nowhere to be reported.
            let _ = file.write_all(lines);
        }
    }
}

/// A second descriptor of stderr (the same open file, so the same offset and
/// flags), written without std's lock.
#[cfg(unix)]
fn stderr_file() -> Option<File> {
    use std::os::fd::AsFd;
    io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(File::from)
}

#[cfg(windows)]
fn stderr_file() -> Option<File> {
    use std::os::windows::io::AsHandle;
    io::stderr()
        .as_handle()
        .try_clone_to_owned()
        .ok()
        .map(File::from)
}

/// What the log layer writes a line to: the whole line in one `write_all`.
pub(crate) struct LineWriter<'a>(&'a LineSink);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_line(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_line(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LineSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Read as _;
    use std::os::fd::OwnedFd;

    use super::*;

    /// A sink writing into a pipe, and the thread reading everything it
    /// gets until the pipe closes.
    fn piped(capacity: usize) -> (LineSink, std::thread::JoinHandle<String>) {
        let (mut reader, writer) = io::pipe().unwrap();
        let sink = LineSink::to_file(Some(File::from(OwnedFd::from(writer))), capacity);
        let read = std::thread::spawn(move || {
            let mut text = Vec::new();
            reader.read_to_end(&mut text).unwrap();
            String::from_utf8(text).unwrap()
        });
        (sink, read)
    }

    /// Threads logging short and long lines at once, many times the pipe's
    /// 64 KiB and the queue's capacity: every line arrives whole, once, and
    /// each thread's lines in the order it logged them.
    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_order() {
        let (sink, read) = piped(16 * 1024);
        let threads: Vec<_> = (0..4u8)
            .map(|thread| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for n in 0..300usize {
                        // Every third line longer than a pipe's atomic
                        // write, and every 50th longer than the queue.
                        let length = match n {
                            n if n % 50 == 0 => 20_000,
                            n if n % 3 == 0 => 5_000,
                            n => 40 + n,
                        };
                        let mut line = format!("{thread} {n:03} ").into_bytes();
                        line.resize(length, b'a' + thread);
                        line.push(b'\n');
                        sink.make_writer().write_all(&line).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        sink.close();
        // The writer's descriptor closes with the last clone.
        drop(sink);
        let text = read.join().unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let (thread, rest) = line.split_once(' ').unwrap();
            let (n, fill) = rest.split_once(' ').unwrap();
            let thread: usize = thread.parse().unwrap();
            assert_eq!(n.parse::<usize>().unwrap(), next[thread], "out of order");
            next[thread] += 1;
            let expected = b'a' + u8::try_from(thread).unwrap();
            assert!(fill.bytes().all(|b| b == expected), "a line mixes two");
        }
        assert_eq!(next, [300; 4], "lines lost");
    }

    /// A reader that stops reading fills the pipe, then the queue: logging
    /// then waits for room rather than dropping lines or growing without
    /// bound, and everything arrives once the reader reads again.
    #[test]
    fn a_full_queue_holds_the_logging_thread_and_loses_nothing() {
        let (mut reader, writer) = io::pipe().unwrap();
        let sink = LineSink::to_file(Some(File::from(OwnedFd::from(writer))), 4096);
        let line = [b'x'; 1023];
        let logged = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let logging = {
            let (sink, logged) = (sink.clone(), std::sync::Arc::clone(&logged));
            std::thread::spawn(move || {
                // 1 MiB: the pipe (64 KiB) and the queue (4 KiB) many times.
                for _ in 0..1024 {
                    let mut whole = line.to_vec();
                    whole.push(b'\n');
                    sink.make_writer().write_all(&whole).unwrap();
                    logged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        };
        // Until the writer is stuck on the full pipe and the queue is full,
        // the logging thread goes on; then it waits (for as long as nothing
        // reads: the count stays below 1024 whatever the machine's speed).
        let mut first = vec![0u8; 1024];
        reader.read_exact(&mut first).unwrap();
        assert!(logged.load(std::sync::atomic::Ordering::SeqCst) < 1024);
        let rest = std::thread::spawn(move || {
            let mut text = Vec::new();
            reader.read_to_end(&mut text).unwrap();
            text
        });
        logging.join().unwrap();
        sink.close();
        drop(sink);
        let total = first.len() + rest.join().unwrap().len();
        assert_eq!(total, 1024 * 1024);
    }

    /// After `close`, lines are written by the thread that logs them.
    #[test]
    fn lines_after_close_are_written_at_once() {
        let (sink, read) = piped(QUEUE_BYTES);
        sink.make_writer().write_all(b"before\n").unwrap();
        sink.close();
        sink.make_writer().write_all(b"after\n").unwrap();
        drop(sink);
        assert_eq!(read.join().unwrap(), "before\nafter\n");
    }
}
