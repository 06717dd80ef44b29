//! Linphone's remote provisioning document (its "xml2lpc" format: sections and entries of
//! linphonerc): one account, its proxy, its digest credentials as HA1 (the password is not
//! stored, so it is not in the document either).

/// One account to set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account<'a> {
    /// The user part.
    pub user: &'a str,
    /// The domain (and digest realm).
    pub domain: &'a str,
    /// H(user:realm:password), MD5.
    pub ha1_md5: &'a str,
    /// Where the phone sends its requests: `sip:HOST:PORT;transport=T`.
    pub proxy: &'a str,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The XML document for `account`.
pub fn document(account: &Account<'_>) -> String {
    let identity = format!(
        "\"{}\" <sip:{}@{}>",
        account.user, account.user, account.domain
    );
    let proxy = format!("<{}>", account.proxy);
    let entries: [(&str, &[(&str, &str)]); 3] = [
        (
            "proxy_0",
            &[
                ("reg_identity", &identity),
                ("reg_proxy", &proxy),
                ("reg_route", &proxy),
                ("reg_expires", "3600"),
                ("reg_sendregister", "1"),
                ("realm", account.domain),
                ("publish", "0"),
            ],
        ),
        (
            "auth_info_0",
            &[
                ("username", account.user),
                ("userid", account.user),
                ("ha1", account.ha1_md5),
                ("realm", account.domain),
                ("domain", account.domain),
                ("algorithm", "MD5"),
            ],
        ),
        // The link is spent: the phone must not fetch it again at its next start.
        ("misc", &[("config-uri", "")]),
    ];
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <config xmlns=\"http://www.linphone.org/xsds/lpconfig.xsd\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://www.linphone.org/xsds/lpconfig.xsd lpconfig.xsd\">\n",
    );
    for (section, items) in entries {
        xml.push_str(&format!("  <section name=\"{section}\">\n"));
        for (name, value) in items {
            xml.push_str(&format!(
                "    <entry name=\"{name}\" overwrite=\"true\">{}</entry>\n",
                escape(value)
            ));
        }
        xml.push_str("  </section>\n");
    }
    xml.push_str("</config>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_the_account_and_escapes_what_it_carries() {
        let xml = document(&Account {
            user: "alice",
            domain: "club-a.test",
            ha1_md5: "0123",
            proxy: "sip:198.18.0.1:5060;transport=tcp",
        });
        assert!(xml.contains(
            "<entry name=\"reg_proxy\" overwrite=\"true\">&lt;sip:198.18.0.1:5060;transport=tcp&gt;</entry>"
        ));
        assert!(xml.contains("<entry name=\"ha1\" overwrite=\"true\">0123</entry>"));
        assert!(xml.contains("&quot;alice&quot; &lt;sip:alice@club-a.test&gt;"));
    }
}
