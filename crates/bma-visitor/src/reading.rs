//! What a person reads on a page or in an email: the CSRF token a form
//! carries, the link an email gives, the password a page shows.

/// The value of the form's `name="csrf"` field, if the page has one.
pub fn csrf_of(html: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker)? + marker.len();
    html[at..].split('"').next().map(str::to_owned)
}

/// The password the new-password page shows (`<code id="mot-de-passe">`).
pub fn password_on(html: &str) -> Option<String> {
    let marker = "<code id=\"mot-de-passe\">";
    let at = html.find(marker)? + marker.len();
    let end = html[at..].find("</code>")?;
    Some(html[at..at + end].to_owned())
}

/// The first link of a raw email under `prefix` (`https://portail/verification/`),
/// its quoted-printable soft line breaks and `=3D` undone, its token made
/// of the characters of our tokens (letters, digits, `-`, `_`).
pub fn link_in(raw: &str, prefix: &str) -> Option<String> {
    let text = raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let at = text.find(prefix)?;
    let token: String =
        text[at + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    (!token.is_empty()).then(|| format!("{prefix}{token}"))
}

#[cfg(test)]
mod tests {
    use super::{csrf_of, link_in, password_on};

    #[test]
    fn a_form_carries_its_token() {
        for (html, token) in [
            (r#"<form><input type="hidden" name="csrf" value="abc-123"></form>"#, Some("abc-123")),
            (r#"<input name="csrf" value="">"#, Some("")),
            ("<form></form>", None),
        ] {
            assert_eq!(csrf_of(html).as_deref(), token, "{html}");
        }
    }

    #[test]
    fn a_page_shows_a_password() {
        for (html, password) in [
            (
                r#"<p>Le voici : <code id="mot-de-passe">cerise-balcon-orage-tulipe-42</code></p>"#,
                Some("cerise-balcon-orage-tulipe-42"),
            ),
            (r#"<button>Afficher le mot de passe</button>"#, None),
            (r#"<code id="mot-de-passe">sans fin"#, None),
        ] {
            assert_eq!(password_on(html).as_deref(), password, "{html}");
        }
    }

    #[test]
    fn a_link_is_read_across_soft_line_breaks() {
        let prefix = "http://127.0.0.1:8080/verification/";
        for (raw, link) in [
            ("Subject: x\r\n\r\nOuvrez http://127.0.0.1:8080/verification/AbC-d_9 .\r\n", Some("AbC-d_9")),
            ("\r\n\r\nhttp://127.0.0.1:8080/verifi=\r\ncation/AbC=\r\ndef\r\n", Some("AbCdef")),
            ("\r\n\r\nhttp://127.0.0.1:8080/verification/\r\n", None),
            ("\r\n\r\nhttp://127.0.0.1:8080/formulaire/AbC\r\n", None),
        ] {
            assert_eq!(link_in(raw, prefix), link.map(|t| format!("{prefix}{t}")), "{raw:?}");
        }
    }
}
