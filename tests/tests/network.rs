//! husk-cni end to end: Debian's CNI plugins (bridge, host-local,
//! portmap, loopback, tuning) on real containers run by husk and
//! husk-init.
//!
//! The host's own network is never touched: every test makes a network
//! namespace of its own (`ip netns add`, deleted by a guard) and runs husk
//! (and husk-cni, husk-init, iptables, the clients) inside it with
//! `nsenter --net`, so the bridge, the veths and the iptables rules exist
//! only there. (nsenter keeps the test's mount namespace: the netns pins
//! husk-cni makes are visible to the later DEL.) host-local's `dataDir`
//! and husk-cni's records live in the test's temp dir.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use husk_tests::*;

/// Chains portmap shares between containers and leaves in place.
const SHARED_CHAINS: [&str; 3] = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"];

fn on_path(cmd: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(cmd).is_file())
}

fn skip() -> bool {
    if skip_unless_root() {
        return true;
    }
    skip_unless(Path::new("/usr/lib/cni/bridge").exists(), "CNI plugins not in /usr/lib/cni (containernetworking-plugins)")
        || skip_unless(
            ["ip", "iptables-save", "nsenter", "busybox"].iter().all(|c| on_path(c)),
            "ip, iptables-save, nsenter or busybox missing",
        )
        || skip_unless(bin("husk").with_file_name("husk-cni").exists(), "husk-cni not built")
}

/// The test's "host": a network namespace with `lo` up, and a temp dir for
/// conflists, host-local leases and husk-cni's records.
struct Net {
    name: String,
    tmp: TempDir,
}

impl Net {
    fn new() -> Net {
        let name = unique("hcni");
        let o = run_cmd(Command::new("ip").args(["netns", "add", &name]));
        assert!(o.status.success(), "ip netns add: {}", stderr(&o));
        let net = Net { name, tmp: TempDir::new("husk-cni") };
        assert!(net.run(&["ip", "link", "set", "lo", "up"]).status.success());
        net
    }
    fn cni_dir(&self) -> PathBuf {
        self.tmp.join("cni")
    }
    fn leases(&self, network: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.tmp.join("ipam").join(network))
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.retain(|f| f != "lock" && !f.starts_with("last_reserved_ip"));
        v.sort();
        v
    }
    /// `prog` inside the namespace, with husk-cni's records in our temp dir.
    fn cmd(&self, prog: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name)).arg(prog).env("HUSK_CNI_DIR", self.cni_dir());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        run_cmd(self.cmd(args[0]).args(&args[1..]))
    }
    fn husk(&self, b: &Bundle) -> Command {
        let mut c = self.cmd(bin("husk"));
        c.arg("--root").arg(&b.root);
        c
    }
    fn cni(&self, args: &[&str]) -> Output {
        run_cmd(self.cmd(bin("husk-cni")).args(args))
    }

    /// A conflist: loopback, then a bridge `hb0` on 10.RANGE.0.0/24 with
    /// host-local (leases in our temp dir) and ipMasq, then `extra`.
    fn conflist(&self, network: &str, extra: &[Value]) -> PathBuf {
        let mut plugins = vec![
            json!({"type": "loopback"}),
            json!({"type": "bridge", "bridge": "hb0", "isGateway": true, "ipMasq": true,
                   "ipam": {"type": "host-local", "subnet": "10.88.0.0/24", "dataDir": self.tmp.join("ipam"),
                            "routes": [{"dst": "0.0.0.0/0"}]}}),
        ];
        plugins.extend(extra.iter().cloned());
        let p = self.tmp.join(format!("{network}.conflist"));
        fs::write(&p, serde_json::to_vec_pretty(&json!({"cniVersion": "1.0.0", "name": network, "plugins": plugins})).unwrap()).unwrap();
        p
    }

    /// What the attachments of `ids` on `network` could have left behind.
    fn leftovers(&self, network: &str, ids: &[&str]) -> Vec<String> {
        let mut v = Vec::new();
        let veths = stdout(&self.run(&["ip", "-o", "link", "show", "type", "veth"]));
        if !veths.trim().is_empty() {
            v.push(format!("veth: {}", veths.trim()));
        }
        for l in self.leases(network) {
            v.push(format!("lease {l}"));
        }
        for line in stdout(&self.run(&["iptables-save"])).lines() {
            let chain = line.strip_prefix(':').and_then(|l| l.split(' ').next());
            if ids.iter().any(|id| line.contains(&format!("\"{id}\"")))
                || chain.is_some_and(|c| c.starts_with("CNI-") && !SHARED_CHAINS.contains(&c))
            {
                v.push(format!("iptables: {line}"));
            }
        }
        let d = self.cni_dir();
        for sub in [format!("networks/{network}"), "netns".into(), "addr".into()] {
            for e in fs::read_dir(d.join(&sub)).into_iter().flatten().flatten() {
                let f = e.file_name().to_string_lossy().into_owned();
                if f != ".lock" {
                    v.push(format!("{sub}/{f}"));
                }
            }
        }
        v.extend(mounts_under(&d.join("netns")).into_iter().filter(|m| Path::new(m) != d.join("netns")).map(|m| format!("mount {m}")));
        v
    }

    fn assert_clean(&self, network: &str, ids: &[&str]) {
        let left = self.leftovers(network, ids);
        assert!(left.is_empty(), "left behind: {left:#?}");
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let pids = stdout(&run_cmd(Command::new("ip").args(["netns", "pids", &self.name])));
        for p in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        let _ = run_cmd(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

/// A bundle made by `husk-rootfs bundle --network CONFLIST [--port P]…`
/// around a copy of the busybox rootfs; `www` becomes /www/index.html.
fn net_bundle(conflist: &Path, ports: &[&str], www: &str, args: &[&str]) -> Bundle {
    let dir = TempDir::new("husk-cni-bundle");
    let st = Command::new("cp").arg("-a").arg(busybox_rootfs()).arg(dir.join("rootfs")).status().unwrap();
    assert!(st.success());
    fs::create_dir_all(dir.join("rootfs/www")).unwrap();
    fs::write(dir.join("rootfs/www/index.html"), www).unwrap();
    let mut c = Command::new(bin("husk-rootfs"));
    c.arg("bundle").arg(&dir.path).arg("--rootfs").arg(dir.join("rootfs")).arg("--network").arg(conflist);
    for p in ports {
        c.args(["--port", p]);
    }
    let o = run_cmd(c.arg("--").args(args));
    assert!(o.status.success(), "husk-rootfs bundle: {}", stderr(&o));
    let config: Value = serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let root = dir.join("state");
    Bundle { dir, config, root }
}

/// A container run detached inside the test's namespace; force-deleted
/// there (so that its poststop DEL runs there too) on drop.
struct Ct<'a> {
    net: &'a Net,
    b: &'a Bundle,
    id: String,
}

impl<'a> Ct<'a> {
    fn run(net: &'a Net, b: &'a Bundle, prefix: &str) -> Ct<'a> {
        let id = unique(prefix);
        let o = husk_to_files(net, b, &["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(o.status.success(), "husk run -d {id}: {}", stderr(&o));
        Ct { net, b, id }
    }
    fn exec(&self, args: &[&str]) -> Output {
        run_cmd(self.net.husk(self.b).arg("exec").arg(&self.id).args(args))
    }
    /// The container's address on `network` (without the prefix length).
    fn ip(&self) -> String {
        addr_of(self.net, &self.id)
    }
}

impl Drop for Ct<'_> {
    fn drop(&mut self) {
        let _ = run_cmd(self.net.husk(self.b).args(["delete", "--force", &self.id]));
    }
}

/// The first address `husk-cni list` shows for container `id`.
fn addr_of(net: &Net, id: &str) -> String {
    let o = net.cni(&["list", "--format", "json", id]);
    assert!(o.status.success(), "husk-cni list: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = v[0]["addresses"][0].as_str().unwrap_or_else(|| panic!("no address for {id}: {v}"));
    a.split('/').next().unwrap().to_string()
}

/// `husk ARGS` in the namespace with stdout/stderr to files (a container
/// inherits them: pipes would never close).
fn husk_to_files(net: &Net, b: &Bundle, args: &[&str]) -> Output {
    let n = unique("out");
    let (out, err) = (b.dir.join(format!("{n}.out")), b.dir.join(format!("{n}.err")));
    let status = net
        .husk(b)
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    Output { status, stdout: fs::read(&out).unwrap_or_default(), stderr: fs::read(&err).unwrap_or_default() }
}

/// A shell command that GETs / from HOST PORT with busybox `nc` (busybox
/// 1.35's `wget` crashes on this machine); see `body`.
fn get_sh(host: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {host} {port}")
}

/// The body of an HTTP response.
fn body(o: &Output) -> String {
    let t = stdout(o);
    t.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// GET / from the test's namespace (the "host"), retried while the
/// server starts; the body.
fn fetch(net: &Net, host: &str, port: u16, want: &str) -> String {
    let mut last = String::new();
    wait_until(10, || {
        let o = net.run(&["busybox", "sh", "-c", &get_sh(host, port)]);
        last = format!("{}{}", body(&o), stderr(&o));
        last == want
    });
    last
}

#[test]
fn two_containers_share_a_bridge() {
    if skip() {
        return;
    }
    let net = Net::new();
    let conf = net.conflist("tnet", &[]);
    let a = net_bundle(&conf, &[], "hello-from-a", &["httpd", "-f", "-p", "80", "-h", "/www"]);
    let b = net_bundle(&conf, &[], "", &["sleep", "1000"]);
    let ca = Ct::run(&net, &a, "cni-a");
    let cb = Ct::run(&net, &b, "cni-b");
    let (ipa, ipb) = (ca.ip(), cb.ip());
    assert_ne!(ipa, ipb);
    assert_eq!(net.leases("tnet"), {
        let mut l = vec![ipa.clone(), ipb.clone()];
        l.sort();
        l
    });
    // Each has its own lo (up, from the loopback plugin) and eth0.
    for (c, mine, other) in [(&ca, &ipa, &ipb), (&cb, &ipb, &ipa)] {
        let o = c.exec(&["ip", "-o", "addr"]);
        let text = stdout(&o);
        assert!(text.lines().any(|l| l.contains(" lo ") && l.contains("inet 127.0.0.1/8")), "{text}");
        assert!(text.lines().any(|l| l.contains(" eth0 ") && l.contains(&format!("inet {mine}/24"))), "{text}");
        assert!(!text.contains(&format!("inet {other}/")), "{text}");
    }
    // b reaches a's service by address, a pings b.
    let mut got = String::new();
    assert!(
        wait_until(10, || {
            got = body(&cb.exec(&["sh", "-c", &get_sh(&ipa, 80)]));
            got == "hello-from-a"
        }),
        "{got}"
    );
    let o = ca.exec(&["ping", "-c", "1", "-W", "3", &ipb]);
    assert!(o.status.success(), "ping {ipb}: {}{}", stdout(&o), stderr(&o));
    // The address file husk-init's `ctl status` shows.
    assert_eq!(fs::read_to_string(net.cni_dir().join("addr").join(&ca.id)).unwrap(), format!("{ipa}/24\n"));
    let ids = [ca.id.clone(), cb.id.clone()];
    drop(cb);
    drop(ca);
    net.assert_clean("tnet", &[&ids[0], &ids[1]]);
}

#[test]
fn published_port_reaches_the_service() {
    if skip() {
        return;
    }
    let net = Net::new();
    let conf = net.conflist("pnet", &[json!({"type": "portmap", "capabilities": {"portMappings": true}})]);
    let a = net_bundle(&conf, &["8080:80/tcp"], "published", &["httpd", "-f", "-p", "80", "-h", "/www"]);
    assert_eq!(
        a.config["hooks"]["createRuntime"][0]["args"],
        json!(["husk-cni", "add", "--config", fs::canonicalize(&conf).unwrap(), "--port", "8080:80/tcp"])
    );
    let ca = Ct::run(&net, &a, "cni-port");
    let ip = ca.ip();
    let rules = stdout(&net.run(&["iptables-save", "-t", "nat"]));
    assert!(rules.contains(&format!("--to-destination {ip}:80")), "{rules}");
    // The host side: the bridge's address, port 8080 (portmap's DNAT in
    // OUTPUT; 127.0.0.1 would need route_localnet).
    assert_eq!(fetch(&net, "10.88.0.1", 8080, "published"), "published");
    let id = ca.id.clone();
    drop(ca);
    net.assert_clean("pnet", &[&id]);
    assert!(!stdout(&net.run(&["iptables-save", "-t", "nat"])).contains("8080"));
}

/// The services tree of docs/network.md: two bundle services on one
/// bridge, `web` publishing a port; `ctl status` shows their addresses; a
/// restart of `web` is DEL then ADD, leaving no stale lease.
#[test]
fn services_share_a_bridge_and_restart() {
    if skip() {
        return;
    }
    let net = Net::new();
    let conf = net.conflist("svcnet", &[json!({"type": "portmap", "capabilities": {"portMappings": true}})]);
    let db = net_bundle(&conf, &[], "db-data", &["httpd", "-f", "-p", "80", "-h", "/www"]);
    let web = net_bundle(&conf, &["8080:80"], "web-page", &["httpd", "-f", "-p", "80", "-h", "/www"]);
    let svc = TempDir::new("husk-cni-svc");
    let (dbn, webn) = (unique("db"), unique("web"));
    fs::create_dir_all(svc.join("services")).unwrap();
    std::os::unix::fs::symlink(db.path(), svc.join("services").join(&dbn)).unwrap();
    std::os::unix::fs::symlink(web.path(), svc.join("services").join(&webn)).unwrap();
    fs::write(web.path().join("after"), &dbn).unwrap();
    let root = svc.join("husk-root");
    let sock = svc.join("ctl.sock");
    let mut init = net
        .cmd(bin("husk-init"))
        .arg("--services")
        .arg(svc.join("services"))
        .arg("--ctl")
        .arg(&sock)
        .arg("--husk")
        .arg(bin("husk"))
        .arg("--husk-root")
        .arg(&root)
        .args(["--grace", "3"])
        .stdin(Stdio::null())
        .stdout(fs::File::create(svc.join("stdout")).unwrap())
        .stderr(fs::File::create(svc.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut init);
    let ctl = |args: &[&str]| stdout(&run_cmd(Command::new(bin("husk-init")).arg("ctl").arg("--ctl").arg(&sock).args(args)));
    let addr = |name: &str| {
        let mut a = String::new();
        let ok = wait_until(30, || {
            let st = ctl(&["status", name]);
            a = st.split_whitespace().find_map(|w| w.strip_prefix("addr=")).unwrap_or("").to_string();
            st.contains(" running ") && !a.is_empty()
        });
        assert!(ok, "{name}: {}\n{}", ctl(&["status"]), fs::read_to_string(svc.join("stderr")).unwrap_or_default());
        a.split('/').next().unwrap().to_string()
    };
    let (db_ip, web_ip) = (addr(&dbn), addr(&webn));
    assert_eq!(fetch(&net, "10.88.0.1", 8080, "web-page"), "web-page");
    let in_web = |args: &[&str]| {
        let mut c = net.cmd(bin("husk"));
        c.arg("--root").arg(&root).arg("exec").arg(&webn).args(args);
        run_cmd(&mut c)
    };
    let mut got = String::new();
    assert!(
        wait_until(10, || {
            got = body(&in_web(&["sh", "-c", &get_sh(&db_ip, 80)]));
            got == "db-data"
        }),
        "{got}"
    );

    // Restart: poststop DEL (host-local releases the lease), then ADD.
    assert!(ctl(&["restart", &webn]).starts_with("ok:"));
    assert!(wait_until(30, || ctl(&["status", &webn]).contains(" starts=2 ")), "{}", ctl(&["status"]));
    let web_ip2 = addr(&webn);
    let mut want = vec![db_ip.clone(), web_ip2.clone()];
    want.sort();
    assert_eq!(net.leases("svcnet"), want, "the old lease of {web_ip} must be gone");
    assert_eq!(fetch(&net, "10.88.0.1", 8080, "web-page"), "web-page");
    let veths = stdout(&net.run(&["ip", "-o", "link", "show", "type", "veth"]));
    assert_eq!(veths.lines().count(), 2, "{veths}");

    // Shutdown stops and deletes both: nothing stays.
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(guard.0.id() as i32, libc::SIGTERM) };
    assert!(wait_until(30, || guard.0.try_wait().ok().flatten().is_some()), "husk-init did not stop");
    net.assert_clean("svcnet", &[&dbn, &webn]);
}

/// Kills (SIGKILL) and reaps a child on drop.
struct KillOnDrop<'a>(&'a mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kill -9` of an attached husk and of its container: the pinned netns
/// keeps the veth until `delete --force` (poststop) or `husk-cni gc` DELs
/// it, and then nothing is left.
#[test]
fn killed_containers_are_cleaned_by_delete_force_and_gc() {
    if skip() {
        return;
    }
    let net = Net::new();
    let conf = net.conflist("knet", &[json!({"type": "portmap", "capabilities": {"portMappings": true}})]);
    let a = net_bundle(&conf, &["8081:80"], "", &["sleep", "1000"]);
    let b = net_bundle(&conf, &["8082:80"], "", &["sleep", "1000"]);
    let mut ids = Vec::new();
    for bundle in [&a, &b] {
        let id = unique("cni-kill");
        let mut husk = net
            .husk(bundle)
            .args(["run", "--bundle", bundle.path().to_str().unwrap(), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = net.cni_dir().join("addr").join(&id);
        assert!(wait_until(20, || addr.exists()), "no address for {id}");
        let o = run_cmd(net.husk(bundle).args(["state", &id]));
        let pid = serde_json::from_slice::<Value>(&o.stdout).unwrap()["pid"].as_i64().unwrap() as i32;
        husk.kill().unwrap();
        husk.wait().unwrap();
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(wait_until(10, || !Path::new(&format!("/proc/{pid}")).exists() || proc_is_zombie(pid)));
        ids.push(id);
    }
    // Both containers are dead; their namespaces are pinned, so their
    // veths (and ipMasq and DNAT rules) wait for DEL.
    let veths = stdout(&net.run(&["ip", "-o", "link", "show", "type", "veth"]));
    assert_eq!(veths.lines().count(), 2, "{veths}");
    let list = stdout(&net.cni(&["list"]));
    assert_eq!(list.lines().filter(|l| l.contains(" stale ")).count(), 2, "{list}");

    // a: husk delete --force runs the poststop hook.
    let o = husk_to_files(&net, &a, &["delete", "--force", &ids[0]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let veths = stdout(&net.run(&["ip", "-o", "link", "show", "type", "veth"]));
    assert_eq!(veths.lines().count(), 1, "{veths}");
    assert!(!net.cni_dir().join("networks/knet").join(format!("{}.json", ids[0])).exists());
    // b: nobody deletes it; gc (as at boot) finds its container gone.
    let o = net.cni(&["gc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("deleted knet {} (container gone)\n", ids[1]));
    net.assert_clean("knet", &[&ids[0], &ids[1]]);
    // The later delete --force of b finds nothing to DEL: fine.
    let o = husk_to_files(&net, &b, &["delete", "--force", &ids[1]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

fn proc_is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').map(|r| r.1.trim_start().starts_with('Z')).unwrap_or(false))
        .unwrap_or(true)
}

/// Creates a container that must fail in its createRuntime hook; returns
/// the husk-cni line of husk's stderr and checks nothing is left.
fn create_fails(net: &Net, b: &Bundle, network: &str, extra_env: &[(&str, &str)]) -> String {
    let id = unique("cni-bad");
    let n = unique("bad");
    let err = b.dir.join(format!("{n}.err"));
    let mut c = net.husk(b);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let st = c
        .args(["create", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    let text = fs::read_to_string(&err).unwrap();
    assert!(!st.success(), "create {id} succeeded: {text}");
    // One line: husk's, carrying husk-cni's message (the hook's stderr).
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {text}");
    let ours: Vec<&str> = lines.iter().filter_map(|l| l.find("husk-cni:").map(|i| &l[i..])).collect();
    assert_eq!(ours.len(), 1, "husk-cni's message expected in the line: {text}");
    assert!(!run_cmd(net.husk(b).args(["state", &id])).status.success(), "container {id} left registered");
    net.assert_clean(network, &[&id]);
    ours[0].to_string()
}

#[test]
fn bad_input_fails_in_one_line_and_leaves_nothing() {
    if skip() {
        return;
    }
    let net = Net::new();
    // A malformed conflist: husk-rootfs refuses it up front…
    let bad = net.tmp.join("bad.conflist");
    fs::write(&bad, "{\"cniVersion\": \"1.0.0\", \"name\": ").unwrap();
    let dir = TempDir::new("husk-cni-bundle");
    let o = run_cmd(
        Command::new(bin("husk-rootfs")).arg("bundle").arg(dir.join("b")).arg("--rootfs").arg(busybox_rootfs()).arg("--network").arg(&bad),
    );
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("husk-rootfs: --network: {}: not JSON", fs::canonicalize(&bad).unwrap().display())),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("b").exists());
    let o = run_cmd(
        Command::new(bin("husk-rootfs")).arg("bundle").arg(dir.join("b")).arg("--rootfs").arg(busybox_rootfs()).args(["--port", "8080:80"]),
    );
    assert_eq!(stderr(&o), "husk-rootfs: usage: --port and --husk-cni need --network CONFLIST\n");

    // …and husk-cni at create when the file went bad after the bundle.
    let conf = net.conflist("bnet", &[]);
    let b = net_bundle(&conf, &[], "", &["sleep", "1000"]);
    fs::copy(&bad, &conf).unwrap();
    let line = create_fails(&net, &b, "bnet", &[]);
    assert!(line.starts_with(&format!("husk-cni: {}: not JSON: EOF while parsing", fs::canonicalize(&conf).unwrap().display())), "{line}");

    // A container without a network namespace of its own: the host's
    // (here: the test's) network is not to be configured.
    let mut shared = net_bundle(&net.conflist("bnet", &[]), &[], "", &["sleep", "1000"]);
    shared.config["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "network");
    shared.write_config();
    let line = create_fails(&net, &shared, "bnet", &[]);
    assert!(
        line.ends_with("shares husk-cni's network namespace (config.json has no network namespace of its own): refusing to configure it"),
        "{line}"
    );
    assert!(!stdout(&net.run(&["ip", "-o", "link"])).contains("hb0"), "the bridge was made");
    drop(shared);

    // An unknown plugin: refused before any plugin runs.
    let conf = net.conflist("bnet", &[json!({"type": "no-such-plugin"})]);
    let line = create_fails(&net, &b, "bnet", &[]);
    assert_eq!(line, "husk-cni: network bnet: plugin no-such-plugin (lookup): not found in CNI_PATH /opt/cni/bin:/usr/lib/cni");

    // A real plugin failing after bridge succeeded: bridge is rolled back
    // (veth, lease and ipMasq rules gone).
    let bad_sysctl = json!({"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.no_such_knob": "1"}});
    fs::write(
        &conf,
        serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": "bnet", "plugins": [
        {"type": "bridge", "bridge": "hb0", "isGateway": true, "ipMasq": true,
         "ipam": {"type": "host-local", "subnet": "10.88.0.0/24", "dataDir": net.tmp.join("ipam")}}, bad_sysctl]}))
        .unwrap(),
    )
    .unwrap();
    let line = create_fails(&net, &b, "bnet", &[]);
    assert!(line.starts_with("husk-cni: network bnet: plugin tuning (ADD): "), "{line}");
    assert!(line.contains("no_such_knob") && line.ends_with("; rolled back (DEL of 2 plugins)"), "{line}");

    // A plugin's CNI error JSON, shown as msg: details (code).
    let plugdir = net.tmp.join("plugins");
    fs::create_dir_all(&plugdir).unwrap();
    let fake = plugdir.join("fails");
    fs::write(
        &fake,
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\n\
         echo '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"boom\",\"details\":\"on purpose\"}'\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    net.conflist("bnet", &[json!({"type": "fails"})]);
    let cni_path = format!("{}:/usr/lib/cni", plugdir.display());
    let line = create_fails(&net, &b, "bnet", &[("CNI_PATH", &cni_path)]);
    assert_eq!(line, "husk-cni: network bnet: plugin fails (ADD): boom: on purpose (CNI error 100); rolled back (DEL of 3 plugins)");
    drop(conf);
}

/// The same bundle under runc 1.1: its hooks ADD at create and DEL at
/// `runc delete --force`.
#[test]
fn runc_runs_the_same_hooks() {
    if skip() {
        return;
    }
    if skip_unless(on_path("runc"), "runc not installed") {
        return;
    }
    let net = Net::new();
    let conf = net.conflist("rnet", &[json!({"type": "portmap", "capabilities": {"portMappings": true}})]);
    let a = net_bundle(&conf, &["8080:80"], "from-runc", &["httpd", "-f", "-p", "80", "-h", "/www"]);
    let id = unique("cni-runc");
    let runc = |args: &[&str]| {
        let mut c = net.cmd("runc");
        c.arg("--root").arg(&a.root).args(args);
        c
    };
    let (out, err) = (a.dir.join("runc.out"), a.dir.join("runc.err"));
    let st = runc(&["run", "--detach", "--bundle", a.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    struct Del<'a>(Box<dyn Fn() + 'a>);
    impl Drop for Del<'_> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _del = Del(Box::new(|| {
        let _ = run_cmd(runc(&["delete", "--force", &id]).stdout(Stdio::null()).stderr(Stdio::null()));
    }));
    assert!(st.success(), "runc run: {}", fs::read_to_string(&err).unwrap_or_default());
    let ip = addr_of(&net, &id);
    assert_eq!(fetch(&net, &ip, 80, "from-runc"), "from-runc");
    assert_eq!(fetch(&net, "10.88.0.1", 8080, "from-runc"), "from-runc");
    let o = run_cmd(&mut runc(&["delete", "--force", &id]));
    assert!(o.status.success(), "runc delete: {}", stderr(&o));
    net.assert_clean("rnet", &[&id]);
}

/// A hook after husk-cni's fails: husk's create rolls back without
/// poststop hooks (the runtime spec has a failed createRuntime continue at
/// delete, poststop included), so the attachment is left to gc — which
/// must then leave nothing. (Still right once husk runs poststop there.)
#[test]
fn later_hook_failure_is_cleaned_by_gc() {
    if skip() {
        return;
    }
    let net = Net::new();
    let conf = net.conflist("lnet", &[json!({"type": "portmap", "capabilities": {"portMappings": true}})]);
    let mut b = net_bundle(&conf, &["8080:80"], "", &["sleep", "1000"]);
    b.config["hooks"]["createRuntime"].as_array_mut().unwrap().push(json!({"path": "/bin/false"}));
    b.write_config();
    let id = unique("cni-later");
    let o = husk_to_files(&net, &b, &["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(!o.status.success(), "create with a failing hook succeeded");
    let o = net.cni(&["gc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    net.assert_clean("lnet", &[&id]);
}

/// After a reboot the pin is an empty file and the recorded boot id is
/// not this boot's: gc DELs without CNI_NETNS (as the spec allows), which
/// releases host-local's lease (persistent) and portmap's rules. Simulated:
/// the container killed, its pin unmounted, its record's boot id changed.
/// (No ipMasq here: bridge cannot find those rules without the namespace;
/// a real reboot takes them with it.)
#[test]
fn gc_after_a_reboot_releases_leases() {
    if skip() {
        return;
    }
    let net = Net::new();
    let conf = net.conflist("rbnet", &[json!({"type": "portmap", "capabilities": {"portMappings": true}})]);
    let mut v: Value = serde_json::from_slice(&fs::read(&conf).unwrap()).unwrap();
    v["plugins"][1]["ipMasq"] = json!(false);
    fs::write(&conf, serde_json::to_vec(&v).unwrap()).unwrap();
    let b = net_bundle(&conf, &["8080:80"], "", &["sleep", "1000"]);
    let c = Ct::run(&net, &b, "cni-reboot");
    let _ = c.ip();
    let rec = net.cni_dir().join("networks/rbnet").join(format!("{}.json", c.id));
    let mut r: Value = serde_json::from_slice(&fs::read(&rec).unwrap()).unwrap();
    let pin = PathBuf::from(r["netns"].as_str().unwrap());
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(r["pid"].as_i64().unwrap() as i32, libc::SIGKILL) };
    assert!(run_cmd(Command::new("umount").arg(&pin)).status.success());
    r["bootId"] = json!("a-previous-boot");
    fs::write(&rec, serde_json::to_vec(&r).unwrap()).unwrap();
    assert_eq!(net.leases("rbnet").len(), 1);
    let o = net.cni(&["gc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("deleted rbnet {} (container gone)\n", c.id));
    net.assert_clean("rbnet", &[&c.id]);
}

/// A CNI 0.4.0 list (Debian's plugins speak 0.4.0 and 1.0.0): the result's
/// `ips` carry `"version": "4"`; addresses, DEL and cleanup are the same.
#[test]
fn cni_0_4_0_list() {
    if skip() {
        return;
    }
    let net = Net::new();
    let conf = net.conflist("v04net", &[json!({"type": "portmap", "capabilities": {"portMappings": true}})]);
    let mut v: Value = serde_json::from_slice(&fs::read(&conf).unwrap()).unwrap();
    v["cniVersion"] = json!("0.4.0");
    fs::write(&conf, serde_json::to_vec(&v).unwrap()).unwrap();
    let b = net_bundle(&conf, &["8080:80"], "v04", &["httpd", "-f", "-p", "80", "-h", "/www"]);
    let c = Ct::run(&net, &b, "cni-v04");
    let o = net.cni(&["list", "--format", "json", &c.id]);
    let l: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(l[0]["result"]["cniVersion"], json!("0.4.0"), "{l}");
    assert_eq!(l[0]["result"]["ips"][0]["version"], json!("4"), "{l}");
    assert_eq!(fetch(&net, "10.88.0.1", 8080, "v04"), "v04");
    assert_eq!(fetch(&net, &c.ip(), 80, "v04"), "v04");
    let id = c.id.clone();
    drop(c);
    net.assert_clean("v04net", &[&id]);
}
