//! The frame codec, pure: a frame is a 4-byte big-endian length and that many bytes of
//! payload. Oversized lengths are refused before anything is buffered, so a peer sending
//! garbage costs four bytes and a disconnect, not memory.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The default frame cap: a 1,000-machine fleet's full entry set is a few MiB; 64 MiB
/// leaves room without letting a bogus length allocate gigabytes.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the cap.
    #[error("frame of {len} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Length-prefixed frames with a size cap.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    /// A codec refusing frames above `max` bytes.
    pub fn new(max: usize) -> FrameCodec {
        FrameCodec { max }
    }

    /// The largest frame it takes.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len).freeze()))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        if item.len() > self.max {
            return Err(FrameError::TooLarge {
                len: item.len(),
                max: self.max,
            });
        }
        dst.reserve(4 + item.len());
        dst.put_u32(item.len() as u32);
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_even_when_split_across_reads() {
        let mut codec = FrameCodec::default();
        let mut wire = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"hello"), &mut wire)
            .unwrap();
        codec.encode(Bytes::new(), &mut wire).unwrap();
        codec
            .encode(Bytes::from_static(b"world!"), &mut wire)
            .unwrap();
        let bytes = wire.freeze();
        // Feed one byte at a time.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in bytes.iter() {
            buf.put_u8(*b);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                got.push(frame);
            }
        }
        assert_eq!(got, [&b"hello"[..], b"", b"world!"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_oversized_length_is_refused_before_buffering() {
        let mut codec = FrameCodec::new(16);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1, 2][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 16
            })
        ));
        let mut out = BytesMut::new();
        assert!(codec.encode(Bytes::from(vec![0; 17]), &mut out).is_err());
    }

    #[test]
    fn a_partial_header_waits_for_more() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0, 0][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }
}
