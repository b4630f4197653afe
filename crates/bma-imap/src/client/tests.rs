//! Protocol paths the lab's Dovecot cannot exercise (TLS, XOAUTH2, no SASL-IR,
//! no LITERAL+), against a scripted peer on loopback: each step is what the
//! client must send, byte for byte, and what the peer answers.

use super::*;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::AsyncWriteExt;

use crate::mutf7::MailboxName;
use crate::secret::Secret;
use crate::transport::TlsRoots;
use crate::types::{AppendUid, InternalDate};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
use tokio::net::TcpListener;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(super) enum Step {
    /// Expect this line from the client (CRLF added), then send the reply.
    Line(&'static str, &'static str),
    /// Expect these raw bytes, then send the reply.
    Bytes(Vec<u8>, &'static str),
    /// Run the TLS handshake as server.
    Tls,
}

struct Peer {
    cert_der: Vec<u8>,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn peer() -> Peer {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_der = ck.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone().into()], key)
        .expect("server config");
    Peer { cert_der, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) }
}

/// Serves one connection: optional implicit TLS, greeting, then the script.
pub(super) async fn serve(implicit_tls: bool, greeting: &'static str, script: Vec<Step>) -> (Config, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let p = peer();
    let cert = p.cert_der.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let mut io: Box<dyn Io> = Box::new(tcp);
            if implicit_tls {
                match p.acceptor.accept(io).await {
                    Ok(tls) => io = Box::new(tls),
                    Err(_) => continue, // the client refused our certificate
                }
            }
            let mut r = BufReader::new(io);
            r.get_mut().write_all(greeting.as_bytes()).await.expect("greeting");
            for step in &script {
                match step {
                    Step::Line(want, reply) => {
                        let mut line = String::new();
                        r.read_line(&mut line).await.expect("read");
                        assert_eq!(line, format!("{want}\r\n"));
                        r.get_mut().write_all(reply.as_bytes()).await.expect("write");
                    }
                    Step::Bytes(want, reply) => {
                        let mut got = vec![0; want.len()];
                        r.read_exact(&mut got).await.expect("read");
                        assert_eq!(&got, want);
                        r.get_mut().write_all(reply.as_bytes()).await.expect("write");
                    }
                    Step::Tls => {
                        assert!(r.buffer().is_empty());
                        let tls = p.acceptor.accept(r.into_inner()).await.expect("handshake");
                        r = BufReader::new(Box::new(tls));
                    }
                }
            }
            return;
        }
    });
    let mut cfg = Config::new("localhost", port);
    cfg.connect_timeout = Duration::from_secs(5);
    cfg.io_timeout = Some(Duration::from_secs(5));
    (cfg, cert)
}

#[tokio::test]
async fn pipelined_status_and_mailbox_commands_are_attributed_to_their_mailboxes() {
    const Q: &str = " (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)";
    let line = |tag: &str, cmd: &str| -> &'static str { Box::leak(format!("{tag} {cmd}").into_boxed_str()) };
    let script = vec![
        // The three STATUS commands arrive together; the server answers
        // after the last, the untagged responses out of order and with
        // INBOX in another case.
        Step::Line(line("A1", &format!("STATUS \"INBOX\"{Q}")), ""),
        Step::Line(line("A2", &format!("STATUS \"Sent\"{Q}")), ""),
        Step::Line(
            line("A3", &format!("STATUS \"Nope\"{Q}")),
            "* STATUS \"Sent\" (MESSAGES 5 SIZE 900 UIDVALIDITY 7)\r\n\
             * STATUS inbox (MESSAGES 3 UIDNEXT 4 HIGHESTMODSEQ 12)\r\n\
             A1 OK done\r\nA3 NO [NONEXISTENT] no such mailbox\r\nA2 OK done\r\n",
        ),
        Step::Line("A4 CREATE \"A\"", ""),
        Step::Line("A5 SUBSCRIBE \"A\"", ""),
        Step::Line(r#"A6 CREATE "B" (USE (\Sent))"#, "A4 OK\r\nA5 OK\r\nA6 NO [ALREADYEXISTS] exists\r\n"),
        Step::Line("A7 NOOP", "A7 OK\r\n"),
    ];
    let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1 CONDSTORE STATUS=SIZE] hi\r\n", script).await;
    let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
    let (inbox, sent, nope) = (MailboxName::new("INBOX"), MailboxName::new("Sent"), MailboxName::new("Nope"));
    let got = c.status_many(&[&inbox, &sent, &nope]).await.expect("pipeline");
    let inbox_status = got[0].as_ref().expect("INBOX");
    assert_eq!(
        (inbox_status.messages, inbox_status.uid_next, inbox_status.highest_modseq),
        (Some(3), Some(4), Some(12))
    );
    let sent_status = got[1].as_ref().expect("Sent");
    assert_eq!((sent_status.messages, sent_status.size, sent_status.uid_validity), (Some(5), Some(900), Some(7)));
    assert_eq!(got[2].as_ref().expect_err("Nope").code(), Some(ResponseCode::NonExistent));
    let (a, b) = (MailboxName::new("A"), MailboxName::new("B"));
    let done = c
        .mailbox_commands(&[
            (MailboxCommand::Create, &a),
            (MailboxCommand::Subscribe, &a),
            (MailboxCommand::CreateSpecialUse(crate::SpecialUse::Sent), &b),
        ])
        .await
        .expect("pipeline");
    assert!(done[0].is_ok() && done[1].is_ok());
    assert_eq!(done[2].as_ref().expect_err("B").code(), Some(ResponseCode::AlreadyExists));
    c.noop().await.expect("the connection is in step after the pipelines");
}

const TLS_CAPS: &str = "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=PLAIN SASL-IR] hi\r\n";

#[tokio::test]
async fn implicit_tls_verifies_certificates_unless_insecure() {
    let (cfg, cert) = serve(true, TLS_CAPS, vec![Step::Line("A1 LOGOUT", "* BYE bye\r\nA1 OK done\r\n")]).await;
    let cfg = cfg.with_security(Security::Tls);
    let err = Client::connect(&cfg).await.expect_err("self-signed certificate must be refused");
    assert!(matches!(&err, Error::Tls(m) if m.contains("UnknownIssuer")), "{err:?}");

    let mut trusted = cfg.clone();
    trusted.roots = TlsRoots::WithExtra(vec![cert]);
    let c = Client::connect(&trusted).await.expect("trusted");
    assert!(c.is_tls() && c.capabilities().has_auth("XOAUTH2"));
    c.logout().await.expect("LOGOUT");

    let (cfg, _) = serve(true, TLS_CAPS, vec![]).await;
    let mut insecure = cfg.with_security(Security::Tls);
    insecure.insecure = true;
    assert!(Client::connect(&insecure).await.expect("insecure").is_tls());
}

#[tokio::test]
async fn starttls_then_xoauth2_with_error_challenge() {
    let token_ir = B64.encode("user=u@x\x01auth=Bearer tok\x01\x01");
    let line: &'static str = Box::leak(format!("A3 AUTHENTICATE XOAUTH2 {token_ir}").into_boxed_str());
    let line2: &'static str = Box::leak(format!("A4 AUTHENTICATE XOAUTH2 {token_ir}").into_boxed_str());
    let challenge: &'static str = Box::leak(format!("+ {}\r\n", B64.encode(r#"{"status":"401"}"#)).into_boxed_str());
    let script = vec![
        Step::Line("A1 STARTTLS", "A1 OK Begin TLS\r\n"),
        Step::Tls,
        Step::Line("A2 CAPABILITY", "* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR\r\nA2 OK\r\n"),
        Step::Line(line, challenge),
        Step::Line("", "A3 NO [AUTHENTICATIONFAILED] denied\r\n"),
        Step::Line(line2, "A4 OK [CAPABILITY IMAP4rev1 UIDPLUS] in\r\n"),
    ];
    let (cfg, cert) = serve(false, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n", script).await;
    let mut cfg = cfg.with_security(Security::StartTls);
    cfg.roots = TlsRoots::WithExtra(vec![cert]);
    let mut c = Client::connect(&cfg).await.expect("STARTTLS");
    assert!(c.is_tls() && !c.capabilities().starttls());
    let auth = Auth::XOAuth2 { user: "u@x".into(), token: Secret::new("tok") };
    let err = c.login(&auth).await.expect_err("refused");
    assert!(
        matches!(&err, Error::AuthFailed { mechanism: "XOAUTH2", code: Some(ResponseCode::AuthenticationFailed), text } if text.contains("401")),
        "{err:?}"
    );
    assert!(!format!("{auth:?} {err:?}").contains("tok\""));
    c.login(&auth).await.expect("accepted");
    assert!(c.capabilities().uidplus());
}

#[tokio::test]
async fn plain_without_sasl_ir_and_append_with_synchronising_literal() {
    let plain = B64.encode("\0u\0p w");
    let plain_line: &'static str = Box::leak(plain.into_boxed_str());
    let script = vec![
        Step::Line("A1 AUTHENTICATE PLAIN", "+ \r\n"),
        Step::Line(plain_line, "A1 OK [CAPABILITY IMAP4rev1] in\r\n"),
        Step::Line("A2 LOGIN \"u\" {3}", "+ go\r\n"),
        Step::Bytes(b"\xc3\xa9x\r\n".to_vec(), "A2 OK done\r\n"),
        Step::Line("A3 CAPABILITY", "* CAPABILITY IMAP4rev1\r\nA3 OK\r\n"),
        Step::Line(r#"A4 APPEND "&AMk-t&AOk-" (\Seen $K) "02-Mar-2020 08:00:00 +0100" {6}"#, "+ go\r\n"),
        Step::Bytes(b"a\nb\r\nc\r\n".to_vec(), "* 1 EXISTS\r\nA4 OK [APPENDUID 7 9] ok\r\n"),
        Step::Line(r#"A5 APPEND "x" {1}"#, "A5 NO [OVERQUOTA] full\r\n"),
    ];
    let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", script).await;
    let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
    let auth = Auth::Plain { authzid: None, authcid: "u".into(), password: Secret::new("p w") };
    c.login(&auth).await.expect("PLAIN");
    c.login(&Auth::Login { user: "u".into(), password: Secret::new("éx") }).await.expect("LOGIN with a literal");
    let date = InternalDate::parse("02-Mar-2020 08:00:00 +0100");
    let flags = [Flag::Seen, Flag::Recent, Flag::Keyword("$K".into())];
    let msg = AppendMessage { body: b"a\nb\r\nc", flags: &flags, internal_date: date };
    let uid = c.append(&"Été".into(), msg).await.expect("APPEND");
    assert_eq!(uid, Some(AppendUid { uid_validity: 7, uid: 9 }));
    assert_eq!(c.exists(), Some(1));
    let msg = AppendMessage { body: b"z", flags: &[], internal_date: None };
    let err = c.append(&"x".into(), msg).await.expect_err("refused before the literal");
    assert!(matches!(err, Error::OverQuota { command: "APPEND", .. }), "{err:?}");
    let nul = AppendMessage { body: b"a\0b", flags: &[], internal_date: None };
    assert!(matches!(c.append(&"x".into(), nul).await, Err(Error::InvalidArgument(_))));
}

/// A mechanism the server does not offer: the error names what it offers,
/// and STARTTLS when the session is in clear text.
#[tokio::test]
async fn a_mechanism_not_offered_names_what_the_server_offers() {
    let master = Auth::Plain { authzid: Some("ec1@x".into()), authcid: "admin".into(), password: Secret::new("p") };
    let cases: [(&'static str, &Auth, &[&str]); 3] = [
        // PLAIN only after STARTTLS, LOGIN disabled in clear text.
        (
            "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n",
            &master,
            &["does not offer AUTHENTICATE PLAIN, nor any other way", "STARTTLS: it may offer more in TLS"],
        ),
        // LOGIN only.
        ("* OK [CAPABILITY IMAP4rev1] hi\r\n", &master, &["does not offer AUTHENTICATE PLAIN; it offers LOGIN"]),
        // LOGIN disabled, other mechanisms offered.
        (
            "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN AUTH=XOAUTH2] hi\r\n",
            &Auth::Login { user: "u".into(), password: Secret::new("p") },
            &["does not offer LOGIN; it offers AUTHENTICATE PLAIN, AUTHENTICATE XOAUTH2"],
        ),
    ];
    for (greeting, auth, want) in cases {
        let (cfg, _) = serve(false, greeting, vec![]).await;
        let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
        let err = c.login(auth).await.expect_err("not offered");
        assert!(matches!(err, Error::AuthUnsupported { .. }), "{err:?}");
        for w in want {
            assert!(err.to_string().contains(w), "{greeting}: {err}");
        }
    }
}

/// Cyrus' `DIGEST.SHA1` read with the size, only where offered.
#[tokio::test]
async fn checks_read_the_size_and_the_digest_where_offered() {
    let script = vec![
        Step::Line("A1 SELECT \"INBOX\"", "* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\nA1 OK [READ-WRITE] done\r\n"),
        Step::Line(
            "A2 UID FETCH 1:2 (UID RFC822.SIZE DIGEST.SHA1)",
            "* 1 FETCH (UID 1 DIGEST.SHA1 019593f7f0346a061bc610c6f3bb2d4f8fe41eaa RFC822.SIZE 31)\r\n\
             * 2 FETCH (UID 2 RFC822.SIZE 12 DIGEST.SHA1 nothex)\r\nA2 OK done\r\n",
        ),
    ];
    let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1 DIGEST=SHA1] hi\r\n", script).await;
    let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
    c.select(&MailboxName::new("INBOX")).await.expect("select");
    let got = c.fetch_checks(&UidSet::range(1, 2), true).await.expect("checks");
    let sha1 = [
        0x01, 0x95, 0x93, 0xf7, 0xf0, 0x34, 0x6a, 0x06, 0x1b, 0xc6, 0x10, 0xc6, 0xf3, 0xbb, 0x2d, 0x4f, 0x8f, 0xe4,
        0x1e, 0xaa,
    ];
    assert_eq!(
        got,
        [
            crate::MessageCheck { uid: 1, size: 31, sha1: Some(sha1) },
            crate::MessageCheck { uid: 2, size: 12, sha1: None }
        ]
    );
    // Not offered: refused before anything is sent.
    let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1] hi\r\n", vec![]).await;
    let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
    let err = c.fetch_checks(&UidSet::range(1, 2), true).await.expect_err("no DIGEST=SHA1");
    assert!(matches!(err, Error::Unsupported("DIGEST=SHA1")), "{err:?}");
}

#[tokio::test]
async fn getquotaroot_reads_the_storage_of_the_first_root_that_has_one() {
    let script = vec![
        Step::Line(
            "A1 GETQUOTAROOT \"INBOX\"",
            "* QUOTAROOT INBOX \"\" \"User quota\"\r\n* QUOTA \"\" (MESSAGE 3 1000)\r\n\
             * QUOTA \"User quota\" (MESSAGE 3 1000 STORAGE 10 2560000)\r\nA1 OK Getquotaroot completed\r\n",
        ),
        Step::Line("A2 GETQUOTAROOT \"Sent\"", "* QUOTAROOT Sent\r\nA2 OK no root\r\n"),
    ];
    let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1 QUOTA] hi\r\n", script).await;
    let mut c = Client::connect(&cfg.clone().with_security(Security::None)).await.expect("connect");
    let quota = c.quota(&MailboxName::new("INBOX")).await.expect("GETQUOTAROOT");
    assert_eq!(quota, Some(crate::Quota { used_bytes: 10 * 1024, limit_bytes: 2_560_000 * 1024 }));
    assert_eq!(c.quota(&MailboxName::new("Sent")).await.expect("GETQUOTAROOT"), None);
    // A server without QUOTA is not asked.
    let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1] hi\r\n", vec![Step::Line("A1 NOOP", "A1 OK\r\n")]).await;
    let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
    assert_eq!(c.quota(&MailboxName::new("INBOX")).await.expect("no QUOTA"), None);
    c.noop().await.expect("nothing sent before");
}
