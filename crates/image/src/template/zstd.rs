//! A streaming zstd compressor as a `Write`.
//!
//! ruzstd's `FrameCompressor` pulls from a `Read` and `unwrap`s I/O errors,
//! so it is only fed in-memory chunks (one frame each: every zstd decoder
//! reads concatenated frames) and the output is written here, where write
//! errors are returned instead of panicking.

use std::io::{self, Write};

use ruzstd::encoding::{compress_to_vec, CompressionLevel};

/// Uncompressed bytes per frame: large enough that frame overhead and the
/// reset of the match window do not matter, small enough to bound memory.
const CHUNK: usize = 8 << 20;

pub struct ZstdWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    frames: u64,
}

impl<W: Write> ZstdWriter<W> {
    pub fn new(inner: W) -> Self {
        ZstdWriter {
            inner,
            buf: Vec::with_capacity(CHUNK),
            frames: 0,
        }
    }

    fn flush_frame(&mut self) -> io::Result<()> {
        let out = compress_to_vec(&self.buf[..], CompressionLevel::Fastest);
        self.inner.write_all(&out)?;
        self.buf.clear();
        self.frames += 1;
        Ok(())
    }

    /// Compress what is buffered (at least one frame, so empty input is
    /// still a valid zstd stream) and hand back the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.frames == 0 {
            self.flush_frame()?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ZstdWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush_frame()?;
        }
        Ok(n)
    }

    /// Frames are only cut at CHUNK boundaries (or in `finish`), so this
    /// only flushes what was already compressed.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn round_trip_over_several_frames() {
        let data: Vec<u8> = (0..CHUNK * 2 + 12345).map(|i| (i % 251) as u8).collect();
        let mut w = ZstdWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let z = w.finish().unwrap();
        let mut all = Vec::new();
        crate::unpack::decompress(&z[..])
            .unwrap()
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all.len(), data.len());
        assert!(all == data);
    }

    #[test]
    fn empty_input_is_one_frame() {
        let z = ZstdWriter::new(Vec::new()).finish().unwrap();
        assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    }
}
