//! The frame codec: a frame is a 4-byte big-endian length and that many bytes of payload,
//! framed by tokio-util's `LengthDelimitedCodec`. Oversized lengths are refused before
//! anything is buffered, so a peer sending garbage costs four bytes and a disconnect, not
//! memory; this wrapper names the announced length in the error.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec, LengthDelimitedCodecError};

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
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max: usize,
    inner: LengthDelimitedCodec,
}

impl FrameCodec {
    /// A codec refusing frames above `max` bytes.
    pub fn new(max: usize) -> FrameCodec {
        let inner = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .max_frame_length(max)
            .new_codec();
        FrameCodec { max, inner }
    }

    /// The largest frame it takes.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The length announced by the frame prefix at the start of `src`, if it has arrived.
    fn announced(src: &[u8]) -> Option<usize> {
        let prefix: [u8; 4] = src.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(prefix) as usize)
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
        match self.inner.decode(src) {
            Ok(frame) => Ok(frame.map(BytesMut::freeze)),
            // Refused at the prefix, which is still in `src`: name its length.
            Err(e)
                if e.get_ref()
                    .is_some_and(|e| e.is::<LengthDelimitedCodecError>()) =>
            {
                Err(FrameError::TooLarge {
                    len: Self::announced(src).unwrap_or_default(),
                    max: self.max,
                })
            }
            Err(e) => Err(e.into()),
        }
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
        Ok(self.inner.encode(item, dst)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

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
