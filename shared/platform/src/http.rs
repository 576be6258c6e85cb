//! An outbound HTTP client built on its first request rather than before a function's first
//! `GET /next`.
//!
//! reqwest with rustls verifies through rustls-platform-verifier, which reads and parses the
//! system's trust store when the client is built: counted with callgrind, nearly all of the
//! relay's, the api-caller's and the OAuth callback's init instructions. Built here on first
//! use, once, and shared by every clone.

use std::sync::{Arc, Mutex, OnceLock};

/// A reqwest client from `builder`, built when first asked for.
#[derive(Clone)]
pub struct LazyClient {
    builder: Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
    client: Arc<OnceLock<reqwest::Client>>,
    /// Held while building, so that concurrent first calls build one client, not one each.
    building: Arc<Mutex<()>>,
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.client.get().is_some())
            .finish_non_exhaustive()
    }
}

impl LazyClient {
    pub fn new(builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static) -> Self {
        Self {
            builder: Arc::new(builder),
            client: Arc::default(),
            building: Arc::default(),
        }
    }

    /// The client; built now if this is the first call (concurrent first calls wait for the
    /// one build). A failed build is tried again on the next call.
    pub fn get(&self) -> Result<&reqwest::Client, reqwest::Error> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        // A poisoned lock only means another caller panicked while building.
        let _building = self
            .building
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let built = (self.builder)().build()?;
        Ok(self.client.get_or_init(|| built))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_built_once_on_first_use_and_shared_by_clones() {
        let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&builds);
        let lazy = LazyClient::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            reqwest::Client::builder()
        });
        let clone = lazy.clone();
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(lazy.get().is_ok());
        assert!(clone.get().is_ok());
        assert!(lazy.get().is_ok());
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
