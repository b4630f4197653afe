//! The lab's foreign IMAP servers (Cyrus IMAP 3.6 in two namespace setups,
//! Courier-IMAP 5.0; `cargo xtask lab foreign …`): how to reach each, and
//! users of a test's own on them.
//!
//! Rules: every user is new (a unique local part without dots: Cyrus with
//! the `.` separator hides the folders of dotted users); the servers are
//! reached in plain IMAP on loopback, like the Dovecot lab.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bma_imap::{Auth, Secret, Security};
use bma_sync::Endpoint;

use crate::lab_file;

/// A foreign server of the lab, as `lab.json` names it under `foreign`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// Cyrus with `.` and `INBOX.` (`altnamespace: no`).
    Cyrus,
    /// Cyrus with `/` and no prefix (its 3.x defaults).
    CyrusUnix,
    /// Courier-IMAP: `.` and `INBOX.`, no STATUS=SIZE.
    Courier,
}

impl Foreign {
    /// Its name in `lab.json`.
    pub fn name(self) -> &'static str {
        match self {
            Foreign::Cyrus => "cyrus",
            Foreign::CyrusUnix => "cyrus-unix",
            Foreign::Courier => "courier",
        }
    }

    /// The software, as `cargo xtask lab foreign adduser` names it.
    fn kind(self) -> &'static str {
        match self {
            Foreign::Cyrus | Foreign::CyrusUnix => "cyrus",
            Foreign::Courier => "courier",
        }
    }

    /// How to reach it: plain IMAP on loopback.
    pub fn config(self) -> bma_imap::Config {
        let lab = lab_file("lab.json");
        let entry = &lab["foreign"][self.name()];
        let host = entry["host"]
            .as_str()
            .unwrap_or_else(|| panic!("no {} in lab.json: `cargo xtask lab foreign up`", self.name()));
        let port = entry["imap_port"].as_u64().expect("port") as u16;
        bma_imap::Config::new(host, port).with_security(Security::None)
    }

    /// A new user of its own (named after `what`), with an empty mailbox; its endpoint.
    pub fn user(self, what: &str) -> Endpoint {
        static N: AtomicU32 = AtomicU32::new(0);
        static ADDUSER: Mutex<()> = Mutex::new(());
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
        let address = format!("{what}{:x}n{}@bma.test", nanos & 0xffff_ffff, N.fetch_add(1, Ordering::Relaxed));
        let password = format!("secret-{what}");
        let lab = lab_file("lab.json");
        let exe = lab["xtask"].as_str().expect("xtask in lab.json");
        let guard = ADDUSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = Command::new(exe)
            .args(["lab", "foreign", "adduser", self.kind(), &address, &password])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
        drop(guard);
        assert!(out.status.success(), "foreign adduser: {}", String::from_utf8_lossy(&out.stderr));
        Endpoint { config: self.config(), auth: Auth::Login { user: address, password: Secret::new(password) } }
    }

    /// Sets the STORAGE quota (KiB) of `address`'s mailbox on a Cyrus, as
    /// its admin would (`SETQUOTA user.…`), in a plain IMAP session of its
    /// own (bma-imap has no SETQUOTA: `bma` never sets quotas).
    pub fn set_quota_kib(self, address: &str, kib: u64) {
        let lab = lab_file("lab.json");
        let entry = &lab["foreign"][self.name()];
        let (admin, password) = (entry["admin_user"].as_str(), entry["admin_password"].as_str());
        let (Some(admin), Some(password)) = (admin, password) else { panic!("{} has no admin", self.name()) };
        let sep = entry["separator"].as_str().expect("separator");
        let (local, domain) = address.split_once('@').expect("an address");
        let root = format!("user{sep}{local}@{domain}");
        let port = entry["imap_port"].as_u64().expect("port");
        let stream = TcpStream::connect(("127.0.0.1", port as u16)).expect("connect");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line).expect("greeting");
        let commands = [
            format!("q1 LOGIN {admin} {password}"),
            format!("q2 SETQUOTA \"{root}\" (STORAGE {kib})"),
            "q3 LOGOUT".into(),
        ];
        for cmd in commands {
            writer.write_all(format!("{cmd}\r\n").as_bytes()).expect("write");
            let tag = cmd.split(' ').next().expect("tag").to_owned();
            loop {
                line.clear();
                assert!(reader.read_line(&mut line).expect("read") > 0, "{cmd}: connection closed");
                if line.starts_with(&format!("{tag} ")) {
                    assert!(line.starts_with(&format!("{tag} OK")), "{cmd}: {line}");
                    break;
                }
            }
        }
    }
}
