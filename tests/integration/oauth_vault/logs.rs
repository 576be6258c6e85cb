//! What the install, refresh and disconnect flows log: never a token, a code or the client secret.

use super::*;

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_contain_no_token_and_no_client_secret() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    get(&router, &callback(&state), Some(&cookie)).await;
    // A refused callback logs its reason.
    get(&router, &callback(&state), None).await;
    stand.clock.advance_ms(30 * 60 * 1000);
    let vault = stand.vault();
    let refreshed = vault.access_token(HUB).await.unwrap();
    stand.clock.advance_ms(30 * 60 * 1000);
    stand.refresh_answers(RefreshMode::InvalidGrant);
    assert!(vault.access_token(HUB).await.is_err());
    vault.disconnect(HUB, false).await.unwrap();

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("account installed"),
        "the flow was logged: {logs}"
    );
    assert!(logs.contains("needs reinstall"));
    for secret in [
        SECRET,
        INSTALL_ACCESS,
        INSTALL_REFRESH,
        refreshed.expose(),
        "refresh-rotated-1",
        CODE,
        &cookie,
        &state,
    ] {
        assert!(!logs.contains(secret), "a secret was logged");
    }
}
