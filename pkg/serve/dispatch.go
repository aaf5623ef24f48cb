package serve

import "github.com/miekg/dns"

// dispatch hands one query of at least a whole header (12 bytes) to h, as
// miekg/dns's server does, for the UDP and the TCP loop alike: a header the
// default accept function ignores (a response) is dropped; one it rejects, or
// a message that does not parse, gets FORMERR (NOTIMP for an unknown opcode)
// without reaching the handler. The query is unpacked into req when it is
// not nil (a UDP worker's, reused: the handler is done with it when it
// returns), else into a new message.
func dispatch(h dns.Handler, w dns.ResponseWriter, m []byte, req *dns.Msg) {
	dh := dns.Header{
		Id: uint16(m[0])<<8 | uint16(m[1]), Bits: uint16(m[2])<<8 | uint16(m[3]),
		Qdcount: uint16(m[4])<<8 | uint16(m[5]), Ancount: uint16(m[6])<<8 | uint16(m[7]),
		Nscount: uint16(m[8])<<8 | uint16(m[9]), Arcount: uint16(m[10])<<8 | uint16(m[11]),
	}
	action := dns.DefaultMsgAcceptFunc(dh)
	if action == dns.MsgAccept {
		if req == nil {
			req = new(dns.Msg)
		} else {
			*req = dns.Msg{}
		}
		if err := req.Unpack(m); err == nil {
			h.ServeDNS(w, req)
			return
		}
		action = dns.MsgReject
	}
	if action == dns.MsgIgnore {
		return
	}
	reply := new(dns.Msg)
	reply.Id = dh.Id
	reply.Response = true
	reply.Opcode = int(dh.Bits>>11) & 0xF
	reply.Rcode = dns.RcodeFormatError
	if action == dns.MsgRejectNotImplemented {
		reply.Rcode = dns.RcodeNotImplemented
	}
	_ = w.WriteMsg(reply)
}
