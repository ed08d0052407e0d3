//! The byte stream of a data connection, plain TCP or TLS over TCP: the
//! async form that the data-plane listener admits, and the blocking form
//! that the transfer engine reads and writes frames on.
//!
//! Plain TCP keeps the zero-copy paths (`splice` into files, `sendfile` out
//! of them). Over TLS, bytes pass through rustls and user-space buffers.

use std::io::{self, BufWriter, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use blit_core::{Error, ErrorKind, Result};
use blit_transfer::frame::{FrameReader, FrameWriter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Size of the plaintext buffer in front of a blocking TLS stream, so that
/// small frame headers share TLS records with the bytes that follow.
const TLS_WRITE_BUFFER: usize = 64 << 10;

/// An admitted data connection's stream, positioned just after the token.
#[derive(Debug)]
pub enum DataStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP; boxed because the TLS state is large.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A data connection's stream in blocking mode, for the transfer engine.
#[derive(Debug)]
pub enum BlockingDataStream {
    /// Plain TCP.
    Plain(std::net::TcpStream),
    /// TLS over TCP.
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>>),
}

impl DataStream {
    /// Returns whether the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, DataStream::Tls(_))
    }

    /// Switches the socket to blocking mode and hands over the TLS state,
    /// including bytes that rustls has read but not yet returned.
    ///
    /// # Errors
    ///
    /// Returns the error of switching the socket to blocking mode.
    pub fn into_blocking(self) -> io::Result<BlockingDataStream> {
        match self {
            DataStream::Plain(stream) => Ok(BlockingDataStream::Plain(blocking_std(stream)?)),
            DataStream::Tls(stream) => {
                let (stream, connection) = stream.into_inner();
                let stream = blocking_std(stream)?;
                Ok(BlockingDataStream::Tls(Box::new(rustls::StreamOwned::new(
                    connection, stream,
                ))))
            }
        }
    }
}

fn blocking_std(stream: TcpStream) -> io::Result<std::net::TcpStream> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

impl AsyncRead for DataStream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DataStream::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            DataStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for DataStream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            DataStream::Plain(stream) => Pin::new(stream).poll_write(context, bytes),
            DataStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, bytes),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DataStream::Plain(stream) => Pin::new(stream).poll_flush(context),
            DataStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DataStream::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            DataStream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

impl BlockingDataStream {
    /// Returns a frame reader over this stream: `splice` into files for
    /// plain TCP, buffered reads through rustls for TLS.
    pub fn into_frame_reader(self) -> FrameReader {
        match self {
            BlockingDataStream::Plain(stream) => FrameReader::socket(stream),
            BlockingDataStream::Tls(stream) => FrameReader::Reader(stream),
        }
    }

    /// Runs `send` with a frame writer over this stream (`sendfile` for
    /// plain TCP), then flushes what is buffered and, for TLS, ends the
    /// session with a close_notify alert.
    ///
    /// # Errors
    ///
    /// Returns the error of `send`, or [`ErrorKind::Network`] when the
    /// buffered bytes cannot be written.
    pub fn send_frames(self, send: impl FnOnce(&mut FrameWriter<'_>) -> Result<()>) -> Result<()> {
        match self {
            BlockingDataStream::Plain(stream) => send(&mut FrameWriter::socket(&stream)),
            BlockingDataStream::Tls(mut stream) => {
                let mut buffered = BufWriter::with_capacity(TLS_WRITE_BUFFER, stream.as_mut());
                send(&mut FrameWriter::Writer(&mut buffered))?;
                buffered.flush().map_err(flush_error)?;
                drop(buffered);
                stream.conn.send_close_notify();
                stream.flush().map_err(flush_error)
            }
        }
    }
}

fn flush_error(err: io::Error) -> Error {
    Error::new(
        ErrorKind::Network,
        format!("the data connection failed while sending its last bytes: {err}"),
    )
}

impl Read for BlockingDataStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            BlockingDataStream::Plain(stream) => stream.read(buffer),
            BlockingDataStream::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for BlockingDataStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            BlockingDataStream::Plain(stream) => stream.write(bytes),
            BlockingDataStream::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BlockingDataStream::Plain(stream) => stream.flush(),
            BlockingDataStream::Tls(stream) => stream.flush(),
        }
    }
}
