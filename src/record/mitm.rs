//! HTTPS interception for forward mode: a local certificate authority (created once, kept in
//! the CA folder with its private key readable by the owner only) and a certificate per host,
//! issued on first use and cached, served through a rustls server configuration.
//!
//! All leaf certificates share one key (also kept in the folder), so a browser can be told to
//! trust either the CA or that key (`--ignore-certificate-errors-spki-list`).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData as _,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CA_CERT: &str = "chorus-ca.pem";
const CA_KEY: &str = "chorus-ca-key.pem";
const LEAF_KEY: &str = "chorus-leaf-key.pem";
const CA_NAME: &str = "chorus recording CA (local, do not share)";

/// Why the CA could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {error} (the CA folder is set with --ca-dir)", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: not a usable key or certificate ({message}); delete the CA folder's files to create a new CA", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{}: this private key can be read by other users (mode {mode:04o}); whoever copied it can \
         forge HTTPS sites for every browser that trusts the chorus CA. If nobody else uses this \
         machine, run chmod 600 {}; otherwise delete the CA folder (a new CA is made on the next \
         run) and remove the old CA from the browsers that trust it",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
}

/// The local CA and the per-host certificates issued so far.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    leaf_key: KeyPair,
    dir: PathBuf,
    created: bool,
    configs: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("dir", &self.dir).finish()
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "chorus");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Ca {
    /// Loads the CA from `dir`, or creates it there the first time (keys mode 0600).
    pub fn load_or_create(dir: &Path) -> Result<Ca, CaError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |error| CaError::Io { path, error }
        };
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let leaf_path = dir.join(LEAF_KEY);
        let created = !(cert_path.exists() && key_path.exists() && leaf_path.exists());
        let (ca_key, leaf_key, ca_pem) = if created {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            let invalid = |message: String| CaError::Invalid {
                path: key_path.clone(),
                message,
            };
            let ca_key = KeyPair::generate().map_err(|e| invalid(e.to_string()))?;
            let leaf_key = KeyPair::generate().map_err(|e| invalid(e.to_string()))?;
            let cert = ca_params()
                .self_signed(&ca_key)
                .map_err(|e| invalid(e.to_string()))?;
            write_private(&key_path, &ca_key.serialize_pem()).map_err(io_err(&key_path))?;
            write_private(&leaf_path, &leaf_key.serialize_pem()).map_err(io_err(&leaf_path))?;
            fs::write(&cert_path, cert.pem()).map_err(io_err(&cert_path))?;
            (ca_key, leaf_key, cert.pem())
        } else {
            let read_key = |path: &Path| -> Result<KeyPair, CaError> {
                check_private(path)?;
                let text = fs::read_to_string(path).map_err(io_err(path))?;
                KeyPair::from_pem(&text).map_err(|e| CaError::Invalid {
                    path: path.to_owned(),
                    message: e.to_string(),
                })
            };
            let ca_pem = fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
            (read_key(&key_path)?, read_key(&leaf_path)?, ca_pem)
        };
        let ca_der = pem_certificate(&ca_pem).ok_or_else(|| CaError::Invalid {
            path: cert_path.clone(),
            message: "no CERTIFICATE block".to_owned(),
        })?;
        // The issuer's name and key identifier derive from the same parameters and key the
        // certificate was made from, so leaves chain to the certificate on disk.
        let issuer = Issuer::new(ca_params(), ca_key);
        Ok(Ca {
            issuer,
            ca_der,
            leaf_key,
            dir: dir.to_owned(),
            created,
            configs: Mutex::new(HashMap::new()),
        })
    }

    /// Whether this run created the CA (so the user should be told how to trust it).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The CA certificate file to import into a browser or system trust store.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// `BASE64(SHA256(SPKI))` of the CA key and of the shared leaf key, comma-separated, as
    /// Chromium's `--ignore-certificate-errors-spki-list` takes them.
    pub fn spki_list(&self) -> String {
        let ca_key = self.issuer.key();
        [
            ca_key.subject_public_key_info(),
            self.leaf_key.subject_public_key_info(),
        ]
        .iter()
        .map(|spki| {
            let digest = ring::digest::digest(&ring::digest::SHA256, spki);
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        })
        .collect::<Vec<_>>()
        .join(",")
    }

    /// How to make a browser trust the CA, for the terminal.
    pub fn trust_instructions(&self) -> String {
        format!(
            "HTTPS interception CA: {cert}\n  \
             trust it in Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import\n  \
             trust it system-wide on Debian: cp {cert} /usr/local/share/ca-certificates/chorus-ca.crt && update-ca-certificates\n  \
             or start Chromium with --ignore-certificate-errors-spki-list={spki}\n  \
             anyone with the folder's key files can intercept your HTTPS: keep them private",
            cert = self.cert_path().display(),
            spki = self.spki_list(),
        )
    }

    /// The server configuration presenting a certificate for `host` (a DNS name or an IP
    /// address), issued on first use.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if let Some(config) = self
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&host)
        {
            return Ok(config.clone());
        }
        let mut params = CertificateParams::new(vec![host.clone()]).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(DnType::CommonName, host.clone());
        let leaf = params
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone(), self.ca_der.clone()], key)
                .map_err(|e| e.to_string())?;
        // HTTP/2 first, as sites offer it; a browser that wants HTTP/1.1 (for a WebSocket)
        // offers only that.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        self.configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host, config.clone());
        Ok(config)
    }
}

fn pem_certificate(text: &str) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(text.as_bytes()).next()?.ok()
}

/// Refuses a key file that users other than its owner may read or write.
fn check_private(path: &Path) -> Result<(), CaError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let metadata = fs::metadata(path).map_err(|error| CaError::Io {
            path: path.to_owned(),
            error,
        })?;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CaError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_created_once_with_a_private_key_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ca::load_or_create(dir.path()).unwrap();
        assert!(first.created());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.path().join(CA_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        first.server_config("127.0.0.1").unwrap();
        first.server_config("example.org").unwrap();
        let second = Ca::load_or_create(dir.path()).unwrap();
        assert!(!second.created());
        assert_eq!(first.spki_list(), second.spki_list());
        assert!(second.trust_instructions().contains("chorus-ca.pem"));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_can_read_is_refused_with_what_to_do() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        Ca::load_or_create(dir.path()).unwrap();
        let key = dir.path().join(CA_KEY);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Ca::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: this private key can be read by other users (mode 0644)",
                key.display()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("chmod 600 {}", key.display())),
            "{err}"
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Ca::load_or_create(dir.path()).is_ok());
    }
}
