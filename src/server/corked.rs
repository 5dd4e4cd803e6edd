//! [`Corked`]: a connection whose writes wait for one turn of the scheduler before they go out,
//! so that the answers of several requests leave in one system call.
//!
//! An HTTP/2 connection task flushes at the end of every poll. Under load the answers of the
//! requests in flight are finished by their own tasks, one after the other, and the connection
//! task, woken by the first, would write each in its own `write` (on loopback, each also runs the
//! receiver's TCP stack: that was the largest cost of a CheckPermission after the check itself).
//! Here a flush with data waiting first lets the other ready tasks run — the task wakes itself,
//! which tokio treats as a yield to the back of the run queue — and writes everything gathered
//! on the next poll. With nothing else to run, that costs one reschedule, no timer and no wait;
//! when a yield gathered nothing more (one request at a time), the next few flushes write at
//! once.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Writes gathered beyond this are written without waiting for a flush.
const GATHER: usize = 64 * 1024;
/// Writes this large (a streamed answer's frames) are not gathered: with nothing gathered
/// before them they go straight through, and a flush of this much does not yield.
const LARGE: usize = 16 * 1024;
/// After a yield that gathered nothing more (one request in flight), flushes this many times
/// without yielding before trying again: a yield costs a reschedule, and on a multi-threaded
/// runtime often the wake-up of an idle worker.
const QUIET_FLUSHES: u8 = 15;

/// A byte stream whose writes are gathered until a flush, and a flush deferred by one yield.
#[derive(Debug)]
pub struct Corked<T> {
    io: T,
    buffer: Vec<u8>,
    /// How much of `buffer` is written.
    written: usize,
    /// Whether the flush waiting for data has already yielded once, and how much was
    /// gathered then.
    yielded: Option<usize>,
    /// Flushes left before the next yield (see [`QUIET_FLUSHES`]).
    quiet: u8,
}

impl<T> Corked<T> {
    pub fn new(io: T) -> Self {
        Corked { io, buffer: Vec::new(), written: 0, yielded: None, quiet: 0 }
    }

    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncWrite + Unpin> Corked<T> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buffer.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buffer[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buffer.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Corked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Corked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        if me.buffer.is_empty() && data.len() >= LARGE {
            return Pin::new(&mut me.io).poll_write(cx, data);
        }
        if me.buffer.len() >= GATHER {
            ready!(me.poll_drain(cx))?;
        }
        me.buffer.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        if me.buffer.is_empty() && bufs.iter().map(|b| b.len()).sum::<usize>() >= LARGE {
            return Pin::new(&mut me.io).poll_write_vectored(cx, bufs);
        }
        if me.buffer.len() >= GATHER {
            ready!(me.poll_drain(cx))?;
        }
        let mut n = 0;
        for b in bufs {
            me.buffer.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        // Gathered writes are copied whatever the inner stream does; large ones go through.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if me.written < me.buffer.len() && me.buffer.len() < LARGE {
            match me.yielded {
                None if me.quiet == 0 => {
                    // Let the other ready tasks add their writes first (see the module's comment).
                    me.yielded = Some(me.buffer.len());
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                None => me.quiet -= 1,
                // Nothing joined while others ran: yield less for a while.
                Some(before) if before == me.buffer.len() => me.quiet = QUIET_FLUSHES,
                Some(_) => {}
            }
        }
        ready!(me.poll_drain(cx))?;
        me.yielded = None;
        Pin::new(&mut me.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Corked<tokio::net::TcpStream> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes reach the other end whole and in order, through gathering, a deferred flush,
    /// writes larger than the gathering limit, large writes passed straight through, and a
    /// shutdown without a flush.
    #[test]
    fn what_is_written_arrives_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let (a, mut b) = tokio::io::duplex(1 << 10);
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                b.read_to_end(&mut got).await.unwrap();
                got
            });
            let mut w = Corked::new(a);
            let mut sent = Vec::new();
            for i in 0..200u32 {
                let chunk: Vec<u8> = (0..(i * 37 % 1500)).map(|k| (k + i) as u8).collect();
                w.write_all(&chunk).await.unwrap();
                sent.extend_from_slice(&chunk);
                if i % 7 == 0 {
                    w.flush().await.unwrap();
                }
            }
            let big: Vec<u8> = (0..(3 * GATHER as u32)).map(|k| (k % 251) as u8).collect();
            // Large writes after something gathered, and straight through.
            w.write_all(&big).await.unwrap();
            sent.extend_from_slice(&big);
            w.flush().await.unwrap();
            w.write_all(&big[..2 * LARGE]).await.unwrap();
            sent.extend_from_slice(&big[..2 * LARGE]);
            w.write_all(b"small").await.unwrap();
            sent.extend_from_slice(b"small");
            w.write_all(&big[..LARGE]).await.unwrap();
            sent.extend_from_slice(&big[..LARGE]);
            w.write_all(b"end").await.unwrap();
            sent.extend_from_slice(b"end");
            w.shutdown().await.unwrap();
            assert_eq!(reader.await.unwrap(), sent);
        });
    }
}
