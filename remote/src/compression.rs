//! The compressions of NARs in a binary cache: `none`, `zstd`, `xz`
//! (Nix's default). Encoders use every core (zstd's and liblzma's own
//! multi-threaded encoders); decoders stream.

use std::io::{self, Read, Write};

/// How a NAR file of a cache is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
    Xz,
}

/// zstd's level for caches (zstd's default, as Nix's `compression-level` -1).
const ZSTD_LEVEL: i32 = 3;
/// xz's preset (Nix's and xz's default).
const XZ_PRESET: u32 = 6;

impl Compression {
    /// The name in a narinfo's `Compression:` field.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
        }
    }

    pub fn from_name(name: &str) -> Option<Compression> {
        match name {
            "none" | "" => Some(Compression::None),
            "zstd" => Some(Compression::Zstd),
            "xz" => Some(Compression::Xz),
            _ => None,
        }
    }

    /// The NAR file's extension: `.nar`, `.nar.zst`, `.nar.xz`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => ".nar",
            Compression::Zstd => ".nar.zst",
            Compression::Xz => ".nar.xz",
        }
    }

    /// A writer that compresses into `out` with `threads` threads; call
    /// [`Encoder::finish`] at the end.
    pub fn encoder<W: Write + Send>(self, out: W, threads: u32) -> io::Result<Encoder<W>> {
        Ok(match self {
            Compression::None => Encoder::None(out),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                if threads > 1 {
                    enc.multithread(threads)?;
                }
                Encoder::Zstd(enc)
            }
            Compression::Xz => {
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .preset(XZ_PRESET)
                    .check(liblzma::stream::Check::Crc64)
                    .threads(threads.max(1))
                    .encoder()
                    .map_err(io::Error::other)?;
                Encoder::Xz(liblzma::write::XzEncoder::new_stream(out, stream))
            }
        })
    }

    /// A reader of the decompressed bytes of `input`.
    pub fn decoder<'a>(
        self,
        input: impl Read + Send + 'a,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(input),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
        })
    }
}

/// A compressing writer.
pub enum Encoder<W: Write> {
    None(W),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Xz(liblzma::write::XzEncoder<W>),
}

impl<W: Write> Encoder<W> {
    /// Flush the last frame and give the inner writer back.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Xz(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Xz(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [Compression::None, Compression::Zstd, Compression::Xz] {
            let mut enc = c.encoder(Vec::new(), 2).unwrap();
            enc.write_all(&data).unwrap();
            let packed = enc.finish().unwrap();
            if c != Compression::None {
                assert!(packed.len() < data.len() / 4, "{c:?} did not compress");
            }
            let mut back = Vec::new();
            c.decoder(&packed[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{c:?}");
            assert_eq!(Compression::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let mut enc = Compression::Xz.encoder(Vec::new(), 1).unwrap();
        enc.write_all(&[7u8; 100_000]).unwrap();
        let mut packed = enc.finish().unwrap();
        let n = packed.len();
        packed[n / 2] ^= 0xff;
        let mut back = Vec::new();
        assert!(
            Compression::Xz
                .decoder(&packed[..])
                .unwrap()
                .read_to_end(&mut back)
                .is_err()
        );
        // Truncated.
        let mut back = Vec::new();
        assert!(
            Compression::Xz
                .decoder(&packed[..n / 2])
                .unwrap()
                .read_to_end(&mut back)
                .is_err()
        );
    }
}
