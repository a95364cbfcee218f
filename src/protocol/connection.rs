//! A connection: typed messages over frames over any byte stream (an SSH channel in
//! production, an in-memory duplex in tests).
//!
//! Large messages may be packed (deflated, [`super::pack`]) when the sender turns that on
//! ([`Connection::packing`]); packed or not, every frame is accepted.
//!
//! Reading and writing run in two separate tasks joined to the owner by queues. A single
//! task that both reads and writes a russh channel can stall under full-duplex load
//! (window updates go unprocessed and the connection dies on keepalive); with separate
//! tasks, a blocked write never stops reads.

use std::marker::PhantomData;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::codec::{FrameCodec, FrameError};
use super::pack;

/// The connection failed or the peer spoke garbage; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Framing or the stream failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A frame did not hold a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The peer went away.
    #[error("the connection closed")]
    Closed,
}

/// Sends `Out` messages and receives `In` messages. Frames are decoded as they are
/// received, so a connection can change the messages it carries ([`Connection::retype`]):
/// a request channel becomes a mesh link.
pub struct Connection<Out, In> {
    out: Outgoing<Out>,
    incoming: Incoming<In>,
}

impl<Out: Serialize, In: DeserializeOwned + Send + 'static> Connection<Out, In> {
    /// Takes over `stream`, spawning its reader and writer tasks. Dropping the
    /// connection ends the writer, which shuts the stream's write side down.
    pub fn new<S>(stream: S, codec: FrameCodec) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let max = codec.max();
        let write_codec = codec.clone();
        let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(16);
        let (in_tx, in_rx) = mpsc::channel(16);
        let writer = tokio::spawn(async move {
            let mut frames = FramedWrite::new(write, write_codec);
            // Every frame queued by now goes in one write (one SSH packet while they
            // fit): a burst of messages, an announcement flooded on, pays one packet.
            'write: while let Some(frame) = out_rx.recv().await {
                if frames.feed(frame).await.is_err() {
                    break;
                }
                while let Ok(frame) = out_rx.try_recv() {
                    if frames.feed(frame).await.is_err() {
                        break 'write;
                    }
                }
                if frames.flush().await.is_err() {
                    break;
                }
            }
            let _ = frames.close().await;
        });
        tokio::spawn(async move {
            let mut frames = FramedRead::new(read, codec);
            while let Some(frame) = frames.next().await {
                let frame = frame.map_err(ConnectionError::Frame);
                let failed = frame.is_err();
                if in_tx.send(frame).await.is_err() || failed {
                    // The owner is gone, or the framing broke: stop reading.
                    break;
                }
            }
        });
        Connection {
            out: Outgoing {
                out: out_tx,
                writer,
                packing: false,
                _types: PhantomData,
            },
            incoming: Incoming {
                incoming: in_rx,
                broken: false,
                max,
                _types: PhantomData,
            },
        }
    }
}

impl<Out, In> Connection<Out, In> {
    /// The same connection carrying other messages from now on.
    pub fn retype<Out2, In2>(self) -> Connection<Out2, In2> {
        Connection {
            out: Outgoing {
                out: self.out.out,
                writer: self.out.writer,
                packing: self.out.packing,
                _types: PhantomData,
            },
            incoming: Incoming {
                incoming: self.incoming.incoming,
                broken: self.incoming.broken,
                max: self.incoming.max,
                _types: PhantomData,
            },
        }
    }

    /// The same connection, packing the large messages it sends from now on (mesh links
    /// and the agent's answers: change sets and entries).
    pub fn packing(mut self) -> Self {
        self.out.packing = true;
        self
    }

    /// The two halves, to read in one task and write in another.
    pub fn split(self) -> (Outgoing<Out>, Incoming<In>) {
        (self.out, self.incoming)
    }
}

impl<Out: Serialize, In: DeserializeOwned> Connection<Out, In> {
    /// Closes the connection once everything queued has been written and the write side
    /// shut down (dropping it does the same without waiting).
    pub async fn finish(self) {
        self.out.finish().await;
    }

    /// Queues a message for the writer task.
    pub async fn send(&self, msg: &Out) -> Result<(), ConnectionError> {
        self.out.send(msg).await
    }

    /// The next message; `None` when the peer closed cleanly. After a malformed
    /// message the caller should drop the connection: the peer speaks garbage.
    pub async fn recv(&mut self) -> Option<Result<In, ConnectionError>> {
        self.incoming.recv().await
    }
}

/// The sending half of a [`Connection`].
pub struct Outgoing<Out> {
    out: mpsc::Sender<Bytes>,
    writer: tokio::task::JoinHandle<()>,
    /// Large messages are packed ([`super::pack::pack`]).
    packing: bool,
    _types: PhantomData<fn(Out)>,
}

impl<Out: Serialize> Outgoing<Out> {
    /// Queues a message for the writer task.
    pub async fn send(&self, msg: &Out) -> Result<(), ConnectionError> {
        let bytes =
            serde_json::to_vec(msg).map_err(|e| ConnectionError::Malformed(e.to_string()))?;
        let frame = if self.packing {
            pack::pack(bytes)
        } else {
            Bytes::from(bytes)
        };
        self.out
            .send(frame)
            .await
            .map_err(|_| ConnectionError::Closed)
    }

    /// Waits until everything queued is written and the write side shut down.
    pub async fn finish(self) {
        drop(self.out);
        let _ = self.writer.await;
    }
}

/// The receiving half of a [`Connection`].
pub struct Incoming<In> {
    incoming: mpsc::Receiver<Result<Bytes, ConnectionError>>,
    broken: bool,
    /// The largest message, packed frames inflated.
    max: usize,
    _types: PhantomData<fn() -> In>,
}

impl<In: DeserializeOwned> Incoming<In> {
    /// The next message; `None` when the peer closed cleanly. After a malformed message
    /// nothing more is read: the peer speaks garbage.
    pub async fn recv(&mut self) -> Option<Result<In, ConnectionError>> {
        if self.broken {
            return None;
        }
        let frame = self.incoming.recv().await?;
        let msg = decode(frame, self.max);
        if msg.is_err() {
            self.broken = true;
            self.incoming.close();
        }
        Some(msg)
    }
}

fn decode<In: DeserializeOwned>(
    frame: Result<Bytes, ConnectionError>,
    max: usize,
) -> Result<In, ConnectionError> {
    let bytes = pack::unpack(frame?, max).map_err(ConnectionError::Malformed)?;
    serde_json::from_slice::<In>(&bytes).map_err(|e| ConnectionError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::message::{Request, Response};
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn messages_cross_a_duplex_both_ways() {
        let (a, b) = tokio::io::duplex(64);
        let client: Connection<Request, Response> = Connection::new(a, FrameCodec::default());
        let mut server: Connection<Response, Request> = Connection::new(b, FrameCodec::default());
        // Larger than the duplex buffer: reader and writer must run concurrently.
        let big = "x".repeat(100_000);
        client
            .send(&Request::ClusterCreate { name: big.clone() })
            .await
            .unwrap();
        match server.recv().await.unwrap().unwrap() {
            Request::ClusterCreate { name } => assert_eq!(name, big),
            other => panic!("{other:?}"),
        }
        server.send(&Response::Unchanged).await.unwrap();
        drop(server);
        let mut client = client;
        assert!(matches!(client.recv().await, Some(Ok(Response::Unchanged))));
        assert!(client.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_packing_sender_packs_large_messages_and_any_receiver_reads_them() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client: Connection<Request, Response> =
            Connection::new(a, FrameCodec::default()).packing();
        let (mut raw_read, raw_write) = tokio::io::split(b);
        let big = "dns server 10.0.0.53; ".repeat(2_000);
        client
            .send(&Request::ClusterCreate { name: big.clone() })
            .await
            .unwrap();
        // On the wire: one frame, packed, a fraction of the message.
        let mut header = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut raw_read, &mut header)
            .await
            .unwrap();
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        assert_eq!(header[4], pack::PACKED);
        assert!(len * 10 < big.len(), "{len} of {}", big.len());
        let mut rest = vec![0u8; len - 1];
        tokio::io::AsyncReadExt::read_exact(&mut raw_read, &mut rest)
            .await
            .unwrap();
        // A plain receiver reads it.
        let (c, d) = tokio::io::duplex(1 << 16);
        let mut server: Connection<Response, Request> = Connection::new(d, FrameCodec::default());
        let (_, mut w) = tokio::io::split(c);
        w.write_all(&header).await.unwrap();
        w.write_all(&rest).await.unwrap();
        match server.recv().await.unwrap().unwrap() {
            Request::ClusterCreate { name } => assert_eq!(name, big),
            other => panic!("{other:?}"),
        }
        drop(raw_write);
    }

    #[tokio::test]
    async fn a_packed_frame_inflating_past_the_limit_ends_the_connection() {
        // 1 MiB of spaces packs into ~1 KiB; the receiver takes frames of 64 KiB.
        let bomb = pack::pack(vec![b' '; 1 << 20]);
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let mut server: Connection<Response, Request> =
            Connection::new(b, FrameCodec::new(64 * 1024));
        a.write_all(&(bomb.len() as u32).to_be_bytes())
            .await
            .unwrap();
        a.write_all(&bomb).await.unwrap();
        match server.recv().await {
            Some(Err(ConnectionError::Malformed(why))) => {
                assert!(why.contains("inflates past"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        assert!(server.recv().await.is_none(), "nothing more is read");
    }

    #[tokio::test]
    async fn garbage_ends_the_connection_with_an_error() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut server: Connection<Response, Request> = Connection::new(b, FrameCodec::default());
        a.write_all(&[0, 0, 0, 3, b'{', b'x', b'}']).await.unwrap();
        assert!(matches!(
            server.recv().await,
            Some(Err(ConnectionError::Malformed(_)))
        ));
        assert!(server.recv().await.is_none());

        let (mut a, b) = tokio::io::duplex(64);
        let mut server: Connection<Response, Request> = Connection::new(b, FrameCodec::new(8));
        a.write_all(&[0x7f, 0, 0, 0]).await.unwrap();
        assert!(matches!(
            server.recv().await,
            Some(Err(ConnectionError::Frame(_)))
        ));
    }
}
