//! [`PasswdFile`]: accounts in a Dovecot `passwd-file`.
//!
//! A line is `user:password:uid:gid:gecos:home:shell:extra fields`; this
//! module writes `address:{SCHEME}hash::::::extra` and manages one of the
//! space-separated extra fields, `userdb_quota_rule=*:storage=<n>B` (the
//! account's own quota).
//!
//! Refused logins are lines of a second passwd-file, the *refusals*:
//! `address:::::::nopassword nologin reason=<text>`, read by a passdb
//! placed before the accounts' with `skip = authenticated`. A person who
//! logs in with any password gets the reason (`NO [CONTACTADMIN] …`),
//! while the platform's master user, already authenticated by its own
//! passdb, skips it and still logs in on behalf of the account, as the
//! last copy of a cutover must. (A `nologin` on the account's own line
//! would refuse the master user too.) Dovecot splits extra fields at ASCII
//! spaces, so the spaces of a reason are written as no-break spaces
//! (U+00A0), which mail clients show as spaces. The lab's Dovecot
//! configuration (`lab/dovecot/dovecot.conf.in`) is the model.
//!
//! Dovecot rereads the file when it sees a new modification time or size,
//! checking at most once a second and comparing whole seconds: two
//! rewrites within one second could look alike, and a login in the second
//! of a rewrite may still read the old file. So a rewrite sets the file's
//! time at least one second past the previous one and returns only once
//! the next second has begun: when [`Accounts::upsert`] returns, the next
//! login reads the new line.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{check_address, rewrite};
use crate::{Account, Accounts, Login, NewAccount, PasswordHash, PlatformError, Scheme};

const QUOTA: &str = "userdb_quota_rule=*:storage=";
const NOLOGIN: &str = "nologin";
const REASON: &str = "reason=";

/// A Dovecot `passwd-file` of accounts, and its refusals.
#[derive(Debug, Clone)]
pub struct PasswdFile {
    path: PathBuf,
    refusals: PathBuf,
    default_scheme: Option<Scheme>,
}

/// One line, split.
struct Line {
    address: String,
    hash: String,
    /// uid, gid, gecos, home, shell: kept as they are.
    middle: Vec<String>,
    extra: Vec<String>,
}

impl Line {
    fn parse(text: &str) -> Option<Line> {
        let mut fields = text.splitn(8, ':');
        let address = fields.next()?.trim().to_lowercase();
        let hash = fields.next()?.to_owned();
        let mut middle: Vec<String> = fields.by_ref().take(5).map(str::to_owned).collect();
        middle.resize(5, String::new());
        let extra = fields.next().unwrap_or("").split(' ').filter(|f| !f.is_empty()).map(str::to_owned).collect();
        Some(Line { address, hash, middle, extra })
    }

    fn render(&self) -> String {
        format!("{}:{}:{}:{}", self.address, self.hash, self.middle.join(":"), self.extra.join(" "))
    }

    fn field(&self, prefix: &str) -> Option<&str> {
        self.extra.iter().find_map(|f| f.strip_prefix(prefix))
    }

    fn without(&mut self, drop: impl Fn(&str) -> bool) {
        self.extra.retain(|f| !drop(f));
    }
}

impl PasswdFile {
    /// The accounts at `path`, whose hashes without `{SCHEME}` are in
    /// `default_scheme` (the passdb's `scheme=` argument), and the
    /// refusals at `refusals`.
    pub fn new(path: impl Into<PathBuf>, refusals: impl Into<PathBuf>, default_scheme: Option<Scheme>) -> PasswdFile {
        PasswdFile { path: path.into(), refusals: refusals.into(), default_scheme }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn account(&self, line: &Line, number: usize, login: Login) -> Result<Account, PlatformError> {
        let hash = PasswordHash::parse(&line.hash, self.default_scheme).map_err(|e| PlatformError::Malformed {
            path: self.path.clone(),
            line: number,
            message: e.to_string(),
        })?;
        let quota_bytes = line.field(QUOTA).and_then(parse_size);
        Ok(Account { address: line.address.clone(), hash, quota_bytes, login })
    }

    /// The line of `address` in `file`, with its number.
    fn find(file: &Path, address: &str) -> Result<Option<(usize, Line)>, PlatformError> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PlatformError::io(file)(e)),
        };
        Ok(text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with('#'))
            .find_map(|(i, l)| Line::parse(l).filter(|p| p.address == address).map(|p| (i + 1, p))))
    }

    /// Changes the line of `address` in `file` (adds one, if `create`;
    /// removes it if `edit` returns false) and writes the file if it changed.
    fn change(
        &self,
        file: &Path,
        address: &str,
        create: bool,
        edit: impl FnOnce(&mut Line) -> bool,
    ) -> Result<(), PlatformError> {
        check_address(address)?;
        let mut edit = Some(edit);
        rewrite(
            file,
            |text| {
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                let at = lines.iter().position(|l| Line::parse(l).is_some_and(|p| p.address == address));
                let mut line = match at {
                    Some(i) => Line::parse(&lines[i]).ok_or_else(|| PlatformError::NoAccount(address.to_owned()))?,
                    None if create => Line {
                        address: address.to_owned(),
                        hash: String::new(),
                        middle: vec![String::new(); 5],
                        extra: Vec::new(),
                    },
                    None => return Err(PlatformError::NoAccount(address.to_owned())),
                };
                let keep = edit.take().is_some_and(|edit| edit(&mut line));
                match (at, keep) {
                    (Some(i), true) => lines[i] = line.render(),
                    (Some(i), false) => drop(lines.remove(i)),
                    (None, true) => lines.push(line.render()),
                    (None, false) => {}
                }
                Ok(joined(&lines))
            },
            next_second,
        )?;
        Ok(())
    }
}

impl PasswdFile {
    /// Creates or sets every account of `accounts` in one rewrite, as
    /// [`Accounts::upsert`] does one (their other fields kept): the lab
    /// provisions its seed so, one wait for Dovecot instead of one each.
    pub fn upsert_all(&self, accounts: &[NewAccount]) -> Result<(), PlatformError> {
        for account in accounts {
            check_address(&account.address)?;
        }
        rewrite(
            &self.path,
            |text| {
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                for account in accounts {
                    let at = lines.iter().position(|l| Line::parse(l).is_some_and(|p| p.address == account.address));
                    let mut line = at.and_then(|i| Line::parse(&lines[i])).unwrap_or_else(|| Line {
                        address: account.address.clone(),
                        hash: String::new(),
                        middle: vec![String::new(); 5],
                        extra: Vec::new(),
                    });
                    line.hash = account.hash.stored();
                    line.without(|f| f.starts_with(QUOTA));
                    line.extra.push(format!("{QUOTA}{}B", account.quota_bytes));
                    match at {
                        Some(i) => lines[i] = line.render(),
                        None => lines.push(line.render()),
                    }
                }
                Ok(joined(&lines))
            },
            next_second,
        )?;
        Ok(())
    }
}

/// Lines joined, with a final line break unless there is none.
fn joined(lines: &[String]) -> String {
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

impl Accounts for PasswdFile {
    fn read(&self, address: &str) -> Result<Option<Account>, PlatformError> {
        let Some((number, line)) = PasswdFile::find(&self.path, address)? else {
            return Ok(None);
        };
        let login = match PasswdFile::find(&self.refusals, address)? {
            Some((_, refusal)) if refusal.extra.iter().any(|f| f == NOLOGIN) => {
                Login::Refused(refusal.field(REASON).unwrap_or("").replace('\u{a0}', " "))
            }
            _ => Login::Allowed,
        };
        self.account(&line, number, login).map(Some)
    }

    fn upsert(&self, account: &NewAccount) -> Result<(), PlatformError> {
        self.upsert_all(std::slice::from_ref(account))
    }

    fn set_hash(&self, address: &str, hash: &PasswordHash) -> Result<(), PlatformError> {
        let stored = hash.stored();
        self.change(&self.path, address, false, |line| {
            line.hash = stored;
            true
        })
    }

    fn set_login(&self, address: &str, login: &Login) -> Result<(), PlatformError> {
        let reason = login.reason()?.map(|r| r.replace(' ', "\u{a0}"));
        if PasswdFile::find(&self.path, address)?.is_none() {
            return Err(PlatformError::NoAccount(address.to_owned()));
        }
        self.change(&self.refusals, address, true, |line| {
            let Some(reason) = reason else { return false };
            line.extra = vec!["nopassword".to_owned(), NOLOGIN.to_owned()];
            if !reason.is_empty() {
                line.extra.push(format!("{REASON}{reason}"));
            }
            true
        })
    }
}

/// A size as Dovecot writes it in a quota rule (`storage=<size>`): digits
/// and an optional unit (`B`, `k`, `M`, `G`, `T`, any case, powers of
/// 1024), in bytes; `None` if it is not one or does not fit in 64 bits.
/// What [`PasswdFile`] reads an account's own quota with, and the lab too.
pub fn parse_size(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = text[..digits].parse().ok()?;
    let unit = match text[digits..].to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// After a rewrite: the file's time one second past its previous one at
/// least, and back only once the next second has begun (see the module doc).
fn next_second(file: &Path) -> Result<(), PlatformError> {
    let whole = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let handle = std::fs::File::options().write(true).open(file).map_err(PlatformError::io(file))?;
    let previous = handle.metadata().and_then(|m| m.modified()).map(whole).unwrap_or(0);
    let now = whole(SystemTime::now());
    // The rename gave the file a new inode but the time of the write; one
    // second past what the readers may have seen at most.
    let stamp = UNIX_EPOCH + Duration::from_secs(now.max(previous) + 1);
    handle.set_modified(stamp).map_err(PlatformError::io(file))?;
    let into = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
    std::thread::sleep(Duration::from_millis(u64::from(1010 - into.min(1000))));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{PasswdFile, parse_size};
    use crate::{Accounts, Login, NewAccount, PasswordHash, Scheme};

    #[test]
    fn sizes() {
        for (text, n) in [
            ("100M", Some(100 << 20)),
            ("5B", Some(5)),
            ("7", Some(7)),
            ("2g", Some(2 << 30)),
            ("x", None),
            ("1Q", None),
        ] {
            assert_eq!(parse_size(text), n, "{text}");
        }
    }

    #[test]
    fn many_accounts_are_written_in_one_rewrite_their_other_fields_kept() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("users");
        std::fs::write(&path, "a@x.be:{PLAIN}old::::::userdb_mail=maildir:~/M\n").expect("written");
        let file = PasswdFile::new(&path, dir.path().join("refused"), None);
        let hash = PasswordHash::parse("{SHA512-CRYPT}$6$s$h", None).expect("a hash");
        let account = |a: &str, q: u64| NewAccount { address: a.into(), hash: hash.clone(), quota_bytes: q };
        file.upsert_all(&[account("a@x.be", 1 << 20), account("b@x.be", 2 << 20)]).expect("written");
        expect_test::expect![[r#"
            a@x.be:{SHA512-CRYPT}$6$s$h::::::userdb_mail=maildir:~/M userdb_quota_rule=*:storage=1048576B
            b@x.be:{SHA512-CRYPT}$6$s$h::::::userdb_quota_rule=*:storage=2097152B
        "#]]
        .assert_eq(&std::fs::read_to_string(&path).expect("read"));
        assert!(file.upsert_all(&[account("ok@x.be", 1), account("Bad@x.be", 1)]).is_err(), "all or nothing");
        assert!(!std::fs::read_to_string(&path).expect("read").contains("ok@x.be"));
    }

    #[test]
    fn accounts_are_created_changed_refused_and_read_back_with_other_lines_kept() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("users");
        std::fs::write(&path, "# comment\nother@x.be:$6$a$b::::::userdb_mail=maildir:~/M\n").expect("written");
        let refusals = dir.path().join("refused");
        let file = PasswdFile::new(&path, &refusals, Some(Scheme::Sha512Crypt));
        let other = file.read("other@x.be").expect("read").expect("an account");
        assert_eq!(
            (other.hash.scheme(), other.quota_bytes, &other.login),
            (Scheme::Sha512Crypt, None, &Login::Allowed)
        );
        assert_eq!(file.read("nobody@x.be").expect("read"), None);
        assert!(file.set_login("nobody@x.be", &Login::Allowed).is_err());

        let hash = PasswordHash::parse("{SHA512-CRYPT}$6$s$h", None).expect("a hash");
        let account = NewAccount { address: "ec012345@x.be".into(), hash: hash.clone(), quota_bytes: 2_500 << 20 };
        file.upsert(&account).expect("created");
        let refused = "Votre boîte a déménagé : https://webmail.example";
        file.set_login("ec012345@x.be", &Login::Refused(refused.into())).expect("refused");
        let read = file.read("ec012345@x.be").expect("read").expect("an account");
        assert_eq!(
            (read.hash, read.quota_bytes, read.login),
            (hash, Some(2_500 << 20), Login::Refused(refused.into()))
        );
        let text = std::fs::read_to_string(&path).expect("read") + &std::fs::read_to_string(&refusals).expect("read");
        expect_test::expect![[r#"
            # comment
            other@x.be:$6$a$b::::::userdb_mail=maildir:~/M
            ec012345@x.be:{SHA512-CRYPT}$6$s$h::::::userdb_quota_rule=*:storage=2621440000B
            ec012345@x.be:::::::nopassword nologin reason=Votre boîte a déménagé : https://webmail.example
        "#]]
        .assert_eq(&text);
        assert!(text.contains("reason=Votre\u{a0}boîte"));
        // Upserting keeps the refusal; allowing removes its line.
        file.upsert(&account).expect("updated");
        assert!(matches!(file.read("ec012345@x.be").expect("read").expect("an account").login, Login::Refused(_)));
        file.set_login("ec012345@x.be", &Login::Allowed).expect("allowed");
        let other = PasswordHash::parse("{BLF-CRYPT}$2y$05$abc", None).expect("a hash");
        file.set_hash("ec012345@x.be", &other).expect("new hash");
        let read = file.read("ec012345@x.be").expect("read").expect("an account");
        assert_eq!((read.hash, read.quota_bytes), (other, Some(2_500 << 20)), "only the hash changed");
        assert!(file.set_hash("nobody@x.be", &account.hash).is_err());
        assert_eq!(file.read("ec012345@x.be").expect("read").expect("an account").login, Login::Allowed);
        assert_eq!(std::fs::read_to_string(&refusals).expect("read"), "");
        assert!(file.set_login("ec012345@x.be", &Login::Refused("a\nb".into())).is_err());
    }
}
