//! Responses that finish together leave in one socket write.
//!
//! The gRPC server's connection task writes whatever responses are ready and flushes. Under load,
//! a batch of signatures completes many requests at once, but each request's task hands its
//! response to the connection task and the runtime runs that task next (tokio's LIFO slot), so
//! the connection flushed one response per `writev`. [`CoalescedWrites`] holds the bytes of a
//! flush until the connection task has yielded once: the other tasks that are ready run first,
//! their responses join the same buffer, and one system call sends them all. With one task
//! ready, the yield costs one more poll of the connection task and no wait.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes held at most before a write goes to the socket without waiting for a flush.
const HOLD_MAX: usize = 64 * 1024;

/// Buffer capacity kept between flushes; a larger buffer is freed after it is sent, so an idle
/// connection holds little memory.
const KEEP_CAPACITY: usize = 16 * 1024;

/// A socket whose writes are held until a flush, and whose flush first yields once to the
/// runtime (see the module documentation).
#[derive(Debug)]
pub(crate) struct CoalescedWrites<S> {
    inner: S,
    held: Vec<u8>,
    sent: usize,
    yielded: bool,
}

impl<S> CoalescedWrites<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            held: Vec::new(),
            sent: 0,
            yielded: false,
        }
    }

    /// The socket.
    #[cfg(test)]
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncWrite + Unpin> CoalescedWrites<S> {
    /// Sends every held byte to the socket.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.sent = 0;
        if self.held.capacity() > KEEP_CAPACITY {
            self.held = Vec::new();
        } else {
            self.held.clear();
        }
        Poll::Ready(Ok(()))
    }

    /// Room for `want` more bytes, sending what is held first when the buffer is full.
    fn poll_room(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        if self.held.len() >= HOLD_MAX {
            ready!(self.poll_send_held(cx))?;
        }
        Poll::Ready(Ok(want.min(HOLD_MAX - self.held.len())))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CoalescedWrites<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let room = ready!(self.poll_room(cx, buf.len()))?;
        self.held.extend_from_slice(&buf[..room]);
        Poll::Ready(Ok(room))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().map(|b| b.len()).sum();
        let mut room = ready!(self.poll_room(cx, total))?;
        let taken = room;
        for b in bufs {
            let n = b.len().min(room);
            self.held.extend_from_slice(&b[..n]);
            room -= n;
            if room == 0 {
                break;
            }
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.held.len() > self.sent && !self.yielded {
            // Woken during its own poll, the task goes to the back of the run queue.
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(self.poll_send_held(cx))?;
        self.yielded = false;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_held(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for CoalescedWrites<tokio::net::TcpStream> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A socket that records each write it is given, and refuses writes while `full`.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        full: bool,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.full {
                return Poll::Pending;
            }
            self.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn context() -> (Arc<CountingWaker>, std::task::Waker) {
        let count = Arc::new(CountingWaker::default());
        let waker = std::task::Waker::from(Arc::clone(&count));
        (count, waker)
    }

    #[test]
    fn writes_before_a_flush_leave_in_one_write_after_one_yield() {
        let (woken, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut s = CoalescedWrites::new(Recorder::default());
        for part in [&b"first "[..], b"second ", b"third"] {
            assert!(matches!(
                Pin::new(&mut s).poll_write(&mut cx, part),
                Poll::Ready(Ok(n)) if n == part.len()
            ));
        }
        assert!(Pin::new(&mut s).poll_flush(&mut cx).is_pending());
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the yield must wake the task"
        );
        assert!(
            s.inner.writes.is_empty(),
            "nothing is sent before the yield"
        );

        let more = [io::IoSlice::new(b" and"), io::IoSlice::new(b" more")];
        assert!(matches!(
            Pin::new(&mut s).poll_write_vectored(&mut cx, &more),
            Poll::Ready(Ok(9))
        ));
        assert!(matches!(
            Pin::new(&mut s).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(
            s.inner.writes,
            vec![b"first second third and more".to_vec()]
        );
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);

        // The next flush yields again, and a flush with nothing held does not.
        assert!(Pin::new(&mut s).poll_write(&mut cx, b"x").is_ready());
        assert!(Pin::new(&mut s).poll_flush(&mut cx).is_pending());
        assert!(Pin::new(&mut s).poll_flush(&mut cx).is_ready());
        assert!(Pin::new(&mut s).poll_flush(&mut cx).is_ready());
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
        assert_eq!(s.inner.writes.len(), 2);
    }

    #[test]
    fn a_full_buffer_waits_for_the_socket() {
        let (_woken, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut s = CoalescedWrites::new(Recorder {
            full: true,
            ..Recorder::default()
        });
        let big = vec![7u8; HOLD_MAX + 10];
        assert!(matches!(
            Pin::new(&mut s).poll_write(&mut cx, &big),
            Poll::Ready(Ok(HOLD_MAX))
        ));
        assert!(
            Pin::new(&mut s)
                .poll_write(&mut cx, &big[HOLD_MAX..])
                .is_pending()
        );
        s.inner.full = false;
        assert!(matches!(
            Pin::new(&mut s).poll_write(&mut cx, &big[HOLD_MAX..]),
            Poll::Ready(Ok(10))
        ));
        assert_eq!(s.inner.writes, vec![vec![7u8; HOLD_MAX]]);
        assert!(
            s.held.capacity() < KEEP_CAPACITY,
            "a large buffer is freed once sent"
        );
        assert!(Pin::new(&mut s).poll_shutdown(&mut cx).is_ready());
        assert_eq!(s.inner.writes.concat(), big);
    }

    #[test]
    fn writes_take_only_the_room_left_and_small_buffers_are_kept() {
        let (_woken, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut s = CoalescedWrites::new(Recorder::default());
        assert!(s.is_write_vectored());
        let most = vec![1u8; HOLD_MAX - 6];
        assert!(matches!(
            Pin::new(&mut s).poll_write(&mut cx, &most),
            Poll::Ready(Ok(n)) if n == HOLD_MAX - 6
        ));
        let parts = [io::IoSlice::new(b" and"), io::IoSlice::new(b" more")];
        assert!(matches!(
            Pin::new(&mut s).poll_write_vectored(&mut cx, &parts),
            Poll::Ready(Ok(6))
        ));
        assert_eq!(&s.held[HOLD_MAX - 6..], b" and m");
        assert!(matches!(
            Pin::new(&mut s).poll_write(&mut cx, b"ore"),
            Poll::Ready(Ok(3))
        ));
        assert_eq!(s.inner.writes.len(), 1, "a full buffer is sent first");
        assert_eq!(s.held, b"ore");

        let mut s = CoalescedWrites::new(Recorder::default());
        assert!(matches!(
            Pin::new(&mut s).poll_write(&mut cx, &[2u8; 100]),
            Poll::Ready(Ok(100))
        ));
        assert!(matches!(
            Pin::new(&mut s).poll_write(&mut cx, &[3u8; 10]),
            Poll::Ready(Ok(10))
        ));
        assert!(Pin::new(&mut s).poll_shutdown(&mut cx).is_ready());
        assert_eq!(s.inner.writes.len(), 1);
        assert!(
            s.held.is_empty() && s.held.capacity() >= 110,
            "a small buffer is kept"
        );
    }

    #[tokio::test]
    async fn bytes_arrive_whole_and_in_order_over_tcp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut s = CoalescedWrites::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        let mut sent = Vec::new();
        for i in 0..200u32 {
            let chunk: Vec<u8> = (0..(i * 997) % 70_000).map(|j| (i + j) as u8).collect();
            s.write_all(&chunk).await.unwrap();
            if i % 3 == 0 {
                s.flush().await.unwrap();
            }
            sent.extend_from_slice(&chunk);
        }
        s.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap(), sent);
    }

    #[tokio::test]
    async fn reads_pass_through() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            peer.write_all(b"request bytes").await.unwrap();
        });
        let mut s = CoalescedWrites::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, b"request bytes");
    }
}
