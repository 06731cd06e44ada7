//! Where log lines go: stderr, one `write(2)` a line, without a lock that
//! worker threads wait on.
//!
//! std's `Stderr` takes a process-wide lock around every write. Two worker
//! threads each logging a webhook line then wait on each other for the length
//! of a system call, and the one that waits sleeps and is woken again (a futex
//! call each way): `strace` of `cargo xtask hotpath` counted about two futex
//! calls a request, all on that lock (docs/performance.md).
//!
//! A line of up to `PIPE_BUF` bytes needs no lock to stay whole: a write of
//! that size to a pipe (a container's stdout and stderr) is atomic (POSIX;
//! Linux `pipe(7)`), and Linux writes each `write` call to a regular file at
//! one position taken under the file's own lock (since 3.14). A longer line
//! may be split by a full pipe around other writers' data, so it is written
//! under a lock the short lines share: they never wait on each other, only on
//! a long line being written.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{PoisonError, RwLock};

use tracing_subscriber::fmt::MakeWriter;

/// The most bytes one `write` to a pipe writes without interleaving:
/// `PIPE_BUF`, 4,096 on Linux, the POSIX minimum (512) elsewhere.
const PIPE_BUF: usize = if cfg!(target_os = "linux") { 4096 } else { 512 };

/// Log lines written to a file (stderr), a whole line per `write` call.
#[derive(Debug)]
pub(crate) struct LineSink {
    file: Option<File>,
    /// Held shared by a line of up to [`PIPE_BUF`] bytes, alone by a longer one.
    long_line: RwLock<()>,
}

impl LineSink {
    /// The process's stderr. Without one (closed), lines are dropped: a log
    /// line that cannot be written has nowhere to be reported.
    pub(crate) fn stderr() -> Self {
        Self {
            file: stderr_file(),
            long_line: RwLock::new(()),
        }
    }

    #[cfg(test)]
    pub(crate) fn to_file(file: File) -> Self {
        Self {
            file: Some(file),
            long_line: RwLock::new(()),
        }
    }

    fn write_line(&self, line: &[u8]) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut file = file;
        if line.len() <= PIPE_BUF {
            let _shared = self
                .long_line
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            file.write_all(line)
        } else {
            let _alone = self
                .long_line
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            file.write_all(line)
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
        self.0.write_line(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_line(buf)
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
    use std::sync::Arc;

    use super::*;

    /// Threads writing short and long lines at once into a pipe (a
    /// container's stderr) that fills up never mix two lines: each line read
    /// back is one that was written, whole.
    #[test]
    fn lines_written_at_once_into_a_pipe_stay_whole() {
        let (mut reader, writer) = io::pipe().unwrap();
        let sink = Arc::new(LineSink::to_file(File::from(OwnedFd::from(writer))));
        let read = std::thread::spawn(move || {
            let mut text = Vec::new();
            reader.read_to_end(&mut text).unwrap();
            text
        });
        let threads: Vec<_> = (0..4u8)
            .map(|thread| {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    for n in 0..300usize {
                        // Every third line longer than PIPE_BUF, and the
                        // lines together many times the pipe's 64 KiB.
                        let length = if n % 3 == 0 { PIPE_BUF * 4 + n } else { 40 + n };
                        let mut line = vec![b'a' + thread; length];
                        line.push(b'\n');
                        sink.make_writer().write_all(&line).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // The last writer closes the pipe: the reader sees its end.
        drop(sink);
        let text = String::from_utf8(read.join().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4 * 300);
        for line in lines {
            let first = line.as_bytes()[0];
            assert!(
                line.bytes().all(|b| b == first),
                "a line mixes two writers: {}…",
                &line[..line.len().min(80)]
            );
        }
    }
}
