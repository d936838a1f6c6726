//! The command line: settings errors, the spec printer, and create-owner.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::*;

fn steward() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward()
        .current_dir(dir.path())
        .env("STEWARD_ACCESS_TOKEN_TTL", "soon")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("STEWARD_ACCESS_TOKEN_TTL"), "{stderr}");
}

#[test]
fn the_openapi_command_prints_the_committed_document() {
    let out = steward().arg("openapi").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        include_str!("../../openapi/openapi.json")
    );
}

#[tokio::test]
async fn create_owner_makes_an_organization_whose_owner_can_log_in() {
    on_each_backend_with(&[("STEWARD_OPEN_SIGNUP", "false")], |app| async move {
        let mut child = steward()
            .env("STEWARD_DATABASE_URL", &app.database_url)
            .args([
                "create-owner",
                "--organization",
                "Acme",
                "--email",
                "root@example.com",
                "--first-name",
                "Root",
                "--last-name",
                "Owner",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let (status, body) = app.log_in("root@example.com", PASSWORD).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        assert_eq!(body["account"]["name"], "Acme");

        let again = steward()
            .env("STEWARD_DATABASE_URL", &app.database_url)
            .env("STEWARD_OWNER_PASSWORD", PASSWORD)
            .args([
                "create-owner",
                "--organization",
                "Acme 2",
                "--email",
                "ROOT@example.com",
                "--first-name",
                "R",
                "--last-name",
                "O",
            ])
            .output()
            .unwrap();
        assert!(!again.status.success(), "a taken email is refused");
    })
    .await;
}
