//! Every decoder of the wire format, on arbitrary bytes: no panic, and a
//! datagram that decodes has frames that re-encode to a decodable datagram;
//! the fast decoder of server messages agrees with serde's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udpchat_core::session::{ClientMessage, ServerMessage, decode, decode_server};
use udpchat_core::wire::{Datagram, DatagramBuilder, HEADER_LEN, Header, Initial};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Header::decode(data) {
        let _ = Initial::decode(&data[HEADER_LEN..]);
        if let Ok(d) = Datagram::decode(data) {
            let mut b = DatagramBuilder::new(header);
            for f in d.frames() {
                b.push(&f);
            }
            if !b.is_empty() {
                let again = b.finish();
                assert!(Datagram::decode(&again).is_ok());
            }
        }
    }
    let _ = decode::<ClientMessage>(data);
    assert_eq!(
        decode_server(data).ok(),
        decode::<ServerMessage>(data).ok()
    );
});
