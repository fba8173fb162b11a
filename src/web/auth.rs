//! Basic authentication against `basic_auth_users` (bcrypt hashes), with the result of a
//! successful verification cached so a valid client costs one bcrypt per credential.
//!
//! The cache holds, per user, a SHA-256 digest of the last password that verified: never the
//! password. Its size is the number of configured users, whatever clients send, and it is
//! compared in constant time. Verifications that miss the cache run on the blocking pool, a
//! few at a time; a request that cannot get a slot within [`SLOT_WAIT`] is refused as
//! overloaded, so a flood of random passwords costs a bounded amount of CPU and memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::secret::Secret;

/// How long a request waits for a bcrypt slot before it is refused as overloaded.
pub(crate) const SLOT_WAIT: Duration = Duration::from_secs(2);

/// Why a request was not let in; [`Denied::label`] is the metric's bounded `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No `Authorization` header.
    Missing,
    /// Not `Basic base64(user:password)`.
    Malformed,
    /// A user not in `basic_auth_users`.
    UnknownUser,
    /// A known user with another password.
    WrongPassword,
    /// Every bcrypt slot stayed busy for [`SLOT_WAIT`].
    Overloaded,
}

impl Denied {
    /// The `reason` label of `alertrelay_http_auth_failures_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::Overloaded => "overloaded",
        }
    }
}

/// One configured user.
struct User {
    /// The bcrypt hash from the web config.
    hash: Secret,
    /// Digest of the last password that verified against `hash`.
    accepted: Mutex<Option<[u8; 32]>>,
}

/// `basic_auth_users`, validated, with their cache.
pub(crate) struct Users {
    users: BTreeMap<String, User>,
    /// Bounds the bcrypt verifications running at once.
    slots: Arc<Semaphore>,
}

impl Users {
    /// Validates the hashes (bcrypt, cost 4..=31). An error names the user (for its line);
    /// it never holds the hash.
    pub(crate) fn new(raw: BTreeMap<String, String>) -> Result<Self, (String, String)> {
        let mut users = BTreeMap::new();
        for (name, hash) in raw {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err((
                    name.clone(),
                    format!(
                        "basic_auth_users: the password of {name:?} is not a bcrypt hash (make one with htpasswd -nBC 10 \"\")"
                    ),
                ));
            }
            let user = User {
                hash: Secret::new(hash),
                accepted: Mutex::new(None),
            };
            users.insert(name, user);
        }
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        Ok(Self {
            users,
            slots: Arc::new(Semaphore::new(slots)),
        })
    }

    /// No users: authentication off.
    pub(crate) fn none() -> Self {
        Self {
            users: BTreeMap::new(),
            slots: Arc::new(Semaphore::new(1)),
        }
    }

    /// How many users are configured.
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether authentication is off (no users configured).
    pub(crate) fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks an `Authorization` header. `verified` is called once per bcrypt run.
    pub(crate) async fn check(
        &self,
        header: Option<&HeaderValue>,
        verified: impl Fn(),
    ) -> Result<(), Denied> {
        let (name, password) = credentials(header.ok_or(Denied::Missing)?)?;
        let Some(user) = self.users.get(&name) else {
            // As long as a wrong password, so timing does not tell which users exist.
            if let Some(any) = self.users.values().next() {
                let _ = self.bcrypt(&password, &any.hash, &verified).await?;
            }
            return Err(Denied::UnknownUser);
        };
        let digest = digest(&name, &password);
        let cached = *user.accepted.lock().unwrap_or_else(|e| e.into_inner());
        if cached.is_some_and(|c| bool::from(c.ct_eq(&digest))) {
            return Ok(());
        }
        if self.bcrypt(&password, &user.hash, &verified).await? {
            *user.accepted.lock().unwrap_or_else(|e| e.into_inner()) = Some(digest);
            Ok(())
        } else {
            Err(Denied::WrongPassword)
        }
    }

    /// Runs one bcrypt verification on the blocking pool, within the slots.
    async fn bcrypt(
        &self,
        password: &str,
        hash: &Secret,
        verified: &impl Fn(),
    ) -> Result<bool, Denied> {
        let permit = tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Denied::Overloaded)?
            .map_err(|_| Denied::Overloaded)?;
        let (password, hash) = (Secret::new(password), hash.clone());
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bcrypt::verify(password.expose(), hash.expose()).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        verified();
        Ok(matched)
    }
}

/// `Basic base64(user:password)` → (user, password).
fn credentials(header: &HeaderValue) -> Result<(String, String), Denied> {
    let text = header.to_str().map_err(|_| Denied::Malformed)?;
    let (scheme, encoded) = text.trim().split_once(' ').ok_or(Denied::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Denied::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| Denied::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| Denied::Malformed)?;
    let (user, password) = decoded.split_once(':').ok_or(Denied::Malformed)?;
    Ok((user.to_owned(), password.to_owned()))
}

/// The cache key of a credential: SHA-256 of the length-prefixed user and the password.
fn digest(user: &str, password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((user.len() as u64).to_be_bytes());
    hasher.update(user.as_bytes());
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn basic(text: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn users() -> Users {
        let hash = bcrypt::hash("right", 4).unwrap();
        Users::new(BTreeMap::from([("alertmanager".to_owned(), hash)])).unwrap()
    }

    #[tokio::test]
    async fn every_kind_of_failure_has_its_own_reason() {
        let users = users();
        let check = |h: Option<HeaderValue>| {
            let users = &users;
            async move { users.check(h.as_ref(), || {}).await }
        };
        assert_eq!(check(Some(basic("alertmanager:right"))).await, Ok(()));
        assert_eq!(check(None).await, Err(Denied::Missing));
        assert_eq!(
            check(Some(HeaderValue::from_static("Bearer x"))).await,
            Err(Denied::Malformed)
        );
        assert_eq!(
            check(Some(HeaderValue::from_static("Basic %%%"))).await,
            Err(Denied::Malformed)
        );
        assert_eq!(check(Some(basic("no-colon"))).await, Err(Denied::Malformed));
        assert_eq!(
            check(Some(basic("root:right"))).await,
            Err(Denied::UnknownUser)
        );
        assert_eq!(
            check(Some(basic("alertmanager:wrong"))).await,
            Err(Denied::WrongPassword)
        );
    }

    #[tokio::test]
    async fn a_valid_credential_is_hashed_once_and_a_new_password_is_not_let_in_by_the_cache() {
        let users = users();
        let runs = AtomicUsize::new(0);
        let count = || {
            runs.fetch_add(1, Ordering::Relaxed);
        };
        for _ in 0..20 {
            assert_eq!(
                users.check(Some(&basic("alertmanager:right")), count).await,
                Ok(())
            );
        }
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(
            users.check(Some(&basic("alertmanager:righT")), count).await,
            Err(Denied::WrongPassword)
        );
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_plain_password_is_refused_as_not_a_bcrypt_hash_without_being_echoed() {
        let error = Users::new(BTreeMap::from([("am".to_owned(), "hunter2".to_owned())]))
            .err()
            .unwrap();
        assert_eq!(error.0, "am");
        assert!(!error.1.contains("hunter2"), "{}", error.1);
    }
}
