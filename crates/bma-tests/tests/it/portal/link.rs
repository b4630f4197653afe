//! The link of mail 1 at the portal: unknown, malformed and expired links get
//! French pages; without an identity provider the pages say login is unavailable.

use super::*;

// The link: unknown, expired, before login, without an identity provider.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_unknown_malformed_and_expired_get_french_pages() {
    let h = Harness::start(TestBackend::Sqlite, |_| {}).await;
    let (_, token) = h.invited("ec810001@adm.cfwb.be").await;
    let unknown = bma_engine::new_token();
    for path in [format!("/formulaire/{unknown}"), "/formulaire/court".to_owned(), "/formulaire/a%2Fb".to_owned()] {
        let res = h.get(&path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert_security_headers(res.headers(), &path);
        let body = res.text().await.unwrap();
        assert!(body.contains("Ce lien n&#39;est pas valide") && body.contains("migrationbma@cfwb.be"), "{body}");
        assert!(body.contains("lang=\"fr\""));
    }
    let res = h.get(&format!("/formulaire/{token}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains("ec810001@adm.cfwb.be") && body.contains("Se connecter avec Cerbère EDU"), "{body}");

    // After the campaign's end (2024-05-31) the link is gone; an unknown one is still unknown.
    h.clock.set(datetime!(2024-06-01 00:30 UTC));
    let res = h.get(&format!("/formulaire/{token}")).await;
    assert_eq!(res.status(), StatusCode::GONE);
    let body = res.text().await.unwrap();
    assert!(body.contains("Ce lien a expiré") && body.contains("31 mai 2024"), "{body}");
    assert!(body.contains("migrationbma@cfwb.be"), "the contact of the mailbox's phase: {body}");
    assert_eq!(h.get(&format!("/formulaire/{unknown}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.get(&format!("/formulaire/{token}/connexion")).await.status(), StatusCode::GONE);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_identity_provider_pages_say_login_is_unavailable() {
    let h = Harness::start(TestBackend::Sqlite, |s| s.oidc = None).await;
    let (_, token) = h.invited("ec810002@adm.cfwb.be").await;
    for path in [format!("/formulaire/{token}"), format!("/formulaire/{token}/connexion")] {
        let res = h.get(&path).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let body = res.text().await.unwrap();
        assert!(body.contains("La connexion est momentanément indisponible"), "{body}");
        assert!(title_of(&body).starts_with("Erreur\u{a0}: "), "{body}");
        assert!(!body.contains("Se connecter avec"), "{body}");
    }
    let home = h.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("BMA@enseignement.be"), "before the migration: Enseignement.be");
    h.stop().await;
}
