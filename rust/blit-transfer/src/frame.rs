//! The framing of file bytes on a data connection.
//!
//! A data connection, after its 32-byte token, carries a sequence of
//! frames, all integers little-endian:
//!
//! | frame | layout |
//! | --- | --- |
//! | file | `1`, index `u64`, size `u64`, `size` content bytes, status `u8` |
//! | failed file | `2`, index `u64`, length `u32`, UTF-8 message of `length` bytes |
//! | end | `0` |
//!
//! `index` is the manifest index of the entry and `size` equals its
//! manifest size. The status after the content is `0` when the bytes are
//! the file's content. It is `1`, followed by a length `u32` and a message,
//! when reading failed part-way: the sender then pads the missing bytes with
//! zeros, and the receiver discards the file. The same byte sequence travels
//! inside gRPC `DataChunk` messages when the data port is not used.
//!
//! On a plain TCP connection both ends keep a buffer of
//! [`SOCKET_BUFFER`] bytes, so the headers and contents of many small files
//! share one `send` and one `recv`. Files larger than [`SMALL_FILE`] bypass
//! the buffers: the sender moves them with `sendfile` and the receiver with
//! `splice` through a pipe, so their content never enters user space.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};

/// Tag of a file frame.
pub const TAG_FILE: u8 = 1;
/// Tag of a failed-file frame.
pub const TAG_FAILED: u8 = 2;
/// Tag of the end frame.
pub const TAG_END: u8 = 0;

/// Maximum length of a failure message, in bytes.
pub const MAX_MESSAGE_LEN: u32 = 4096;

/// Files up to this size travel through the socket buffers, because for
/// them the set-up of `sendfile` and `splice` costs more than copying the
/// bytes twice. Larger files go by `sendfile` and `splice`.
pub const SMALL_FILE: u64 = 64 << 10;

/// Size of the write buffer of a [`FrameWriter::socket`] and the read
/// buffer of a [`FrameReader::socket`].
pub const SOCKET_BUFFER: usize = 256 << 10;

/// Bytes moved per `sendfile` or `splice` call.
const ZERO_COPY_CHUNK: usize = 1 << 20;

/// Pipe capacity asked for on the receiving side, so one `splice` pair
/// moves up to this much instead of the default 64 KiB.
const PIPE_SIZE: usize = 1 << 20;

/// Size of the buffer used where zero-copy is not possible.
const BUFFER_SIZE: usize = 256 << 10;

/// One frame header, as read by [`FrameReader::next_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A file's content of `size` bytes follows; read it with
    /// [`FrameReader::read_content`].
    File {
        /// Manifest index.
        index: u64,
        /// Content length in bytes.
        size: u64,
    },
    /// The sender could not read the file at all.
    Failed {
        /// Manifest index.
        index: u64,
        /// The reason.
        message: String,
    },
    /// No more frames on this connection.
    End,
}

/// The destination of frames: a TCP socket (buffered, with zero-copy for
/// large files) or any writer, such as the gRPC fallback's chunk buffer.
pub enum FrameWriter<'a> {
    /// A data-plane connection; make one with [`FrameWriter::socket`].
    Socket(SocketWriter<'a>),
    /// A buffering writer.
    Writer(&'a mut dyn Write),
}

/// A data-plane connection with its write buffer.
pub struct SocketWriter<'a> {
    stream: &'a TcpStream,
    buffer: Vec<u8>,
}

impl SocketWriter<'_> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buffer.len() + bytes.len() > SOCKET_BUFFER {
            self.flush()?;
        }
        if bytes.len() >= SOCKET_BUFFER {
            return (&*self.stream).write_all(bytes);
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            (&*self.stream).write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Appends up to `size` bytes of `file` to the buffer and returns how
    /// many it read; fewer than `size` when the file ended early.
    fn append_file(
        &mut self,
        file: &OwnedFd,
        size: u64,
        on_bytes: &mut dyn FnMut(u64),
    ) -> io::Result<u64> {
        let size = size as usize;
        if self.buffer.len() + size > SOCKET_BUFFER {
            self.flush()?;
        }
        let start = self.buffer.len();
        self.buffer.resize(start + size, 0);
        let mut read = 0;
        while read < size {
            match rustix::io::read(file, &mut self.buffer[start + read..]) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => {
                    self.buffer.truncate(start);
                    return Err(err.into());
                }
            }
        }
        self.buffer.truncate(start + read);
        on_bytes(read as u64);
        Ok(read as u64)
    }
}

impl<'a> FrameWriter<'a> {
    /// Returns a writer over a data-plane connection.
    pub fn socket(stream: &'a TcpStream) -> FrameWriter<'a> {
        FrameWriter::Socket(SocketWriter {
            stream,
            buffer: Vec::with_capacity(SOCKET_BUFFER),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            FrameWriter::Socket(socket) => socket.write_all(bytes),
            FrameWriter::Writer(writer) => writer.write_all(bytes),
        }
    }

    /// Sends what is buffered. The sender calls this before it waits for
    /// more work, so that the receiver is never left waiting for bytes
    /// that sit in a buffer.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            FrameWriter::Socket(socket) => socket.flush(),
            FrameWriter::Writer(writer) => writer.flush(),
        }
    }

    /// Writes a file frame with `size` bytes of `file` from its current
    /// offset, passing each chunk's byte count to `on_bytes`. If the file
    /// ends early, the rest is padded with zeros and the frame is marked
    /// failed. Returns the content bytes read from the file.
    pub fn write_file(
        &mut self,
        index: u64,
        size: u64,
        file: &OwnedFd,
        on_bytes: &mut dyn FnMut(u64),
    ) -> io::Result<u64> {
        let mut header = [0u8; 17];
        header[0] = TAG_FILE;
        header[1..9].copy_from_slice(&index.to_le_bytes());
        header[9..17].copy_from_slice(&size.to_le_bytes());
        self.write_all(&header)?;

        let copied = match self {
            FrameWriter::Socket(socket) if size <= SMALL_FILE => {
                socket.append_file(file, size, on_bytes)?
            }
            FrameWriter::Socket(socket) => {
                socket.flush()?;
                send_file_zero_copy(socket.stream, file, size, on_bytes)?
            }
            FrameWriter::Writer(writer) => send_file_buffered(&mut **writer, file, size, on_bytes)?,
        };
        if copied == size {
            self.write_all(&[0])?;
        } else {
            write_zeros(self, size - copied)?;
            let message = b"the file shrank while it was sent; it is skipped";
            let mut status = vec![1u8];
            status.extend_from_slice(&(message.len() as u32).to_le_bytes());
            status.extend_from_slice(message);
            self.write_all(&status)?;
        }
        Ok(copied)
    }

    /// Writes a failed-file frame.
    pub fn write_failed(&mut self, index: u64, message: &str) -> io::Result<()> {
        let message = truncate_message(message);
        let mut frame = vec![TAG_FAILED];
        frame.extend_from_slice(&index.to_le_bytes());
        frame.extend_from_slice(&(message.len() as u32).to_le_bytes());
        frame.extend_from_slice(message.as_bytes());
        self.write_all(&frame)
    }

    /// Writes the end frame and sends what is buffered.
    pub fn write_end(&mut self) -> io::Result<()> {
        self.write_all(&[TAG_END])?;
        self.flush()
    }
}

fn truncate_message(message: &str) -> &str {
    let mut end = message.len().min(MAX_MESSAGE_LEN as usize);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

fn write_zeros(writer: &mut FrameWriter<'_>, mut count: u64) -> io::Result<()> {
    let zeros = [0u8; 8192];
    while count > 0 {
        let chunk = count.min(zeros.len() as u64) as usize;
        writer.write_all(&zeros[..chunk])?;
        count -= chunk as u64;
    }
    Ok(())
}

fn send_file_zero_copy(
    stream: &TcpStream,
    file: &OwnedFd,
    size: u64,
    on_bytes: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    let mut sent = 0u64;
    while sent < size {
        let chunk = (size - sent).min(ZERO_COPY_CHUNK as u64) as usize;
        match rustix::fs::sendfile(stream.as_fd(), file, None, chunk) {
            Ok(0) => break,
            Ok(n) => {
                sent += n as u64;
                on_bytes(n as u64);
            }
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            // Files that sendfile cannot read (some special file systems)
            // fall back to copying through a buffer.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) if sent == 0 => {
                let mut socket = stream;
                return send_file_buffered(&mut socket, file, size, on_bytes);
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(sent)
}

fn send_file_buffered(
    writer: &mut dyn Write,
    file: &OwnedFd,
    size: u64,
    on_bytes: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    let mut buffer = vec![0u8; BUFFER_SIZE.min(size as usize).max(1)];
    let mut sent = 0u64;
    while sent < size {
        let want = (size - sent).min(buffer.len() as u64) as usize;
        let read = match rustix::io::read(file, &mut buffer[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        };
        writer.write_all(&buffer[..read])?;
        sent += read as u64;
        on_bytes(read as u64);
    }
    Ok(sent)
}

/// The source of frames: a TCP socket (buffered, with zero-copy into large
/// files) or any reader, such as the gRPC fallback's chunk stream.
pub enum FrameReader {
    /// A data-plane connection; make one with [`FrameReader::socket`].
    Socket(SocketReader),
    /// Any byte stream.
    Reader(Box<dyn Read + Send>),
}

/// A data-plane connection with its read buffer and, once a large file has
/// arrived, the pipe that `splice` moves its bytes through.
pub struct SocketReader {
    stream: TcpStream,
    buffer: Box<[u8]>,
    /// The unread bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    pipe: Option<(OwnedFd, OwnedFd)>,
}

impl SocketReader {
    fn buffered(&self) -> &[u8] {
        &self.buffer[self.start..self.end]
    }

    /// Refills the empty buffer with what the socket has, at least one byte.
    fn fill(&mut self) -> io::Result<()> {
        loop {
            match self.stream.read(&mut self.buffer) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    fn read_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < out.len() {
            if self.start == self.end {
                self.fill()?;
            }
            let take = (out.len() - filled).min(self.end - self.start);
            out[filled..filled + take].copy_from_slice(&self.buffer[self.start..self.start + take]);
            self.start += take;
            filled += take;
        }
        Ok(())
    }

    /// Moves `size` content bytes into `file`, or discards them; see
    /// [`FrameReader::copy_buffered`] for the error contract.
    fn read_into(
        &mut self,
        size: u64,
        mut file: Option<&OwnedFd>,
        on_bytes: &mut dyn FnMut(u64),
    ) -> io::Result<Option<io::Error>> {
        let mut left = size;
        let mut write_error = None;
        while left > 0 {
            if self.start == self.end {
                // The buffer is empty: a large remainder goes straight from
                // the socket into the file.
                if let Some(target) = file.filter(|_| left > SMALL_FILE) {
                    let pipe = match self.pipe.take() {
                        Some(pipe) => pipe,
                        None => new_pipe()?,
                    };
                    let result = splice_to_file(&self.stream, &pipe, target, left, on_bytes)?;
                    self.pipe = Some(pipe);
                    match result {
                        None => return Ok(None),
                        Some((err, remaining)) => {
                            write_error = Some(err);
                            file = None;
                            left = remaining;
                            continue;
                        }
                    }
                }
                self.fill()?;
            }
            let take = left.min(self.buffered().len() as u64) as usize;
            if let Some(target) = file {
                if let Err(err) = write_all_fd(target, &self.buffered()[..take]) {
                    write_error = Some(err);
                    file = None;
                }
            }
            self.start += take;
            left -= take as u64;
            on_bytes(take as u64);
        }
        Ok(write_error)
    }
}

impl FrameReader {
    /// Returns a reader over a data-plane connection.
    pub fn socket(stream: TcpStream) -> FrameReader {
        FrameReader::Socket(SocketReader {
            stream,
            buffer: vec![0u8; SOCKET_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            pipe: None,
        })
    }

    fn read_exact(&mut self, buffer: &mut [u8]) -> io::Result<()> {
        match self {
            FrameReader::Socket(socket) => socket.read_exact(buffer),
            FrameReader::Reader(reader) => reader.read_exact(buffer),
        }
    }

    /// Reads the next frame header.
    ///
    /// # Errors
    ///
    /// Returns `InvalidData` for an unknown tag or an oversized message, and
    /// `UnexpectedEof` when the stream ends without an end frame.
    pub fn next_frame(&mut self) -> io::Result<Frame> {
        let mut tag = [0u8; 1];
        self.read_exact(&mut tag)?;
        match tag[0] {
            TAG_END => Ok(Frame::End),
            TAG_FILE => {
                let mut header = [0u8; 16];
                self.read_exact(&mut header)?;
                Ok(Frame::File {
                    index: u64::from_le_bytes(header[..8].try_into().expect("8 bytes")),
                    size: u64::from_le_bytes(header[8..].try_into().expect("8 bytes")),
                })
            }
            TAG_FAILED => {
                let mut header = [0u8; 8];
                self.read_exact(&mut header)?;
                let index = u64::from_le_bytes(header);
                let message = self.read_message()?;
                Ok(Frame::Failed { index, message })
            }
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown data frame tag {other}"),
            )),
        }
    }

    fn read_message(&mut self) -> io::Result<String> {
        let mut length = [0u8; 4];
        self.read_exact(&mut length)?;
        let length = u32::from_le_bytes(length);
        if length > MAX_MESSAGE_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("failure message of {length} bytes exceeds {MAX_MESSAGE_LEN}"),
            ));
        }
        let mut message = vec![0u8; length as usize];
        self.read_exact(&mut message)?;
        Ok(String::from_utf8_lossy(&message).into_owned())
    }

    /// Reads `size` content bytes into `file` (or discards them when `file`
    /// is `None`), then the status.
    ///
    /// A failure to write `file`, such as a full disk, does not break the
    /// stream: the rest of the content is read and discarded, and the
    /// outcome reports the error, so later files can still arrive.
    ///
    /// # Errors
    ///
    /// Returns an error when the connection fails or the status is invalid.
    pub fn read_content(
        &mut self,
        size: u64,
        file: Option<&OwnedFd>,
        on_bytes: &mut dyn FnMut(u64),
    ) -> io::Result<Content> {
        let write_error = match self {
            FrameReader::Socket(socket) => socket.read_into(size, file, on_bytes)?,
            FrameReader::Reader(_) => self.copy_buffered(size, file, on_bytes)?,
        };
        let mut status = [0u8; 1];
        self.read_exact(&mut status)?;
        let sender_failure = match status[0] {
            0 => None,
            1 => Some(self.read_message()?),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown file status {other}"),
                ));
            }
        };
        Ok(match (write_error, sender_failure) {
            (Some(err), _) => Content::WriteFailed(err),
            (None, Some(message)) => Content::SenderFailed(message),
            (None, None) => Content::Complete,
        })
    }

    /// Copies `size` bytes into `file`, or discards them. Returns the first
    /// error writing the file, after which the rest is discarded.
    fn copy_buffered(
        &mut self,
        size: u64,
        mut file: Option<&OwnedFd>,
        on_bytes: &mut dyn FnMut(u64),
    ) -> io::Result<Option<io::Error>> {
        let mut buffer = vec![0u8; BUFFER_SIZE.min(size as usize).max(1)];
        let mut left = size;
        let mut write_error = None;
        while left > 0 {
            let chunk = left.min(buffer.len() as u64) as usize;
            self.read_exact(&mut buffer[..chunk])?;
            if let Some(target) = file {
                if let Err(err) = write_all_fd(target, &buffer[..chunk]) {
                    write_error = Some(err);
                    file = None;
                }
            }
            left -= chunk as u64;
            on_bytes(chunk as u64);
        }
        Ok(write_error)
    }
}

/// The outcome of reading one file's content.
#[derive(Debug)]
pub enum Content {
    /// The file has the sender's content.
    Complete,
    /// The sender could not read the whole file; the content is invalid.
    SenderFailed(String),
    /// Writing the destination file failed; the content was consumed from
    /// the stream and discarded.
    WriteFailed(io::Error),
}

fn write_all_fd(file: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(file, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Opens the pipe that large files are spliced through, as large as the
/// system allows up to [`PIPE_SIZE`].
fn new_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    if let Err(err) = rustix::pipe::fcntl_setpipe_size(&write, PIPE_SIZE) {
        // The default 64 KiB pipe works, with more system calls.
        tracing::debug!(error = %err, "cannot enlarge the splice pipe");
    }
    Ok((read, write))
}

/// Moves `size` bytes from the socket into the file through `pipe`, which
/// is empty before and after. Returns `Some((error, remaining))` when
/// writing the file fails: the bytes already in the pipe are drained, and
/// `remaining` bytes are still unread on the socket.
fn splice_to_file(
    stream: &TcpStream,
    (pipe_read, pipe_write): &(OwnedFd, OwnedFd),
    file: &OwnedFd,
    size: u64,
    on_bytes: &mut dyn FnMut(u64),
) -> io::Result<Option<(io::Error, u64)>> {
    use rustix::pipe::{SpliceFlags, splice};
    let mut left = size;
    while left > 0 {
        let chunk = left.min(ZERO_COPY_CHUNK as u64) as usize;
        let moved = match splice(
            stream.as_fd(),
            None,
            pipe_write,
            None,
            chunk,
            SpliceFlags::MOVE,
        ) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        };
        left -= moved as u64;
        on_bytes(moved as u64);
        let mut in_pipe = moved;
        while in_pipe > 0 {
            let written = match splice(pipe_read, None, file, None, in_pipe, SpliceFlags::MOVE) {
                Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => Err(io::Error::from(err)),
            };
            match written {
                Ok(n) => in_pipe -= n,
                Err(err) => {
                    drain_pipe(pipe_read, in_pipe)?;
                    return Ok(Some((err, left)));
                }
            }
        }
    }
    Ok(None)
}

/// Reads and discards `count` bytes that are waiting in a pipe.
fn drain_pipe(pipe: &OwnedFd, mut count: usize) -> io::Result<()> {
    let mut scratch = vec![0u8; count.min(BUFFER_SIZE)];
    while count > 0 {
        let want = count.min(scratch.len());
        match rustix::io::read(pipe, &mut scratch[..want]) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => count -= n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn file_with(content: &[u8]) -> (tempfile::NamedTempFile, OwnedFd) {
        let mut temp = tempfile::NamedTempFile::new().unwrap();
        temp.write_all(content).unwrap();
        let fd = OwnedFd::from(std::fs::File::open(temp.path()).unwrap());
        (temp, fd)
    }

    #[test]
    fn buffered_round_trip() {
        let (_temp, source) = file_with(b"hello frames");
        let mut bytes = Vec::new();
        {
            let mut writer = FrameWriter::Writer(&mut bytes);
            writer.write_file(7, 12, &source, &mut |_| {}).unwrap();
            writer.write_failed(8, "cannot open").unwrap();
            writer.write_end().unwrap();
        }

        let mut reader = FrameReader::Reader(Box::new(Cursor::new(bytes)));
        assert_eq!(
            reader.next_frame().unwrap(),
            Frame::File { index: 7, size: 12 }
        );
        let out = tempfile::tempfile().unwrap();
        let out_fd = OwnedFd::from(out.try_clone().unwrap());
        let mut seen = 0;
        let status = reader
            .read_content(12, Some(&out_fd), &mut |n| seen += n)
            .unwrap();
        assert!(matches!(status, Content::Complete), "{status:?}");
        assert_eq!(seen, 12);
        assert_eq!(
            reader.next_frame().unwrap(),
            Frame::Failed {
                index: 8,
                message: "cannot open".into()
            }
        );
        assert_eq!(reader.next_frame().unwrap(), Frame::End);
        let mut written = String::new();
        let mut out = out;
        std::io::Seek::seek(&mut out, std::io::SeekFrom::Start(0)).unwrap();
        out.read_to_string(&mut written).unwrap();
        assert_eq!(written, "hello frames");
    }

    #[test]
    fn shrunk_file_padded_and_marked_failed() {
        let (_temp, source) = file_with(b"abc");
        let mut bytes = Vec::new();
        FrameWriter::Writer(&mut bytes)
            .write_file(1, 10, &source, &mut |_| {})
            .unwrap();

        let mut reader = FrameReader::Reader(Box::new(Cursor::new(bytes)));
        assert_eq!(
            reader.next_frame().unwrap(),
            Frame::File { index: 1, size: 10 }
        );
        let status = reader.read_content(10, None, &mut |_| {}).unwrap();
        assert!(
            matches!(status, Content::SenderFailed(ref m) if m.contains("shrank")),
            "{status:?}"
        );
    }

    #[test]
    fn malformed_frames_rejected() {
        let mut reader = FrameReader::Reader(Box::new(Cursor::new(vec![9u8])));
        assert_eq!(
            reader.next_frame().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        let mut oversized = vec![TAG_FAILED];
        oversized.extend_from_slice(&0u64.to_le_bytes());
        oversized.extend_from_slice(&(MAX_MESSAGE_LEN + 1).to_le_bytes());
        let mut reader = FrameReader::Reader(Box::new(Cursor::new(oversized)));
        assert_eq!(
            reader.next_frame().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        let mut reader = FrameReader::Reader(Box::new(Cursor::new(vec![TAG_FILE, 1, 2])));
        assert_eq!(
            reader.next_frame().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn socket_round_trip_zero_copy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (_temp, source) = file_with(&content);
        let sender = std::thread::spawn(move || {
            let stream = TcpStream::connect(address).unwrap();
            let mut writer = FrameWriter::socket(&stream);
            writer
                .write_file(0, 3_000_000, &source, &mut |_| {})
                .unwrap();
            writer.write_end().unwrap();
        });

        let (stream, _) = listener.accept().unwrap();
        let mut reader = FrameReader::socket(stream);
        let out = tempfile::NamedTempFile::new().unwrap();
        let out_fd = OwnedFd::from(out.reopen().unwrap());
        assert_eq!(
            reader.next_frame().unwrap(),
            Frame::File {
                index: 0,
                size: 3_000_000
            }
        );
        let status = reader
            .read_content(3_000_000, Some(&out_fd), &mut |_| {})
            .unwrap();
        assert!(matches!(status, Content::Complete), "{status:?}");
        assert_eq!(reader.next_frame().unwrap(), Frame::End);
        sender.join().unwrap();
        assert_eq!(std::fs::read(out.path()).unwrap(), content);
    }

    /// Sends `files` over a loopback connection with the socket writer and
    /// returns the reader's end of it.
    fn socket_pair_sending(files: Vec<Vec<u8>>) -> (FrameReader, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let stream = TcpStream::connect(address).unwrap();
            let mut writer = FrameWriter::socket(&stream);
            for (index, content) in files.iter().enumerate() {
                let (_temp, source) = file_with(content);
                let size = content.len() as u64;
                assert_eq!(
                    writer
                        .write_file(index as u64, size, &source, &mut |_| {})
                        .unwrap(),
                    size
                );
            }
            writer.write_failed(99, "cannot open").unwrap();
            writer.write_end().unwrap();
        });
        let (stream, _) = listener.accept().unwrap();
        (FrameReader::socket(stream), sender)
    }

    /// Sizes on both sides of the small-file limit and the buffer size, so
    /// headers and contents straddle buffer refills and large files start
    /// with bytes that are already buffered.
    fn mixed_sizes() -> Vec<Vec<u8>> {
        let sizes = [
            0,
            1,
            17,
            4096,
            SMALL_FILE as usize - 1,
            SMALL_FILE as usize,
            SMALL_FILE as usize + 1,
            3,
            SOCKET_BUFFER - 5,
            SOCKET_BUFFER + 7,
            2_500_000,
            9,
        ];
        sizes
            .iter()
            .enumerate()
            .map(|(n, &size)| (0..size).map(|i| ((i * 7 + n) % 253) as u8).collect())
            .collect()
    }

    #[test]
    fn socket_round_trip_of_small_and_large_files() {
        let files = mixed_sizes();
        let (mut reader, sender) = socket_pair_sending(files.clone());
        for (index, content) in files.iter().enumerate() {
            let size = content.len() as u64;
            assert_eq!(
                reader.next_frame().unwrap(),
                Frame::File {
                    index: index as u64,
                    size
                }
            );
            let out = tempfile::NamedTempFile::new().unwrap();
            let out_fd = OwnedFd::from(out.reopen().unwrap());
            let mut seen = 0;
            let status = reader
                .read_content(size, Some(&out_fd), &mut |n| seen += n)
                .unwrap();
            assert!(matches!(status, Content::Complete), "{status:?}");
            assert_eq!(seen, size);
            assert!(
                std::fs::read(out.path()).unwrap() == *content,
                "file {index} of {size} bytes differs"
            );
        }
        assert_eq!(
            reader.next_frame().unwrap(),
            Frame::Failed {
                index: 99,
                message: "cannot open".into()
            }
        );
        assert_eq!(reader.next_frame().unwrap(), Frame::End);
        sender.join().unwrap();
    }

    /// A destination that refuses writes fails each file on its own, on
    /// both the buffered and the splice path, and the stream stays in step.
    #[test]
    fn socket_write_failures_keep_the_stream_in_step() {
        let files = mixed_sizes();
        let (mut reader, sender) = socket_pair_sending(files.clone());
        let read_only = tempfile::NamedTempFile::new().unwrap();
        let read_only_fd = OwnedFd::from(std::fs::File::open(read_only.path()).unwrap());
        for (index, content) in files.iter().enumerate() {
            let size = content.len() as u64;
            assert_eq!(
                reader.next_frame().unwrap(),
                Frame::File {
                    index: index as u64,
                    size
                }
            );
            let status = reader
                .read_content(size, Some(&read_only_fd), &mut |_| {})
                .unwrap();
            if size == 0 {
                assert!(matches!(status, Content::Complete), "{status:?}");
            } else {
                assert!(
                    matches!(status, Content::WriteFailed(_)),
                    "file {index} of {size} bytes: {status:?}"
                );
            }
        }
        assert!(matches!(
            reader.next_frame().unwrap(),
            Frame::Failed { index: 99, .. }
        ));
        assert_eq!(reader.next_frame().unwrap(), Frame::End);
        sender.join().unwrap();
    }

    #[test]
    fn socket_writer_pads_a_shrunk_small_file() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let stream = TcpStream::connect(address).unwrap();
            let mut writer = FrameWriter::socket(&stream);
            let (_temp, source) = file_with(b"abc");
            assert_eq!(writer.write_file(4, 10, &source, &mut |_| {}).unwrap(), 3);
            writer.write_end().unwrap();
        });
        let (stream, _) = listener.accept().unwrap();
        let mut reader = FrameReader::socket(stream);
        assert_eq!(
            reader.next_frame().unwrap(),
            Frame::File { index: 4, size: 10 }
        );
        let status = reader.read_content(10, None, &mut |_| {}).unwrap();
        assert!(
            matches!(status, Content::SenderFailed(ref m) if m.contains("shrank")),
            "{status:?}"
        );
        assert_eq!(reader.next_frame().unwrap(), Frame::End);
        sender.join().unwrap();
    }

    /// Feeds many random and mutated byte streams to the reader: it must
    /// return frames or errors, never panic, and never allocate more than
    /// its fixed buffers, whatever sizes a peer claims.
    #[test]
    fn random_streams_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let length = (next() % 96) as usize;
            let mut bytes: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            // Start most streams with a valid tag so the deeper paths run.
            if let Some(first) = bytes.first_mut() {
                *first = [TAG_END, TAG_FILE, TAG_FAILED, *first][(next() % 4) as usize];
            }
            let mut reader = FrameReader::Reader(Box::new(Cursor::new(bytes)));
            for _ in 0..8 {
                match reader.next_frame() {
                    Ok(Frame::File { size, .. }) => {
                        if reader.read_content(size, None, &mut |_| {}).is_err() {
                            break;
                        }
                    }
                    Ok(Frame::Failed { message, .. }) => {
                        assert!(message.len() <= MAX_MESSAGE_LEN as usize * 3);
                    }
                    Ok(Frame::End) | Err(_) => break,
                }
            }
        }
    }
}
