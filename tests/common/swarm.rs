//! A real multi-node Docker Swarm made by the test itself: each node is its own
//! `dockerd` in a network namespace of its own, on a bridge with a private /24 of the
//! test's, with its own data root, exec root, socket, containerd namespaces and
//! hostname; the first node inits the swarm and the others join it as workers.
//!
//! - `nsenter --net` (not `ip netns exec`, which remounts /sys and hides the cgroup
//!   mounts: dockerd then fails with "Devices cgroup isn't mounted");
//! - `--config-file` an empty JSON file (the machine's daemon.json sets a data root
//!   and storage driver), `--storage-driver vfs`, iptables on (host-mode publishing
//!   needs it inside the node);
//! - the image registry at the same address on every node as on the host: a second
//!   `docker-registry` inside each namespace on 127.0.0.1:5000, over the host
//!   registry's storage, so a node pulls what the host pushed.
//!
//! Everything it made goes on drop, also when the test panics: daemons and what they
//! started, namespaces, links, the forwarding rule, directories.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One node of the swarm.
#[derive(Debug)]
pub struct Node {
    /// Its hostname (and network namespace's name).
    pub name: String,
    /// Where its published ports answer, from the host.
    pub address: String,
    root: PathBuf,
    host_link: String,
    killed: bool,
    /// The processes started for it (`unshare … dockerd`, the registry), reaped on drop.
    children: Vec<std::process::Child>,
}

impl Node {
    /// `unix://…` of its engine.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.root.join("docker.sock").display())
    }

    /// `docker` against this node, stdout; panics when it fails.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .arg("-H")
            .arg(self.docker_host())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker -H {} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The host pids of the containers running on it.
    fn container_pids(&self) -> Vec<String> {
        let Ok(ids) = run("docker", &["-H", &self.docker_host(), "ps", "-q"]) else {
            return Vec::new();
        };
        ids.split_whitespace()
            .filter_map(|id| {
                run(
                    "docker",
                    &[
                        "-H",
                        &self.docker_host(),
                        "inspect",
                        "-f",
                        "{{.State.Pid}}",
                        id,
                    ],
                )
                .ok()
            })
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty() && p != "0")
            .collect()
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.root.join("docker.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// A swarm of `nodes.len()` nodes; `nodes[0]` is its manager.
#[derive(Debug)]
pub struct Swarm {
    pub nodes: Vec<Node>,
    bridge: String,
    /// `10.231.X`: the /24 of this swarm.
    prefix: String,
    dir: PathBuf,
    /// The /24 reservation (a file, as the test ports').
    reservation: PathBuf,
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(program: &str, args: &[&str]) -> String {
    run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Reserves a free /24 among 10.231.0.0/16 for this test (a file created exclusively,
/// holding the pid; a dead owner's is taken over).
fn reserve_subnet() -> (String, PathBuf) {
    let dir = Path::new("/tmp/longin-test-swarms");
    std::fs::create_dir_all(dir).unwrap();
    let start = usize::from(uuid::Uuid::new_v4().as_bytes()[0]);
    for i in 0..256 {
        let x = (start + i) % 256;
        let path = dir.join(x.to_string());
        if let Ok(owner) = std::fs::read_to_string(&path) {
            let alive = owner
                .trim()
                .parse::<u32>()
                .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if alive {
                continue;
            }
            let _ = std::fs::remove_file(&path);
        }
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            use std::io::Write as _;
            write!(file, "{}", std::process::id()).unwrap();
            return (format!("10.231.{x}"), path);
        }
    }
    panic!("no free /24 in 10.231.0.0/16 for a test swarm");
}

/// Where each node's engine also listens, inside its namespace only: for the node
/// agents (`--agent-docker-host`). The nodes share the host's filesystem, so the
/// usual bind-mounted /var/run/docker.sock would be the host's engine on every node.
pub const NODE_ENGINE_TCP: &str = "tcp://127.0.0.1:2375";

/// An image of this build's `longin` for the node agents, in the test registry:
/// `FROM scratch` with the binary (debug info stripped) and the shared libraries it
/// links, at their paths. Tagged by the binary's size and time, so a rebuild makes a
/// new one; made once per binary (under a lock: tests of several binaries may ask).
pub fn agent_image() -> String {
    let binary = Path::new(env!("CARGO_BIN_EXE_longin"));
    let meta = std::fs::metadata(binary).unwrap();
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tag = format!("{}-{mtime}", meta.len());
    let image = format!("{}/longin/agent:{tag}", super::registry());
    let state = registry_config().parent().unwrap().to_path_buf();
    let marker = state.join(format!("agent-image-{tag}.pushed"));
    let script = format!(
        r#"set -eu
[ -e {marker} ] && exit 0
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/root/usr/local/bin"
objcopy --strip-debug {binary} "$ctx/root/usr/local/bin/longin"
for lib in $(ldd {binary} | grep -o '/[^ ]*'); do
    mkdir -p "$ctx/root$(dirname "$lib")"
    cp -L "$lib" "$ctx/root$lib"
done
printf 'FROM scratch
COPY root/ /
ENTRYPOINT ["/usr/local/bin/longin"]
' > "$ctx/Dockerfile"
docker build -q -t {image} "$ctx" >/dev/null
docker push {image} >/dev/null
touch {marker}"#,
        marker = marker.display(),
        binary = binary.display(),
    );
    let lock = state.join("agent-image.lock");
    let out = Command::new("flock")
        .arg(&lock)
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the agent image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

/// The registry configuration of the host's test registry (scripts/test-services).
fn registry_config() -> PathBuf {
    let state = std::env::var("LONGIN_TEST_STATE")
        .unwrap_or_else(|_| "/tmp/longin-test-services".to_owned());
    let config = PathBuf::from(state).join("registry.yml");
    assert!(
        config.exists(),
        "{} is missing: run scripts/test-services first",
        config.display()
    );
    config
}

impl Swarm {
    /// Makes a swarm of `count` nodes and waits until every node is Ready in it.
    pub fn start(count: usize) -> Self {
        assert!(
            is_root(),
            "a test swarm needs root (network namespaces, dockerd)"
        );
        let (prefix, reservation) = reserve_subnet();
        let tag = prefix.rsplit('.').next().unwrap().to_owned();
        let dir = PathBuf::from(format!("/tmp/longin-test-swarms/s{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut swarm = Self {
            nodes: Vec::new(),
            bridge: format!("lgsw{tag}"),
            prefix: prefix.clone(),
            dir: dir.clone(),
            reservation,
        };
        // A bridge left by a killed run of the same reservation goes first.
        swarm.remove_network_plumbing();
        must("ip", &["link", "add", &swarm.bridge, "type", "bridge"]);
        must(
            "ip",
            &[
                "addr",
                "add",
                &format!("{prefix}.1/24"),
                "dev",
                &swarm.bridge,
            ],
        );
        must("ip", &["link", "set", &swarm.bridge, "up"]);
        // Docker's FORWARD policy is DROP, and bridged frames pass through iptables
        // (br_netfilter): let the nodes reach each other.
        must(
            "iptables",
            &[
                "-I",
                "FORWARD",
                "-i",
                &swarm.bridge,
                "-o",
                &swarm.bridge,
                "-j",
                "ACCEPT",
            ],
        );
        let config = registry_config();
        for i in 0..count {
            let node = swarm.add_node(i, &config);
            swarm.nodes.push(node);
        }
        let manager = &swarm.nodes[0];
        manager.docker(&["swarm", "init", "--advertise-addr", &manager.address]);
        let token = manager.docker(&["swarm", "join-token", "-q", "worker"]);
        let join = format!("{}:2377", manager.address);
        for node in &swarm.nodes[1..] {
            node.docker(&[
                "swarm",
                "join",
                "--token",
                token.trim(),
                "--advertise-addr",
                &node.address,
                &join,
            ]);
        }
        swarm.wait_ready(count, Duration::from_secs(60));
        swarm
    }

    fn add_node(&self, i: usize, registry: &Path) -> Node {
        let tag = &self.bridge[4..];
        let name = format!("lgsw{tag}n{i}");
        let root = self.dir.join(format!("n{i}"));
        std::fs::create_dir_all(&root).unwrap();
        let address = format!("{}.{}", self.prefix, 10 + i);
        let host_link = format!("h{tag}n{i}");
        let node_link = format!("v{tag}n{i}");
        must("ip", &["netns", "add", &name]);
        must(
            "ip",
            &[
                "link", "add", &host_link, "type", "veth", "peer", "name", &node_link,
            ],
        );
        must("ip", &["link", "set", &node_link, "netns", &name]);
        must("ip", &["link", "set", &host_link, "master", &self.bridge]);
        must("ip", &["link", "set", &host_link, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", name.as_str()];
            all.extend_from_slice(args);
            must("ip", &all);
        };
        inside(&[
            "ip",
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            &node_link,
        ]);
        inside(&["ip", "link", "set", &node_link, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        inside(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("{}.1", self.prefix),
        ]);
        let netns = format!("--net=/var/run/netns/{name}");
        // The registry, as on the host, inside the node.
        let registry_log = std::fs::File::create(root.join("registry.log")).unwrap();
        let mut children = Vec::new();
        let registry = Command::new("nsenter")
            .arg(&netns)
            .arg("/usr/bin/docker-registry")
            .arg("serve")
            .arg(registry)
            .stdout(Stdio::null())
            .stderr(registry_log)
            .spawn()
            .unwrap();
        std::fs::write(root.join("registry.pid"), registry.id().to_string()).unwrap();
        children.push(registry);
        std::fs::write(root.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(root.join("dockerd.log")).unwrap();
        let root_s = root.display().to_string();
        // Its own hostname (a UTS namespace), so the swarm tells the nodes apart.
        let script = format!(
            "hostname {name} && exec nsenter {netns} dockerd --config-file {root_s}/daemon.json \
             --data-root {root_s}/data --exec-root {root_s}/exec --pidfile {root_s}/docker.pid \
             -H unix://{root_s}/docker.sock -H {NODE_ENGINE_TCP} --storage-driver vfs \
             --containerd-namespace {name} --containerd-plugins-namespace {name}p"
        );
        let daemon = Command::new("unshare")
            .args(["--uts", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        children.push(daemon);
        let node = Node {
            name,
            address,
            root,
            host_link,
            killed: false,
            children,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while run("docker", &["-H", &node.docker_host(), "info"]).is_err() {
            assert!(
                Instant::now() < deadline,
                "node {} did not start: {}",
                node.name,
                std::fs::read_to_string(node.root.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        node
    }

    fn wait_ready(&self, count: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let ready = self.nodes[0]
                .docker(&["node", "ls", "--format", "{{.Status}}"])
                .lines()
                .filter(|l| *l == "Ready")
                .count();
            if ready == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{ready}/{count} swarm nodes Ready"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The manager's engine, for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        self.nodes[0].docker_host()
    }

    /// The node called `hostname`.
    pub fn node(&self, hostname: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == hostname)
            .unwrap_or_else(|| panic!("no node {hostname}"))
    }

    /// Kills node `i`'s engine (SIGKILL, no goodbye to the swarm), as a machine that
    /// dies; its containers are stopped too, so nothing of it serves.
    pub fn kill_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let containers = node.container_pids();
        if let Some(pid) = node.pid() {
            let _ = run("kill", &["-9", &pid.to_string()]);
        }
        kill_everything_under(&node.root, "-9");
        for pid in containers {
            let _ = run("kill", &["-9", &pid]);
        }
        node.killed = true;
    }

    fn remove_network_plumbing(&self) {
        let _ = run("ip", &["link", "del", &self.bridge]);
        while run(
            "iptables",
            &[
                "-D",
                "FORWARD",
                "-i",
                &self.bridge,
                "-o",
                &self.bridge,
                "-j",
                "ACCEPT",
            ],
        )
        .is_ok()
        {}
    }
}

/// Every process whose command line names `root` (the node's dockerd, its containerd,
/// the shims), and the node's registry.
fn kill_everything_under(root: &Path, signal: &str) {
    if let Ok(pid) = std::fs::read_to_string(root.join("registry.pid")) {
        let _ = run("kill", &[signal, pid.trim()]);
    }
    let _ = run("pkill", &[signal, "-f", &root.display().to_string()]);
}

fn is_root() -> bool {
    run("id", &["-u"]).is_ok_and(|u| u.trim() == "0")
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let containers: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !n.killed)
            .flat_map(Node::container_pids)
            .collect();
        // Gracefully first: a dockerd stops its containers on SIGTERM.
        for node in &self.nodes {
            if let (false, Some(pid)) = (node.killed, node.pid()) {
                let _ = run("kill", &[&pid.to_string()]);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.nodes.iter().any(|n| {
            n.pid()
                .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
        }) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        for node in &self.nodes {
            kill_everything_under(&node.root, "-9");
        }
        for pid in containers {
            let _ = run("kill", &["-9", &pid]);
        }
        for node in &mut self.nodes {
            for child in &mut node.children {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        // Mounts the daemons left (network namespaces of containers, under exec roots).
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let dir = self.dir.display().to_string();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&dir))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in under {
            let _ = run("umount", &["-l", mount]);
        }
        for node in &self.nodes {
            let _ = run("ip", &["link", "del", &node.host_link]);
            let _ = run("ip", &["netns", "del", &node.name]);
        }
        self.remove_network_plumbing();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.reservation);
    }
}
