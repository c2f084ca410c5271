//! Both sides of the handshake and the datagram opener, on arbitrary bytes:
//! forged handshake messages and sealed datagrams fail cleanly, and a
//! forged answer never spoils the genuine one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udpchat_core::crypto::{Initiator, StaticKey, respond};

fuzz_target!(|data: &[u8]| {
    let key = StaticKey::from_private([0x42; 32]);
    let init = Initiator::new(7, [1; 32]).expect("initiator");
    // The fuzzer's bytes as the server's answer.
    let forged_ok = init.finish(data).is_ok();
    // The fuzzer's bytes as a client's first message.
    let _ = respond(&key, 7, [2; 32], data, None);
    // A genuine exchange still completes after the forgery.
    // (With an id issued by the server when the first byte is odd.)
    let issued = data.first().is_some_and(|b| b & 1 == 1).then_some(0x1d);
    let (server, msg2) = respond(&key, 7, [2; 32], init.msg1(), issued).expect("respond");
    if !forged_ok {
        let est = init.finish(&msg2).expect("genuine answer after a forged one");
        assert_eq!(est.issued_id, issued);
        // The fuzzer's bytes as a sealed datagram, both ways.
        let _ = server.open(data);
        let _ = est.transport.open(data);
        if let Ok(sealed) = est.transport.seal(data) {
            assert_eq!(server.open(&sealed).ok().as_deref(), Some(data));
        }
    }
});
