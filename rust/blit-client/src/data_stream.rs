//! Data connections of the client. Each one opens over plain TCP or, for
//! `blits://`, over TLS with the control plane's trust, then presents its
//! token and carries frames.
//!
//! Plain TCP keeps the zero-copy paths (`sendfile` out of files, `splice`
//! into them). Over TLS, bytes pass through rustls and user-space buffers.

use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};

use blit_core::{Error, ErrorKind, Result};
use blit_transfer::frame::{FrameReader, FrameWriter};
use rustls::{ClientConnection, StreamOwned};

use crate::CONNECT_TIMEOUT;
use crate::tls::ClientTls;

/// Size of the plaintext buffer in front of a TLS stream, so that small
/// frame headers share TLS records with the bytes that follow.
const TLS_WRITE_BUFFER: usize = 64 << 10;

/// An open data connection, positioned just after its token.
pub(crate) enum DataStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP; boxed because the TLS state is large.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl DataStream {
    /// Connects to `address`, runs the TLS handshake when `tls` is given,
    /// and sends `token`. Connecting and the handshake each get
    /// [`CONNECT_TIMEOUT`].
    pub(crate) fn open(
        address: SocketAddr,
        token: &[u8],
        tls: Option<&ClientTls>,
    ) -> io::Result<DataStream> {
        let stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        let Some(tls) = tls else {
            (&stream).write_all(token)?;
            return Ok(DataStream::Plain(stream));
        };
        stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
        let connection = ClientConnection::new(tls.data.clone(), tls.server_name.clone())
            .map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(connection, stream);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        stream.write_all(token)?;
        stream.flush()?;
        // A transfer may pause for longer than a handshake may take.
        stream.sock.set_read_timeout(None)?;
        stream.sock.set_write_timeout(None)?;
        Ok(DataStream::Tls(Box::new(stream)))
    }

    /// Returns a second handle to the TCP socket, which another thread uses
    /// to shut the connection down when the transfer is cancelled.
    pub(crate) fn socket_handle(&self) -> io::Result<TcpStream> {
        match self {
            DataStream::Plain(stream) => stream.try_clone(),
            DataStream::Tls(stream) => stream.sock.try_clone(),
        }
    }

    /// Returns a frame reader over this stream: `splice` into files for
    /// plain TCP, buffered reads through rustls for TLS.
    pub(crate) fn into_frame_reader(self) -> FrameReader {
        match self {
            DataStream::Plain(stream) => FrameReader::socket(stream),
            DataStream::Tls(stream) => FrameReader::Reader(stream),
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
    pub(crate) fn send_frames(
        self,
        send: impl FnOnce(&mut FrameWriter<'_>) -> Result<()>,
    ) -> Result<()> {
        match self {
            DataStream::Plain(stream) => send(&mut FrameWriter::socket(&stream)),
            DataStream::Tls(mut stream) => {
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
