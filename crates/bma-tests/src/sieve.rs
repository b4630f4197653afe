//! Sieve scripts in lab mailboxes, put over ManageSieve with the lab's
//! master user acting for the mailbox (as the audit reads them).
//!
//! Rules: only the lab (plaintext on loopback); a mailbox's scripts are
//! replaced whole (every existing script deleted first), so a test starts
//! from what it wrote.

use bma_imap::Secret;
use bma_platform::managesieve::{Client, Config, Login, Security};

use crate::lab_file;

/// How to reach a lab platform's ManageSieve (`legacy` or `new`).
pub fn lab_sieve_config(platform: &str) -> Config {
    let lab = lab_file("lab.json");
    let host = lab[platform]["host"].as_str().expect("host");
    let port = lab[platform]["managesieve_port"].as_u64().expect("managesieve port") as u16;
    let mut config = Config::new(host, port);
    config.security = Security::PlainOnLoopback;
    config
}

/// The lab's master user acting for `user`.
pub fn lab_sieve_master(user: &str) -> Login {
    let lab = lab_file("lab.json");
    Login::master(
        user,
        lab["master_user"].as_str().expect("master"),
        Secret::new(lab["master_password"].as_str().expect("password")),
    )
}

/// Replaces `user`'s scripts on `platform` by `scripts` (name, source),
/// and makes `active` the active one (none if `None`). Each script is
/// stored as given (PUTSCRIPT checks it: a script the server refuses
/// panics).
pub async fn lab_put_scripts(platform: &str, user: &str, scripts: &[(&str, &[u8])], active: Option<&str>) {
    let mut c = Client::login(&lab_sieve_config(platform), &lab_sieve_master(user)).await.expect("ManageSieve login");
    c.set_active("").await.expect("deactivate");
    for old in c.list_scripts().await.expect("list") {
        c.delete_script(&old.name).await.expect("delete");
    }
    for (name, source) in scripts {
        c.put_script(name, source).await.unwrap_or_else(|e| panic!("PUTSCRIPT {name}: {e}"));
    }
    if let Some(name) = active {
        c.set_active(name).await.expect("SETACTIVE");
    }
    c.logout().await.expect("logout");
}
