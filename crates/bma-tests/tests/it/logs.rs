//! What `bma` writes to stderr when it is not a terminal: the log lines of
//! a service collected by systemd, or of the demo piped through `tee`, are
//! plain text, without the ANSI colour codes meant for a person.

use bma_tests::{TestBackend, TestDb, bma_command};

#[tokio::test]
async fn logs_into_a_pipe_carry_no_colour_codes() {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bma_command(dir.path(), &db.url, &["-vv", "status"]).output().expect("run bma");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEBUG"), "bma -vv logs something at debug level: {err}");
    assert!(!err.contains('\u{1b}'), "no escape character in a piped log: {err:?}");
}
