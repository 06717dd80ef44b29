//! Inputs shared by the benchmarks.

/// A typical INVITE from a softphone: about 650 bytes with an SDP body.
pub const INVITE: &str = "INVITE sip:bob@club-b.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@club-b.test>\r\n\
From: Alice <sip:alice@club-a.test>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.club-a.test\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 238\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 96 0 8 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";
