//! Helpers shared by the integration tests: a config with two modules in a
//! temporary directory, an in-process server on loopback ports, and a gRPC
//! client that waits until the server responds.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use blit_proto::v2::StatusRequest;
use blit_proto::v2::blit_client::BlitClient;
use blitd::config::Config;
use blitd::{Server, ServerOptions};
use tempfile::TempDir;
use tonic::transport::Channel;

/// Upper bound for waiting on any event in these tests; generous so a
/// loaded machine does not fail them.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A temporary directory holding `config.toml` and the module directories
/// `alpha` (read-write) and `beta` (read-only).
pub struct TestConfig {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl TestConfig {
    /// Writes a config with `auth = "none"` on loopback ports chosen by the
    /// OS, with `daemon_extra` appended to the `[daemon]` table.
    pub fn new(daemon_extra: &str) -> TestConfig {
        TestConfig::with_module_keys(daemon_extra, "", "")
    }

    /// Writes the config of [`TestConfig::new`] with `alpha_keys` and
    /// `beta_keys` appended to the tables of those modules.
    pub fn with_module_keys(daemon_extra: &str, alpha_keys: &str, beta_keys: &str) -> TestConfig {
        let dir = tempfile::tempdir().unwrap();
        let alpha = dir.path().join("alpha");
        let beta = dir.path().join("beta");
        std::fs::create_dir(&alpha).unwrap();
        std::fs::create_dir(&beta).unwrap();
        let text = format!(
            "[daemon]\n\
             listen_addr = \"127.0.0.1:0\"\n\
             data_port = 0\n\
             auth = \"none\"\n\
             {daemon_extra}\n\
             \n\
             [[modules]]\n\
             name = \"alpha\"\n\
             path = {alpha:?}\n\
             comment = \"first module\"\n\
             {alpha_keys}\n\
             \n\
             [[modules]]\n\
             name = \"beta\"\n\
             path = {beta:?}\n\
             read_only = true\n\
             {beta_keys}\n"
        );
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        TestConfig { dir, path }
    }

    pub fn load(&self) -> Config {
        Config::load(&self.path).unwrap()
    }

    pub fn module_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts an in-process server on the test config.
pub async fn start_server(options: ServerOptions) -> (Server, TestConfig) {
    let config = TestConfig::new("");
    let server = Server::start(config.load(), options).await.unwrap();
    (server, config)
}

/// Connects to the control plane at `addr`, retrying until a Status call
/// succeeds or [`DEADLINE`] passes.
pub async fn connect(addr: SocketAddr) -> BlitClient<Channel> {
    let started = Instant::now();
    loop {
        let error = match BlitClient::connect(format!("http://{addr}")).await {
            Ok(mut client) => match client.status(StatusRequest {}).await {
                Ok(_) => return client,
                Err(status) => status.to_string(),
            },
            Err(err) => err.to_string(),
        };
        assert!(
            started.elapsed() < DEADLINE,
            "blitd at {addr} did not answer Status within {DEADLINE:?}: {error}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
