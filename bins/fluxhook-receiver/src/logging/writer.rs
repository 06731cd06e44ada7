//! Log lines written to stderr by a thread of their own, many per write.
//!
//! Writing each line to stderr as it is made costs a system call per line
//! on the thread answering the request: two per webhook delivery, about a
//! tenth of the webhook server's time under load (docs/performance.md).
//! Here a line is appended to a buffer under a lock, and a writer thread
//! writes what has gathered with one `write` every few milliseconds. Lines
//! keep their order, and none is dropped: past [`MAX_PENDING`] bytes not
//! yet written, the thread logging waits for the writer (so memory stays
//! bounded when stderr is slow). [`flush`] waits until everything logged so
//! far is written; the binary calls it before it exits.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes logged and not yet written past which logging waits.
const MAX_PENDING: usize = 1024 * 1024;
/// How long the writer lets lines gather after a write, so that a busy
/// server writes many lines at once.
const GATHER: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Buffer {
    pending: Vec<u8>,
    /// The writer thread is writing a batch taken from `pending`.
    writing: bool,
}

#[derive(Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// Signalled when `pending` stops being empty.
    filled: Condvar,
    /// Signalled after each write.
    written: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A [`MakeWriter`] whose writers append to the buffer of a writer thread.
/// Each `write` call must be whole lines (the formatter writes a line in one
/// call), so that lines of different threads do not mix.
pub(crate) struct BatchedStderr {
    /// `None` when no thread could be started: lines go to stderr at once.
    shared: Option<Arc<Shared>>,
}

/// The buffer of the process's writer, for [`flush`].
static STDERR: OnceLock<Arc<Shared>> = OnceLock::new();

impl BatchedStderr {
    /// The process's writer to stderr, with its thread.
    pub(crate) fn stderr() -> Self {
        let writer = Self::start(io::stderr());
        if let Some(shared) = &writer.shared {
            let _ = STDERR.set(Arc::clone(shared));
        }
        writer
    }

    /// A writer thread writing to `out`.
    fn start(mut out: impl Write + Send + 'static) -> Self {
        let shared = Arc::new(Shared::default());
        let thread = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    {
                        let mut buffer = thread.lock();
                        buffer.writing = false;
                        thread.written.notify_all();
                        while buffer.pending.is_empty() {
                            buffer = thread
                                .filled
                                .wait(buffer)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                        std::mem::swap(&mut batch, &mut buffer.pending);
                        buffer.writing = true;
                    }
                    // A line that cannot be written has nowhere to be
                    // reported.
                    let _ = out.write_all(&batch);
                    let _ = out.flush();
                    batch.clear();
                    std::thread::sleep(GATHER);
                }
            });
        Self {
            shared: spawned.is_ok().then_some(shared),
        }
    }
}

impl Shared {
    fn append(&self, line: &[u8]) {
        let mut buffer = self.lock();
        while buffer.pending.len() >= MAX_PENDING {
            buffer = self
                .written
                .wait(buffer)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let was_empty = buffer.pending.is_empty();
        buffer.pending.extend_from_slice(line);
        drop(buffer);
        if was_empty {
            self.filled.notify_one();
        }
    }

    /// Waits until every line appended so far is written.
    fn wait_written(&self) {
        let mut buffer = self.lock();
        while !buffer.pending.is_empty() || buffer.writing {
            buffer = self
                .written
                .wait(buffer)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A writer of [`BatchedStderr`].
pub(crate) struct Sink<'a>(Option<&'a Shared>);

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.0 {
            Some(shared) => {
                shared.append(buf);
                Ok(())
            }
            None => io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for BatchedStderr {
    type Writer = Sink<'w>;

    fn make_writer(&'w self) -> Self::Writer {
        Sink(self.shared.as_deref())
    }
}

/// Waits until every line logged so far is on stderr.
pub(crate) fn flush() {
    if let Some(shared) = STDERR.get() {
        shared.wait_written();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A sink a test can read.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_whole_and_in_order() {
        let kept = Kept::default();
        let writer = BatchedStderr::start(kept.clone());
        let shared = writer.shared.as_deref().unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let writer = &writer;
                scope.spawn(move || {
                    for line in 0..2000 {
                        let text = format!("{thread} {line} {}\n", "x".repeat(line % 700));
                        writer.make_writer().write_all(text.as_bytes()).unwrap();
                    }
                });
            }
        });
        shared.wait_written();
        let text = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut words = line.split(' ');
            let thread: usize = words.next().unwrap().parse().unwrap();
            let number: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(number, next[thread], "{line}");
            assert_eq!(words.next().unwrap_or("").len(), number % 700);
            next[thread] += 1;
        }
        assert_eq!(next, [2000; 4]);
    }
}
