use super::*;

/// Sends Initials every [`HANDSHAKE_INTERVAL`] to a server that never
/// answers; returns when the client gave up and what it had sent.
fn unanswered(config: ClientConfig) -> (Instant, Option<CloseReason>, usize) {
    let mut client = Client::new(Instant::ZERO, config, [7; 32], "alice").unwrap();
    let mut now = Instant::ZERO;
    let mut sent = 0;
    while let Some(at) = client.poll_timeout() {
        while client.poll_transmit(now, &mut Vec::new()).is_some() {
            sent += 1;
        }
        now = at.max(now);
        client.handle_timeout(now);
    }
    (now, client.closed().cloned(), sent)
}

#[test]
fn a_silent_server_is_given_up_at_the_handshake_timeout() {
    let (at, reason, sent) = unanswered(ClientConfig::default());
    assert_eq!(
        at,
        Instant::ZERO + Duration::from_secs(12),
        "the idle timeout"
    );
    assert_eq!(reason, Some(CloseReason::NoAnswer));
    assert_eq!(sent, 24);

    let config = ClientConfig {
        handshake_timeout: Some(Duration::from_secs(5)),
        ..ClientConfig::default()
    };
    let (at, reason, sent) = unanswered(config);
    assert_eq!(at, Instant::ZERO + Duration::from_secs(5));
    assert_eq!(reason, Some(CloseReason::NoAnswer));
    assert_eq!(sent, 10);
    assert_eq!(reason.unwrap().to_string(), "no answer from the server");
}
