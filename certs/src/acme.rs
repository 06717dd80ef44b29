//! One ACME order (RFC 8555 section 7.4) through instant-acme: the account (kept in a file,
//! made again when the CA no longer knows it), an order for every served domain, the
//! challenge answered by us (HTTP-01 or TLS-ALPN-01, through [`Challenges`]), finalize with
//! a fresh key, and the chain. Nothing is written here; the manager puts the result in place.

use crate::challenges::Challenges;
use crate::files::{AcmeFiles, write_whole};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use std::path::PathBuf;
use std::time::Duration;

/// How a CA is reached and what it is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The directory URL (Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory).
    pub directory: String,
    /// Contact address for the account (the CA mails expiry warnings there).
    pub email: Option<String>,
    /// PEM root the CA's own HTTPS chains to, when it is not a public one (a test CA).
    pub directory_ca: Option<PathBuf>,
    /// Which challenge to answer.
    pub challenge: Challenge,
}

/// The challenge type answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP-01: the CA fetches a token over plain HTTP on port 80.
    Http01,
    /// TLS-ALPN-01: the CA opens TLS on port 443 with ALPN `acme-tls/1`.
    TlsAlpn01,
}

impl std::fmt::Display for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Challenge::Http01 => "http-01",
            Challenge::TlsAlpn01 => "tls-alpn-01",
        })
    }
}

/// What a successful order brings.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The chain, PEM, end-entity first.
    pub chain_pem: String,
    /// Its new private key, PEM.
    pub key_pem: String,
}

/// Why an order failed, in words fit for one log line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The CA could not be reached or answered with an error.
    #[error("{0}")]
    Acme(#[from] instant_acme::Error),
    /// The CA did not validate a challenge or refused the order.
    #[error("the CA refused: {0}")]
    Refused(String),
    /// The CA offers no challenge of the type configured.
    #[error("the CA offers no {0} challenge for {1}")]
    NoChallenge(Challenge, String),
    /// Our answer could not be made.
    #[error("{0}")]
    Answer(String),
    /// The account file could not be read or written.
    #[error("{0}: {1}")]
    AccountFile(PathBuf, String),
}

/// How long one order may take before it counts as failed.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);

const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

fn builder(config: &AcmeConfig) -> Result<instant_acme::AccountBuilder, instant_acme::Error> {
    match &config.directory_ca {
        Some(ca) => Account::builder_with_root(ca),
        None => Account::builder(),
    }
}

/// The account from `files.account`, or a new one (written there) when there is none.
async fn open_account(
    config: &AcmeConfig,
    files: &AcmeFiles,
    fresh: bool,
) -> Result<Account, OrderError> {
    if !fresh {
        if let Ok(text) = std::fs::read_to_string(&files.account) {
            let credentials: AccountCredentials = serde_json::from_str(&text)
                .map_err(|e| OrderError::AccountFile(files.account.clone(), e.to_string()))?;
            return Ok(builder(config)?.from_credentials(credentials).await?);
        }
    }
    let contact = config.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder(config)?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            None,
        )
        .await?;
    let json = serde_json::to_vec_pretty(&credentials)
        .map_err(|e| OrderError::AccountFile(files.account.clone(), e.to_string()))?;
    write_whole(&files.account, &json, true)
        .map_err(|e| OrderError::AccountFile(files.account.clone(), e.to_string()))?;
    tracing::info!(directory = %config.directory, "ACME account created");
    Ok(account)
}

/// Orders a certificate for `domains`, answering through `challenges`.
pub async fn order(
    config: &AcmeConfig,
    files: &AcmeFiles,
    domains: &[String],
    challenges: &Challenges,
) -> Result<Issued, OrderError> {
    let run = async {
        let account = open_account(config, files, false).await?;
        match order_with(&account, config, domains, challenges).await {
            Err(OrderError::Acme(instant_acme::Error::Api(p)))
                if p.r#type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST) =>
            {
                tracing::info!("the CA no longer knows our ACME account: making a new one");
                let account = open_account(config, files, true).await?;
                order_with(&account, config, domains, challenges).await
            }
            other => other,
        }
    };
    let result = match tokio::time::timeout(ORDER_TIMEOUT, run).await {
        Ok(r) => r,
        Err(_) => Err(OrderError::Refused(format!(
            "no certificate after {} s",
            ORDER_TIMEOUT.as_secs()
        ))),
    };
    challenges.clear();
    result
}

async fn order_with(
    account: &Account,
    config: &AcmeConfig,
    domains: &[String],
    challenges: &Challenges,
) -> Result<Issued, OrderError> {
    let identifiers: Vec<Identifier> = domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let wanted = match config.challenge {
        Challenge::Http01 => ChallengeType::Http01,
        Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(OrderError::Refused(format!(
                    "authorization for {} is {other:?}",
                    authz.identifier()
                )));
            }
        }
        let name = authz.identifier().to_string();
        let mut challenge = authz
            .challenge(wanted.clone())
            .ok_or_else(|| OrderError::NoChallenge(config.challenge, name.clone()))?;
        let key_authorization = challenge.key_authorization();
        match config.challenge {
            Challenge::Http01 => {
                challenges.offer_http(&challenge.token, key_authorization.as_str())
            }
            Challenge::TlsAlpn01 => challenges
                .offer_alpn(&name, key_authorization.digest().as_ref())
                .map_err(|e| OrderError::Answer(e.to_string()))?,
        }
        challenge.set_ready().await?;
    }
    let retries = RetryPolicy::default().timeout(ORDER_TIMEOUT);
    let status = order.poll_ready(&retries).await?;
    if status != OrderStatus::Ready {
        let why = order
            .state()
            .error
            .as_ref()
            .and_then(|p| p.detail.clone())
            .unwrap_or_else(|| format!("order is {status:?}"));
        return Err(OrderError::Refused(why));
    }
    let key_pem = order.finalize().await?;
    let chain_pem = order.poll_certificate(&retries).await?;
    Ok(Issued { chain_pem, key_pem })
}
