//! Packed frames: a large message deflated before it is framed. Mesh links and the
//! agent's answers carry change sets and entries as JSON, which shrinks about twelve
//! times; a frame whose first byte is [`PACKED`] holds the deflated JSON, any other
//! frame the JSON itself (which never starts with that byte). A receiver accepts both,
//! so only the sender chooses, and the compressor lives only while it packs one frame:
//! nothing is kept per connection.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

/// The first byte of a packed frame.
pub const PACKED: u8 = 0;

/// Messages this large and larger are packed (when packing is on); smaller ones gain
/// too little to pay for the compressor.
pub const PACK_FROM: usize = 4 * 1024;

/// The frame for message `json`: packed when it is at least [`PACK_FROM`] bytes and
/// packing makes it smaller, else as it is.
pub fn pack(json: Vec<u8>) -> Bytes {
    if json.len() < PACK_FROM {
        return Bytes::from(json);
    }
    let mut out = Vec::with_capacity(json.len() / 8 + 64);
    out.push(PACKED);
    let mut encoder = DeflateEncoder::new(out, Compression::fast());
    let packed = encoder.write_all(&json).and_then(|()| encoder.finish());
    match packed {
        Ok(out) if out.len() < json.len() => Bytes::from(out),
        _ => Bytes::from(json),
    }
}

/// The message in `frame`: inflated if packed, refused if it would inflate past `max`
/// bytes (a frame that small could otherwise hold gigabytes).
pub fn unpack(frame: Bytes, max: usize) -> Result<Bytes, String> {
    if frame.first() != Some(&PACKED) {
        return Ok(frame);
    }
    let mut out = Vec::new();
    DeflateDecoder::new(&frame[1..])
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("a packed frame does not inflate: {e}"))?;
    if out.len() > max {
        return Err(format!("a packed frame inflates past {max} bytes"));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_messages_pack_small_ones_do_not_and_both_come_back() {
        let small = br#"{"pong":{"seq":1}}"#.to_vec();
        assert_eq!(pack(small.clone()), Bytes::from(small.clone()));
        let large: Vec<u8> = format!(
            r#"{{"sets":[{}]}}"#,
            r#"{"a":"dns server 10.0.0.53"},"#.repeat(500)
        )
        .into_bytes();
        let frame = pack(large.clone());
        assert_eq!(frame[0], PACKED);
        assert!(
            frame.len() * 10 < large.len(),
            "{} of {}",
            frame.len(),
            large.len()
        );
        assert_eq!(unpack(frame, 1 << 20).unwrap(), Bytes::from(large));
        assert_eq!(
            unpack(Bytes::from(small.clone()), 8).unwrap(),
            Bytes::from(small)
        );
    }

    #[test]
    fn a_frame_that_inflates_past_the_limit_or_is_not_deflate_is_refused() {
        let bomb = pack(vec![b' '; 1 << 20]);
        assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
        let e = unpack(bomb, 64 * 1024).unwrap_err();
        assert!(e.contains("inflates past 65536 bytes"), "{e}");
        let e = unpack(Bytes::from_static(&[PACKED, 0xff, 0xff, 0x13]), 1024).unwrap_err();
        assert!(e.contains("does not inflate"), "{e}");
    }

    #[test]
    fn a_message_that_does_not_shrink_goes_as_it_is() {
        // Bytes that deflate cannot shrink (a xorshift stream).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..8 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut json = b"\"".to_vec();
        json.extend(noise);
        assert_eq!(pack(json.clone()), Bytes::from(json));
    }
}
