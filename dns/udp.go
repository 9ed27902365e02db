package dns

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	mdns "github.com/miekg/dns"
)

// udpReader is one read loop on one UDP socket: the fast path answers
// from packed answers without allocating; other queries are parsed by
// miekg/dns and answered by the general path, forwarded ones on a
// goroutine of their own (bounded, see HandlerOptions.MaxForwards).
type udpReader struct {
	h    *Handler
	c    *net.UDPConn
	wg   *sync.WaitGroup // forwarding goroutines
	in   [maxUDPIn]byte
	out  [maxUDPOut]byte
	key  [258]byte
	rkey [16 + 4 + 258]byte
	// With a wildcard socket: the control messages received and the
	// one that sends the answer from the address the query went to.
	pktinfo bool
	oob     [oobSize]byte
	reply   []byte
	replyB  [64]byte
	// batch, when set, collects the answers of one recvmmsg for one
	// sendmmsg.
	batch *batch
}

// ServeUDP answers queries on c until c is closed (it then returns nil,
// after the forwards in flight have finished); another read error is
// returned. Several goroutines may serve several sockets (SO_REUSEPORT)
// with one Handler.
func (h *Handler) ServeUDP(c *net.UDPConn) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	r := &udpReader{h: h, c: c, wg: &wg, pktinfo: enablePktinfo(c)}
	if ok, err := r.batchLoop(); ok {
		return err
	}
	return r.loop()
}

func (r *udpReader) loop() error {
	for {
		var n int
		var from netip.AddrPort
		var err error
		if r.pktinfo {
			var oobn int
			n, oobn, _, from, err = r.c.ReadMsgUDPAddrPort(r.in[:], r.oob[:])
			r.reply = srcOOB(r.replyB[:], dstFromOOB(r.oob[:oobn]))
		} else {
			n, from, err = r.c.ReadFromUDPAddrPort(r.in[:])
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		r.serve(r.in[:n], from)
	}
}

// serve answers one datagram.
func (r *udpReader) serve(q []byte, from netip.AddrPort) {
	h := r.h
	s := h.snap.Load()
	if s == nil {
		r.slow(q, from)
		return
	}
	f, ok := parseFast(q, r.key[:])
	if !ok || !allowed(s.allow, from.Addr()) {
		r.slow(q, from)
		return
	}
	a, kind := s.wire.lookup(r.key[:], f)
	if a == nil {
		r.slow(q, from)
		return
	}
	out := r.out[:]
	if r.batch != nil {
		out = r.batch.slot(maxUDPOut)
	}
	n := s.wire.write(out, q, f, a, h.udpSize)
	if n == 0 {
		r.slow(q, from)
		return
	}
	if !h.rrl.disabled {
		k := h.rrl.key(r.rkey[:], from.Addr(), kind, f.qtype, int(a.rcode), r.key[:f.nameLen])
		switch h.rrl.check(k) {
		case rrlDrop:
			return
		case rrlSlip:
			// Header and question only, TC set.
			n = f.qend
			out[2] |= 0x02
			out[6], out[7], out[8], out[9], out[10], out[11] = 0, 0, 0, 0, 0, 0
		}
	}
	if r.batch != nil {
		r.batch.commit(n, from, r.reply)
		return
	}
	writeUDP(h, r.c, out[:n], r.reply, from)
}

func (r *udpReader) send(b []byte, to netip.AddrPort) {
	if r.batch != nil {
		r.batch.queue(b, to, r.reply)
		return
	}
	writeUDP(r.h, r.c, b, r.reply, to)
}

func writeUDP(h *Handler, c *net.UDPConn, b, oob []byte, to netip.AddrPort) {
	var err error
	if oob != nil {
		_, _, err = c.WriteMsgUDPAddrPort(b, oob, to)
	} else {
		_, err = c.WriteToUDPAddrPort(b, to)
	}
	if err != nil {
		h.log.Debug("dns: writing answer", "client", to, "err", err)
	}
}

// slow answers q through miekg/dns and the general path.
func (r *udpReader) slow(q []byte, from netip.AddrPort) {
	h := r.h
	client := from.Addr().Unmap()
	req := new(mdns.Msg)
	if err := req.Unpack(q); err != nil {
		r.formErr(q, from)
		return
	}
	s := h.snap.Load()
	m, fwd := h.reply(s, req, client)
	if !fwd {
		r.finish(m, req, from)
		return
	}
	select {
	case h.fwdSlots <- struct{}{}:
	default:
		h.stats.forwardsRefusedBusy.Add(1)
		r.finish(new(mdns.Msg).SetRcode(req, mdns.RcodeServerFailure), req, from)
		return
	}
	oob := append([]byte(nil), r.reply...)
	if r.reply == nil {
		oob = nil
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		m := h.ask(req, false, s.forwarders)
		<-h.fwdSlots
		r.finishAsync(m, req, from, oob)
	}()
}

// finish sends m (the answer to req) from the read loop.
func (r *udpReader) finish(m, req *mdns.Msg, from netip.AddrPort) {
	r.h.finish(m, req, false)
	switch r.h.limit(m, from.Addr().Unmap()) {
	case rrlDrop:
		return
	case rrlSlip:
		m = slipped(req)
	}
	b, err := m.PackBuffer(r.out[:])
	if err != nil {
		r.h.log.Debug("dns: packing answer", "client", from, "err", err)
		return
	}
	r.send(b, from)
}

// finishAsync is finish for a forwarding goroutine (its own buffer).
func (r *udpReader) finishAsync(m, req *mdns.Msg, from netip.AddrPort, oob []byte) {
	r.h.finish(m, req, false)
	switch r.h.limit(m, from.Addr().Unmap()) {
	case rrlDrop:
		return
	case rrlSlip:
		m = slipped(req)
	}
	b, err := m.Pack()
	if err != nil {
		r.h.log.Debug("dns: packing answer", "client", from, "err", err)
		return
	}
	writeUDP(r.h, r.c, b, oob, from)
}

// formErr answers a query that does not parse with FORMERR (header
// only), when it has a query header at all.
func (r *udpReader) formErr(q []byte, from netip.AddrPort) {
	if len(q) < 12 || q[2]&0x80 != 0 {
		return
	}
	k := r.h.rrl.key(r.rkey[:], from.Addr(), rrlError, 0, mdns.RcodeFormatError, nil)
	if r.h.rrl.check(k) != rrlSend {
		return
	}
	out := r.out[:12]
	copy(out, q[:12])
	out[2] = 0x80 | q[2]&0x79 // QR, opcode and RD copied
	out[3] = mdns.RcodeFormatError
	for i := 4; i < 12; i++ {
		out[i] = 0
	}
	r.send(out, from)
}
