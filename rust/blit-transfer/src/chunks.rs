//! Adapters that carry the framed data stream inside control-plane
//! messages when the data port cannot be used.

use std::io::{self, Read, Write};

/// Size at which [`ChunkWriter`] hands a chunk to its sink.
pub const CHUNK_SIZE: usize = 1 << 20;

/// A writer that collects bytes into chunks of about [`CHUNK_SIZE`] and
/// passes each to `sink`, for example as a gRPC `DataChunk` message.
pub struct ChunkWriter<F: FnMut(Vec<u8>) -> io::Result<()>> {
    buffer: Vec<u8>,
    sink: F,
}

impl<F: FnMut(Vec<u8>) -> io::Result<()>> ChunkWriter<F> {
    /// Creates a writer that sends chunks to `sink`.
    pub fn new(sink: F) -> Self {
        ChunkWriter {
            buffer: Vec::with_capacity(CHUNK_SIZE),
            sink,
        }
    }
}

impl<F: FnMut(Vec<u8>) -> io::Result<()>> Write for ChunkWriter<F> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_SIZE {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    /// Sends whatever is buffered as one chunk.
    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_SIZE));
        (self.sink)(chunk)
    }
}

/// A reader over chunks that arrive on a channel; the stream ends when the
/// channel closes.
pub struct ChunkReader {
    chunks: crossbeam_channel::Receiver<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
}

impl ChunkReader {
    /// Creates a reader and the sending half that feeds it.
    pub fn channel() -> (crossbeam_channel::Sender<Vec<u8>>, ChunkReader) {
        // Bounded, so a slow writer to disk pushes back on the network.
        let (sender, chunks) = crossbeam_channel::bounded(16);
        (
            sender,
            ChunkReader {
                chunks,
                current: Vec::new(),
                position: 0,
            },
        )
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.position = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let count = buffer.len().min(self.current.len() - self.position);
        buffer[..count].copy_from_slice(&self.current[self.position..self.position + count]);
        self.position += count;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip() {
        let (sender, mut reader) = ChunkReader::channel();
        let mut sizes = Vec::new();
        {
            let mut writer = ChunkWriter::new(|chunk: Vec<u8>| {
                sizes.push(chunk.len());
                sender
                    .send(chunk)
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
            });
            writer.write_all(&vec![5u8; CHUNK_SIZE + 10]).unwrap();
            writer.write_all(b"tail").unwrap();
            writer.flush().unwrap();
        }
        drop(sender);

        let mut received = Vec::new();
        reader.read_to_end(&mut received).unwrap();
        assert_eq!(received.len(), CHUNK_SIZE + 14);
        assert!(received.ends_with(b"tail"));
        assert_eq!(sizes, [CHUNK_SIZE + 10, 4]);
    }
}
