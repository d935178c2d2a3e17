//! `tessera init-cluster`: a cluster CA, one certificate per node, and each node's config file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Ports of node `id`: API, metrics, peer (`base + 10·id`, `+1`, `+2`).
fn ports(base: u16, id: u16) -> Result<(u16, u16, u16), Error> {
    let api = u32::from(base) + 10 * u32::from(id);
    if api + 2 > u32::from(u16::MAX) {
        return Err(Error::Config {
            field: "--base-port".into(),
            problem: format!("{base} leaves no room for {id} nodes' ports"),
        });
    }
    let api = api as u16;
    Ok((api, api + 1, api + 2))
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    use std::io::Write;
    let mut f = opts
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(io(format!("writing {}", path.display())))
}

/// Writes the cluster into `out` (which must not exist or be empty): `ca.pem`, and for each
/// node `node-<i>/tessera.toml`, `node-<i>/node.pem`, `node-<i>/node.key` (mode 0600). Every
/// node listens on `host`. Returns the written config paths.
pub fn init(parties: u16, out: &Path, base_port: u16, host: IpAddr) -> Result<Vec<PathBuf>, Error> {
    if !(2..=255).contains(&parties) {
        return Err(Error::Config {
            field: "--parties".into(),
            problem: format!("a cluster has 2 to 255 nodes (got {parties})"),
        });
    }
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(io(format!("reading {}", out.display())))?
            .next()
            .is_some()
    {
        return Err(Error::Config {
            field: "--out".into(),
            problem: format!(
                "{} exists and is not empty; refusing to overwrite a cluster's keys",
                out.display()
            ),
        });
    }
    std::fs::create_dir_all(out).map_err(io(format!("creating {}", out.display())))?;
    let out = out
        .canonicalize()
        .map_err(io(format!("resolving {}", out.display())))?;
    let certs = peer_grpc::generate_cluster(parties).map_err(|e| Error::Config {
        field: "init-cluster".into(),
        problem: e.to_string(),
    })?;
    let ca = out.join("ca.pem");
    write(&ca, &certs.ca_pem, false)?;
    let mut written = Vec::with_capacity(certs.nodes.len());
    for node in &certs.nodes {
        let dir = out.join(format!("node-{}", node.id));
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        write(&dir.join("node.pem"), &node.cert_pem, false)?;
        write(&dir.join("node.key"), &node.key_pem, true)?;
        let kek = {
            use rand_core::{OsRng, RngCore};
            let mut k = zeroize::Zeroizing::new([0u8; 32]);
            OsRng.fill_bytes(k.as_mut_slice());
            zeroize::Zeroizing::new(hex::encode(k.as_slice()))
        };
        write(&dir.join("kek"), &kek, true)?;
        let (api, metrics, peer) = ports(base_port, node.id)?;
        let mut text = format!(
            "# Node {id} of a {parties}-node Tessera cluster, written by `tessera init-cluster`.\n\
             # Start it with: tessera serve --config {cfg}\n\n\
             [server]\n\
             listen = \"{api}\"\n\
             metrics_listen = \"{metrics}\"\n\
             data_dir = {data}\n\n\
             [storage]\n\
             # This node's key-encryption key (keep it off the data directory's backups).\n\
             kek_file = {kek}\n\n\
             [cluster]\n\
             party_id = {id}\n\
             peer_listen = \"{peer}\"\n\
             ca = {ca}\n\
             cert = {cert}\n\
             key = {key}\n\
             call_timeout_ms = 2000\n",
            id = node.id,
            cfg = dir.join("tessera.toml").display(),
            api = SocketAddr::new(host, api),
            metrics = SocketAddr::new(host, metrics),
            peer = SocketAddr::new(host, peer),
            data = toml_path(&dir.join("data")),
            kek = toml_path(&dir.join("kek")),
            ca = toml_path(&ca),
            cert = toml_path(&dir.join("node.pem")),
            key = toml_path(&dir.join("node.key")),
        );
        for other in certs.nodes.iter().filter(|o| o.id != node.id) {
            let (_, _, p) = ports(base_port, other.id)?;
            text.push_str(&format!(
                "\n[[cluster.peers]]\nid = {}\naddress = \"{}\"\n",
                other.id,
                SocketAddr::new(host, p)
            ));
        }
        let cfg = dir.join("tessera.toml");
        write(&cfg, &text, false)?;
        written.push(cfg);
    }
    Ok(written)
}

/// A path as a TOML string.
fn toml_path(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::{Config, Layer};

    #[test]
    fn every_node_config_loads_and_names_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("c");
        let cfgs = init(3, &out, 7100, IpAddr::from([127, 0, 0, 1])).unwrap();
        assert_eq!(cfgs.len(), 3);
        for (i, path) in cfgs.iter().enumerate() {
            let mut cfg = Config::default();
            cfg.apply(&Layer::from_file(path).unwrap()).unwrap();
            let c = cfg.cluster.unwrap();
            assert_eq!(usize::from(c.party_id), i + 1);
            assert_eq!(c.peers.len(), 2);
            assert!(c.peers.iter().all(|(id, _)| *id != c.party_id));
            assert!(
                std::fs::read_to_string(&c.key)
                    .unwrap()
                    .contains("PRIVATE KEY")
            );
            assert!(c.ca.ends_with("ca.pem"));
            let kek = cfg.storage.kek_file.clone().unwrap();
            assert_eq!(std::fs::read_to_string(&kek).unwrap().len(), 64);
            assert_eq!(cfg.server.listen.port(), 7100 + 10 * (i as u16 + 1));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                for secret in [&c.key, &kek] {
                    let mode = std::fs::metadata(secret).unwrap().permissions().mode();
                    assert_eq!(mode & 0o077, 0, "{} is private", secret.display());
                }
            }
        }
        let again = init(3, &out, 7100, IpAddr::from([127, 0, 0, 1])).unwrap_err();
        assert!(again.to_string().contains("not empty"), "{again}");
    }
}
