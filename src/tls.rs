//! The HTTPS listener's certificate: the operator's own (`--tls-cert`/`--tls-key`), or
//! one issued at start by a CA that Longin makes once in `<data-dir>/tls/`.
//!
//! HTTPS is there for Kubernetes clients: client-go sends a kubeconfig's bearer token
//! only over https. The generated CA is what `longin kubeconfig` hands out as the
//! kubeconfig's certificate authority; the server certificate is issued again at each
//! start, so a changed listen address or `--tls-san` needs no manual step. Go refuses
//! a certificate without subject alternative names, so the server one names
//! `localhost`, the loopback addresses, the listen address and every `--tls-san`.

use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Where the generated CA lives, under the data dir.
pub const TLS_DIR: &str = "tls";
const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const CA_NAME: &str = "Longin local CA";
/// The CA outlives many restarts; the server certificate is re-issued at each.
const CA_DAYS: i64 = 3650;
const SERVER_DAYS: i64 = 397;

/// A ready HTTPS configuration and the CA clients should trust (none when the
/// operator's certificate is used: it is presumably trusted already).
#[derive(Debug, Clone)]
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: Option<String>,
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// PEM files given by the operator.
    Files { cert: PathBuf, key: PathBuf },
    /// Issued by the data dir's CA for these names (beside the defaults).
    Generated {
        data_dir: PathBuf,
        listen: SocketAddr,
        extra_names: Vec<String>,
    },
}

/// Loads or issues the certificate.
///
/// # Errors
/// Unreadable or invalid PEM files, a data dir that cannot be written, or a CA whose
/// files are damaged.
pub fn load(source: &Source) -> anyhow::Result<Tls> {
    let (chain, key, ca_pem) = match source {
        Source::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("reading {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("parsing {}", cert.display()))?;
            anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading the private key {}", key.display()))?;
            (chain, key, None)
        }
        Source::Generated {
            data_dir,
            listen,
            extra_names,
        } => {
            let (ca_params, ca_key, ca_pem) = load_or_create_ca(&data_dir.join(TLS_DIR))?;
            let issuer = Issuer::new(ca_params, ca_key);
            let params = server_params(*listen, extra_names)?;
            let key = KeyPair::generate().context("generating the server key")?;
            let cert = params
                .signed_by(&key, &issuer)
                .context("issuing the server certificate")?;
            let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
            let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
                .context("reading the CA certificate back")?;
            (vec![cert.der().clone(), ca_der], key, Some(ca_pem))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate does not match its key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        ca_pem,
    })
}

/// The CA's parameters: the same at every start, so a reloaded key signs
/// certificates that chain to the saved CA certificate.
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time_now();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(CA_DAYS);
    Ok(params)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// The CA of `dir`, made on first use (the key readable by its owner only).
fn load_or_create_ca(dir: &Path) -> anyhow::Result<(CertificateParams, KeyPair, String)> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    let params = ca_params()?;
    if key_path.exists() && cert_path.exists() {
        let key = KeyPair::from_pem(
            &fs::read_to_string(&key_path)
                .with_context(|| format!("reading {}", key_path.display()))?,
        )
        .with_context(|| format!("parsing {}", key_path.display()))?;
        let pem = fs::read_to_string(&cert_path)
            .with_context(|| format!("reading {}", cert_path.display()))?;
        return Ok((params, key, pem));
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate().context("generating the CA key")?;
    let cert = params.self_signed(&key).context("making the CA")?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    fs::write(&cert_path, cert.pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "made a certificate authority for the HTTPS listener");
    Ok((params, key, cert.pem()))
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The names a server certificate for `listen` carries.
#[must_use]
pub fn server_names(listen: SocketAddr, extra_names: &[String]) -> Vec<SanType> {
    let mut ips: Vec<IpAddr> = vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
    if !listen.ip().is_unspecified() && !ips.contains(&listen.ip()) {
        ips.push(listen.ip());
    }
    let mut names = vec!["localhost".to_owned()];
    for extra in extra_names {
        match extra.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !names.contains(extra) => names.push(extra.clone()),
            Err(_) => {}
        }
    }
    names
        .into_iter()
        .filter_map(|name| name.try_into().ok().map(SanType::DnsName))
        .chain(ips.into_iter().map(SanType::IpAddress))
        .collect()
}

fn server_params(listen: SocketAddr, extra_names: &[String]) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "longin");
    params.subject_alt_names = server_names(listen, extra_names);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time_now();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(SERVER_DAYS);
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_loopback_the_listen_address_and_extras_once() {
        let names = server_names(
            "10.1.2.3:6443".parse().expect("addr"),
            &[
                "longin.example.org".to_owned(),
                "127.0.0.1".to_owned(),
                "longin.example.org".to_owned(),
                "192.168.1.9".to_owned(),
            ],
        );
        let shown: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        assert_eq!(shown.len(), 6, "{shown:?}");
        for wanted in [
            "localhost",
            "longin.example.org",
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "192.168.1.9",
        ] {
            assert!(
                shown.iter().any(|s| s.contains(wanted)),
                "{wanted} in {shown:?}"
            );
        }
        let unspecified = server_names("0.0.0.0:6443".parse().expect("addr"), &[]);
        assert_eq!(unspecified.len(), 3, "{unspecified:?}");
    }

    #[test]
    fn the_ca_is_made_once_and_signs_each_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = Source::Generated {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            extra_names: vec![],
        };
        let first = load(&source).expect("first start");
        let second = load(&source).expect("second start");
        assert_eq!(first.ca_pem, second.ca_pem, "the CA is kept");
        let key = dir.path().join(TLS_DIR).join(CA_KEY);
        let mode = fs::metadata(&key).expect("key").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn the_operators_files_are_used_and_no_ca_is_handed_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["longin.example.org".to_owned()])
                .expect("certificate");
        let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        fs::write(&cert_path, cert.pem()).expect("cert");
        fs::write(&key_path, signing_key.serialize_pem()).expect("key");
        let tls = load(&Source::Files {
            cert: cert_path,
            key: key_path.clone(),
        })
        .expect("loads");
        assert!(tls.ca_pem.is_none());
        // A key that is not the certificate's is refused at start, not at handshake.
        let other = KeyPair::generate().expect("key");
        fs::write(&key_path, other.serialize_pem()).expect("key");
        let err = load(&Source::Files {
            cert: dir.path().join("tls.crt"),
            key: key_path,
        })
        .expect_err("mismatched key");
        assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    }

    #[test]
    fn the_operators_files_are_used_and_a_missing_one_is_named() {
        let err = load(&Source::Files {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        })
        .expect_err("missing files");
        assert!(
            format!("{err:#}").contains("/nonexistent/cert.pem"),
            "{err:#}"
        );
    }
}
