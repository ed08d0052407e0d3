//! `blitd tls self-signed`: create a private CA and a server certificate
//! that it signs, for `[daemon.tls]`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use blit_core::{Error, ErrorKind, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::tokens::{write_atomic, write_atomic_with_mode};

/// Names of the local machine. A certificate for one of them is made valid
/// for all of them, so that clients may use any of them.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How far before the moment of creation the certificates become valid, so
/// that a client whose clock is somewhat behind still accepts them.
const CLOCK_SKEW_ALLOWANCE: Duration = Duration::hours(1);

/// Default lifetime of the certificates, in days.
const DEFAULT_DAYS: u32 = 825;

/// The TLS subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TlsAction {
    /// Create a private CA and a server certificate that it signs. Writes
    /// ca.pem (give it to clients with --tls-ca), cert.pem and key.pem
    /// (mode 0600) into DIR, and prints the [daemon.tls] lines for the
    /// config on stdout, so `>> config.toml` appends them. The CA's private
    /// key is not kept, so the CA signs no other certificate.
    SelfSigned {
        /// Directory for ca.pem, cert.pem and key.pem; created if missing.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Host name or IP address that clients put in blits:// addresses;
        /// repeat for more names. localhost, 127.0.0.1 and ::1 each make
        /// the certificate valid for all three.
        #[arg(long = "host", value_name = "NAME", required = true)]
        hosts: Vec<String>,
        /// Days from now that the certificates stay valid; create new ones
        /// before then.
        #[arg(
            long,
            value_name = "DAYS",
            default_value_t = DEFAULT_DAYS,
            value_parser = clap::value_parser!(u32).range(1..=36_500)
        )]
        days: u32,
        /// Replace ca.pem, cert.pem and key.pem if they exist.
        #[arg(long)]
        force: bool,
    },
}

/// Runs a TLS subcommand and returns the exit status: 0 on success, 1 on
/// any error (printed on stderr).
pub(crate) fn run(action: &TlsAction) -> u8 {
    let result = match action {
        TlsAction::SelfSigned {
            out,
            hosts,
            days,
            force,
        } => self_signed(out, hosts, *days, *force),
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("blitd: {err}");
            1
        }
    }
}

/// A CA certificate, and a server certificate with its private key, in PEM.
struct SelfSignedSet {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    not_after: OffsetDateTime,
}

fn self_signed(out: &Path, hosts: &[String], days: u32, force: bool) -> Result<()> {
    let names = subject_alt_names(hosts)?;
    let paths = ["ca.pem", "cert.pem", "key.pem"].map(|name| out.join(name));
    if !force {
        if let Some(existing) = paths.iter().find(|path| path.exists()) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} exists; pass --force to replace ca.pem, cert.pem and key.pem, or choose \
                     another --out",
                    existing.display()
                ),
            )
            .with_path(existing));
        }
    }
    std::fs::create_dir_all(out).map_err(|err| Error::io("cannot create directory", out, err))?;
    let out = std::fs::canonicalize(out)
        .map_err(|err| Error::io("cannot resolve directory", out, err))?;
    let [ca_path, cert_path, key_path] = ["ca.pem", "cert.pem", "key.pem"].map(|n| out.join(n));

    let set = generate(&hosts[0], &names, days)?;
    write_atomic(&key_path, &set.key_pem)?;
    write_atomic_with_mode(&cert_path, &set.cert_pem, 0o644)?;
    write_atomic_with_mode(&ca_path, &set.ca_pem, 0o644)?;

    println!("[daemon.tls]");
    println!("cert = {}", toml_path(&cert_path)?);
    println!("key = {}", toml_path(&key_path)?);
    let valid_for: Vec<String> = names.iter().map(san_display).collect();
    eprintln!(
        "blitd: wrote {}, {} and {} (the key with mode 0600), valid for {} until {} UTC.",
        ca_path.display(),
        cert_path.display(),
        key_path.display(),
        valid_for.join(", "),
        set.not_after.date(),
    );
    eprintln!(
        "blitd: add the lines above to the config and restart blitd. Clients use \
         blits://{}[:PORT]/ addresses and pass --tls-ca {} (tls_ca= in Python).",
        host_for_url(&hosts[0]),
        ca_path.display()
    );
    Ok(())
}

/// Returns the subject alternative names for `hosts`: each host as a DNS
/// name or IP address, and all of [`LOOPBACK_NAMES`] if any host is one of
/// them.
fn subject_alt_names(hosts: &[String]) -> Result<Vec<SanType>> {
    let mut requested: Vec<String> = Vec::new();
    for host in hosts {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        check_host(host)?;
        let host = host.to_ascii_lowercase();
        if LOOPBACK_NAMES.contains(&host.as_str()) {
            requested.extend(LOOPBACK_NAMES.iter().map(|name| name.to_string()));
        } else {
            requested.push(host);
        }
    }
    let mut names = Vec::new();
    for name in requested {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.as_str().try_into().map_err(|err| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("--host {name:?} cannot go into a certificate: {err}"),
                )
            })?),
        };
        if !names.contains(&san) {
            names.push(san);
        }
    }
    Ok(names)
}

/// Checks that a client can name `host` in a blits:// address and verify a
/// certificate for it.
fn check_host(host: &str) -> Result<()> {
    if rustls::pki_types::ServerName::try_from(host).is_err() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "--host {host:?} is not a host name or IP address; give the name that clients \
                 use, such as files.example.com or 192.0.2.10, without scheme or port"
            ),
        ));
    }
    Ok(())
}

fn generate(common_name: &str, names: &[SanType], days: u32) -> Result<SelfSignedSet> {
    let now = OffsetDateTime::now_utc();
    let not_before = now - CLOCK_SKEW_ALLOWANCE;
    let not_after = now + Duration::days(i64::from(days));

    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("blitd CA for {common_name}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_key = KeyPair::generate().map_err(generation_error)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(generation_error)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.subject_alt_names = names.to_vec();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let key = KeyPair::generate().map_err(generation_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(generation_error)?;

    Ok(SelfSignedSet {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

fn generation_error(err: rcgen::Error) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("cannot create the certificates: {err}"),
    )
}

/// Returns `path` as a quoted TOML string.
fn toml_path(path: &Path) -> Result<String> {
    let text = path.to_str().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} is not valid UTF-8, so a TOML config cannot name it; choose another --out",
                path.display()
            ),
        )
    })?;
    Ok(toml::Value::String(text.to_string()).to_string())
}

fn san_display(name: &SanType) -> String {
    match name {
        SanType::DnsName(name) => name.as_str().to_string(),
        SanType::IpAddress(ip) => ip.to_string(),
        other => format!("{other:?}"),
    }
}

fn host_for_url(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_host_covers_all_loopback_names() {
        let names = subject_alt_names(&["localhost".to_string()]).unwrap();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&SanType::IpAddress("127.0.0.1".parse().unwrap())));
        assert!(names.contains(&SanType::IpAddress("::1".parse().unwrap())));
        assert!(names.contains(&SanType::DnsName("localhost".try_into().unwrap())));
    }

    #[test]
    fn other_host_stays_alone() {
        let names = subject_alt_names(&["Files.Example.com".to_string()]).unwrap();
        assert_eq!(
            names,
            vec![SanType::DnsName("files.example.com".try_into().unwrap())]
        );
    }

    #[test]
    fn host_with_port_rejected() {
        let err = subject_alt_names(&["example.com:50051".to_string()]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("without scheme or port"), "{err}");
    }
}
