//! ZooKeeper's compressed snapshots (`zookeeper.snapshot.compression.method`): `snapshot.<zxid>.gz`
//! is a gzip stream, `snapshot.<zxid>.snappy` the stream of the snappy-java library ZooKeeper
//! uses (a 16-byte header, then blocks, each `[i32 length][raw snappy block]`). The Adler-32
//! seals inside a snapshot cover the uncompressed bytes, so a snapshot is inflated whole and then
//! read like any other.

use super::zk_jute::Bad;
use std::io::Read;

/// How a snapshot file is stored, from its name, as ZooKeeper decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Plain,
    Gzip,
    Snappy,
}

impl Method {
    pub fn of_name(name: &str) -> Method {
        if name.ends_with(".gz") {
            Method::Gzip
        } else if name.ends_with(".snappy") {
            Method::Snappy
        } else {
            Method::Plain
        }
    }

    /// From the first bytes, for a file not named as ZooKeeper names snapshots (a backup).
    pub fn sniff(bytes: &[u8]) -> Method {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Method::Gzip
        } else if bytes.starts_with(&SNAPPY_MAGIC) {
            Method::Snappy
        } else {
            Method::Plain
        }
    }
}

/// snappy-java's stream header: a magic, then its format version and the oldest version that
/// reads it (both 1).
const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_HEADER: usize = 16;
/// No block snappy-java writes is anywhere near this (its blocks are 32 KiB); a larger claim is
/// damage, refused before allocating for it.
const MAX_BLOCK: usize = 64 << 20;

/// The snapshot's bytes as ZooKeeper's checked stream sees them. Errors name the offset in the
/// compressed file.
pub fn inflate(method: Method, bytes: Vec<u8>) -> Result<Vec<u8>, Bad> {
    match method {
        Method::Plain => Ok(bytes),
        Method::Gzip => {
            let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
            // Java's GZIPInputStream reads concatenated members; so does MultiGzDecoder.
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .map_err(|e| (0, format!("not a whole gzip stream: {e}")))?;
            Ok(out)
        }
        Method::Snappy => unsnappy(&bytes),
    }
}

fn unsnappy(bytes: &[u8]) -> Result<Vec<u8>, Bad> {
    if !bytes.starts_with(&SNAPPY_MAGIC) {
        // snappy-java reads a stream without its header as one raw block.
        return raw_block(bytes, 0);
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
    let mut at = 0;
    while at < bytes.len() {
        // Streams may be concatenated: each part starts with the header again.
        if bytes[at..].starts_with(&SNAPPY_MAGIC) {
            if bytes.len() - at < SNAPPY_HEADER {
                return Err((at, "a snappy stream header cut short".into()));
            }
            at += SNAPPY_HEADER;
            continue;
        }
        let Some(len) = bytes.get(at..at + 4) else {
            return Err((at, "a snappy block length cut short".into()));
        };
        let len = i32::from_be_bytes(len.try_into().expect("4"));
        if len < 0 || len as usize > MAX_BLOCK {
            return Err((at, format!("unreasonable snappy block length {len}")));
        }
        let start = at + 4;
        let Some(block) = bytes.get(start..start + len as usize) else {
            return Err((at, format!("a snappy block of {len} bytes cut short")));
        };
        out.extend_from_slice(&raw_block(block, start)?);
        at = start + len as usize;
    }
    Ok(out)
}

fn raw_block(block: &[u8], at: usize) -> Result<Vec<u8>, Bad> {
    let n = snap::raw::decompress_len(block).map_err(|e| (at, format!("snappy: {e}")))?;
    if n > MAX_BLOCK.max(block.len().saturating_mul(8)) {
        return Err((at, format!("a snappy block claiming {n} bytes")));
    }
    snap::raw::Decoder::new()
        .decompress_vec(block)
        .map_err(|e| (at, format!("snappy: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect()
    }

    /// What snappy-java's SnappyOutputStream writes: the header, then 32 KiB blocks.
    fn snappy_java(data: &[u8]) -> Vec<u8> {
        let mut out = SNAPPY_MAGIC.to_vec();
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        for chunk in data.chunks(32 << 10) {
            let c = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            out.extend_from_slice(&(c.len() as i32).to_be_bytes());
            out.extend_from_slice(&c);
        }
        out
    }

    #[test]
    fn gzip_and_snappy_inflate_to_the_original() {
        let data = sample();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(inflate(Method::Gzip, gz.clone()).unwrap(), data);
        let sn = snappy_java(&data);
        assert_eq!(inflate(Method::Snappy, sn.clone()).unwrap(), data);
        // Two snappy-java streams one after the other read as their concatenation.
        let mut twice = sn.clone();
        twice.extend_from_slice(&sn);
        assert_eq!(
            inflate(Method::Snappy, twice).unwrap().len(),
            2 * data.len()
        );
        // Cut anywhere inside, both are errors, never a panic.
        for cut in [1, 10, 17, 100, gz.len() / 2, gz.len() - 1] {
            assert!(inflate(Method::Gzip, gz[..cut].to_vec()).is_err(), "{cut}");
        }
        for cut in [1, 10, 15, 18, 100, sn.len() / 2, sn.len() - 1] {
            assert!(
                inflate(Method::Snappy, sn[..cut].to_vec()).is_err(),
                "{cut}"
            );
        }
    }

    #[test]
    fn methods_come_from_the_name() {
        assert_eq!(Method::of_name("snapshot.1a.gz"), Method::Gzip);
        assert_eq!(Method::of_name("snapshot.1a.snappy"), Method::Snappy);
        assert_eq!(Method::of_name("snapshot.1a"), Method::Plain);
    }
}
