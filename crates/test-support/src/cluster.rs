//! A distributed cluster of real `tessera` processes on this machine: `tessera init-cluster`
//! writes the CA, certificates and configs; each node runs as its own process with its own
//! data directory and KEK.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::{Server, tessera_bin};

/// A cluster's files and its running nodes (index `i − 1` is party `i`).
pub struct Cluster {
    /// The directory `init-cluster` wrote.
    pub dir: PathBuf,
    /// Node i's config file.
    pub configs: Vec<PathBuf>,
    /// Node i's process, when running.
    pub nodes: Vec<Option<Server>>,
    /// Environment per node, used at every start.
    pub env: Vec<Vec<(String, String)>>,
}

/// A base port whose peer ports (`base + 10·i + 2`) are free now.
fn free_base(parties: u16) -> u16 {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    for _ in 0..200 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let base = 20_000 + (seed % 3_000) as u16 * 10;
        let free = (1..=parties).all(|i| {
            let p = base + 10 * i;
            (p..=p + 2).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        });
        if free {
            return base;
        }
    }
    panic!("no free port range for the cluster");
}

impl Cluster {
    /// Writes an `n`-node cluster under `dir` (nothing started).
    pub fn init(parties: u16, dir: &Path) -> Cluster {
        let out = dir.join("cluster");
        let base = free_base(parties);
        let status = Command::new(tessera_bin())
            .args(["init-cluster", "--parties", &parties.to_string(), "--out"])
            .arg(&out)
            .args(["--base-port", &base.to_string()])
            .status()
            .expect("run tessera init-cluster");
        assert!(status.success(), "init-cluster failed");
        let configs = (1..=parties)
            .map(|i| out.join(format!("node-{i}/tessera.toml")))
            .collect();
        Cluster {
            dir: out,
            configs,
            nodes: (0..parties).map(|_| None).collect(),
            env: (0..parties).map(|_| Vec::new()).collect(),
        }
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: u16) -> PathBuf {
        self.dir.join(format!("node-{i}/data"))
    }

    /// Starts node `i` (1-based).
    pub fn start(&mut self, i: u16) -> &Server {
        let k = usize::from(i) - 1;
        let env: Vec<(&str, &str)> = self.env[k]
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let server = Server::start_node(&self.configs[k], &self.data_dir(i), &env);
        self.nodes[k] = Some(server);
        self.nodes[k].as_ref().expect("just started")
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for i in 1..=self.configs.len() as u16 {
            self.start(i);
        }
    }

    /// Running node `i`.
    pub fn node(&self, i: u16) -> &Server {
        self.nodes[usize::from(i) - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} is not running"))
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill9(&mut self, i: u16) {
        if let Some(s) = self.nodes[usize::from(i) - 1].take() {
            s.kill9();
        }
    }

    /// Node `i`'s peer address as its config states it.
    pub fn peer_addr(&self, i: u16) -> std::net::SocketAddr {
        let text = std::fs::read_to_string(&self.configs[usize::from(i) - 1]).expect("config");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("peer_listen = "))
            .expect("peer_listen");
        line.trim_matches('"').parse().expect("address")
    }

    /// Rewrites node `i`'s config so that it reaches party `peer` at `addr`.
    pub fn route(&self, i: u16, peer: u16, addr: std::net::SocketAddr) {
        let path = &self.configs[usize::from(i) - 1];
        let text = std::fs::read_to_string(path).expect("config");
        let marker = format!("[[cluster.peers]]\nid = {peer}\naddress = \"");
        let at = text.find(&marker).expect("peer entry") + marker.len();
        let end = at + text[at..].find('"').expect("closing quote");
        let new = format!("{}{addr}{}", &text[..at], &text[end..]);
        std::fs::write(path, new).expect("write config");
    }
}
