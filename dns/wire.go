package dns

import (
	"encoding/binary"
	"strings"

	mdns "github.com/miekg/dns"
)

// The UDP fast path answers the common queries (one question of class IN
// for a name in the pool's zones, no EDNS or EDNS version 0 without
// options) from answers packed when the snapshot is built: per query it
// copies the ID, the RD and CD flags and the question (with the client's
// letter case) and appends the packed records. Anything else takes the
// general path (miekg/dns parsing, Handler.reply).

const (
	// maxUDPIn is the largest query read; larger datagrams are cut and
	// then fail to parse (FORMERR).
	maxUDPIn = 4096
	// maxUDPOut bounds the EDNS buffer size the server advertises.
	maxUDPOut = 4096
	// optLen is the size of an OPT record without options.
	optLen = 11
)

// wireAnswer is an answer packed ahead: the sections after the question,
// with names compressed against the question at offset 12 (which has the
// same length and labels in every query for the same name).
type wireAnswer struct {
	aa         bool
	rcode      uint8
	an, ns, ar uint16
	body       []byte
}

// wireZone holds the packed negative answers of a zone: the SOA, with
// the negative TTL, in the authority section.
type wireZone struct {
	nodata, nx *wireAnswer
}

// wireIndex is the fast path's view of a snapshot. Keys are names in
// wire format, lower case.
type wireIndex struct {
	names map[string]*wireNameSet // every name that exists
	zones map[string]*wireZone    // by origin
	ra    bool
}

// wireTypes is how many types of one name the fast path serves (names
// have one to three: A, AAAA, PTR; SOA and NS at an apex); more go to the
// general path.
const wireTypes = 4

// wireNameSet is the packed answers of one name, by type.
type wireNameSet struct {
	zone    *wireZone
	n       int
	types   [wireTypes]uint16
	answers [wireTypes]*wireAnswer
}

// buildWire packs every answer of the snapshot that the fast path
// serves: each type each name has (ANY is left to the general path), and
// the negative answers of each zone.
func buildWire(s *snapshot) *wireIndex {
	w := &wireIndex{
		names: make(map[string]*wireNameSet, len(s.names)),
		zones: make(map[string]*wireZone, len(s.zones)),
		ra:    len(s.forwarders) > 0,
	}
	byOrigin := map[string]*wireZone{}
	for i := range s.zones {
		z := &s.zones[i]
		soa := make([]byte, 512)
		n, err := mdns.PackRR(z.negSOA, soa, 0, nil, false)
		if err != nil {
			continue
		}
		wz := &wireZone{
			nodata: &wireAnswer{aa: true, rcode: mdns.RcodeSuccess, ns: 1, body: soa[:n:n]},
			nx:     &wireAnswer{aa: true, rcode: mdns.RcodeNameError, ns: 1, body: soa[:n:n]},
		}
		byOrigin[z.Origin] = wz
		if wn, ok := packName(make([]byte, 256), z.Origin); ok {
			w.zones[string(wn)] = wz
		}
	}
	m := new(mdns.Msg)
	buf := make([]byte, 0, 4096)
	key := make([]byte, 256)
	arena := newArena()
	sets := make([]wireNameSet, len(s.names))
	i := 0
	for name, set := range s.names {
		wn, ok := packName(key, name)
		if !ok {
			continue
		}
		ws := &sets[i]
		i++
		ws.zone = byOrigin[set.zone.Origin]
		w.names[string(wn)] = ws
		for _, ts := range set.types {
			if ws.n == wireTypes {
				break
			}
			a, ok := packSimple(arena, ts.t, ts.rrs)
			if !ok {
				*m = mdns.Msg{}
				m.SetQuestion(name, ts.t)
				m.Response = true
				m.Compress = true
				s.authoritative(m, set.zone, name, ts.t)
				if m.Rcode != mdns.RcodeSuccess || len(m.Answer) == 0 {
					continue
				}
				packed, err := m.PackBuffer(buf)
				if err != nil {
					continue
				}
				a = arena.answer()
				*a = wireAnswer{
					aa: true, rcode: uint8(m.Rcode),
					an:   binary.BigEndian.Uint16(packed[6:]),
					ns:   binary.BigEndian.Uint16(packed[8:]),
					ar:   binary.BigEndian.Uint16(packed[10:]),
					body: arena.copy(packed[12+len(wn)+4:]),
				}
			}
			ws.types[ws.n], ws.answers[ws.n] = ts.t, a
			ws.n++
		}
	}
	return w
}

// packName writes name (canonical, fully qualified, without escapes)
// in wire format into buf (256 bytes); names with escapes take
// miekg/dns's packer.
func packName(buf []byte, name string) ([]byte, bool) {
	if name == "." {
		buf[0] = 0
		return buf[:1], true
	}
	if strings.IndexByte(name, '\\') >= 0 || len(name) > 254 || !strings.HasSuffix(name, ".") {
		n, err := mdns.PackDomainName(name, buf, 0, nil, false)
		return buf[:n], err == nil
	}
	n := 0
	for len(name) > 0 {
		i := strings.IndexByte(name, '.')
		if i <= 0 || i > 63 {
			return nil, false
		}
		buf[n] = byte(i)
		copy(buf[n+1:], name[:i])
		n += 1 + i
		name = name[i+1:]
	}
	buf[n] = 0
	return buf[:n+1], true
}

// arena hands out wireAnswers and byte slices from large blocks: a
// snapshot of 100,000 nodes is a few allocations instead of 400,000.
type arena struct {
	bytes   []byte
	answers []wireAnswer
}

func newArena() *arena { return &arena{} }

func (a *arena) copy(b []byte) []byte {
	if len(a.bytes)+len(b) > cap(a.bytes) {
		a.bytes = make([]byte, 0, max(64<<10, len(b)))
	}
	start := len(a.bytes)
	a.bytes = append(a.bytes, b...)
	return a.bytes[start:len(a.bytes):len(a.bytes)]
}

// reserve returns room for n bytes at the end of the arena (not yet
// part of it; commit takes what was used).
func (a *arena) reserve(n int) []byte {
	if len(a.bytes)+n > cap(a.bytes) {
		a.bytes = make([]byte, 0, max(64<<10, n))
	}
	return a.bytes[len(a.bytes) : len(a.bytes)+n]
}

// commit makes the first n reserved bytes part of the arena and returns
// them.
func (a *arena) commit(n int) []byte {
	start := len(a.bytes)
	a.bytes = a.bytes[:start+n]
	return a.bytes[start : start+n : start+n]
}

func (a *arena) answer() *wireAnswer {
	if len(a.answers) == cap(a.answers) {
		a.answers = make([]wireAnswer, 0, 1024)
	}
	a.answers = append(a.answers, wireAnswer{})
	return &a.answers[len(a.answers)-1]
}

// packSimple packs the answer for A, AAAA and PTR records without
// miekg/dns's message packing, straight into the arena: each record is
// the owner as a pointer to the question (offset 12), type, class, TTL
// and data (a PTR target uncompressed).
func packSimple(ar *arena, t uint16, rrs []mdns.RR) (*wireAnswer, bool) {
	if t != mdns.TypeA && t != mdns.TypeAAAA && t != mdns.TypePTR || len(rrs) == 0 || len(rrs) > 16 {
		return nil, false
	}
	b := ar.reserve(len(rrs) * (12 + 256))
	n := 0
	for _, rr := range rrs {
		h := rr.Header()
		b[n], b[n+1] = 0xc0, 12
		binary.BigEndian.PutUint16(b[n+2:], h.Rrtype)
		binary.BigEndian.PutUint16(b[n+4:], h.Class)
		binary.BigEndian.PutUint32(b[n+6:], h.Ttl)
		rd := b[n+12:]
		var l int
		switch rr := rr.(type) {
		case *mdns.A:
			l = copy(rd, rr.A.To4())
			if l != 4 {
				return nil, false
			}
		case *mdns.AAAA:
			l = copy(rd, rr.AAAA.To16())
			if l != 16 {
				return nil, false
			}
		case *mdns.PTR:
			wn, ok := packName(rd[:256], rr.Ptr)
			if !ok {
				return nil, false
			}
			l = len(wn)
		default:
			return nil, false
		}
		binary.BigEndian.PutUint16(b[n+10:], uint16(l))
		n += 12 + l
	}
	a := ar.answer()
	*a = wireAnswer{aa: true, rcode: mdns.RcodeSuccess, an: uint16(len(rrs)), body: ar.commit(n)}
	return a, true
}

// fastQuery is a query parsed by the fast path.
type fastQuery struct {
	qend    int    // end of the question
	nameLen int    // length of the wire name (and of key's name part)
	qtype   uint16 // the query type
	edns    bool
	do      bool
	udpSize uint16
}

// parseFast parses q when the fast path may answer it, writing the
// lowered name followed by the type into key. ok is false otherwise.
func parseFast(q []byte, key []byte) (f fastQuery, ok bool) {
	if len(q) < 12+1+4 || q[2]&0xf8 != 0 || // QR set or opcode not QUERY
		q[4] != 0 || q[5] != 1 || q[6]|q[7]|q[8]|q[9]|q[10] != 0 || q[11] > 1 {
		return f, false
	}
	off := 12
	for {
		if off >= len(q) {
			return f, false
		}
		l := int(q[off])
		if l == 0 {
			break
		}
		if l&0xc0 != 0 || off+1+l >= len(q) || off-12+1+l > 254 {
			return f, false
		}
		key[off-12] = byte(l)
		for i, c := range q[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			key[off-12+1+i] = c
		}
		off += 1 + l
	}
	key[off-12] = 0
	off++
	f.nameLen = off - 12
	if off+4 > len(q) {
		return f, false
	}
	f.qtype = binary.BigEndian.Uint16(q[off:])
	if q[off+2] != 0 || q[off+3] != byte(mdns.ClassINET) {
		return f, false
	}
	switch f.qtype {
	case mdns.TypeANY, mdns.TypeAXFR, mdns.TypeIXFR, mdns.TypeOPT:
		return f, false
	}
	key[f.nameLen], key[f.nameLen+1] = byte(f.qtype>>8), byte(f.qtype)
	off += 4
	f.qend = off
	if q[11] == 0 {
		return f, off == len(q)
	}
	// One OPT record: root name, type 41, version 0, no options.
	if len(q) != off+optLen || q[off] != 0 || q[off+1] != 0 || q[off+2] != byte(mdns.TypeOPT) ||
		q[off+6] != 0 || q[off+9] != 0 || q[off+10] != 0 {
		return f, false
	}
	f.edns = true
	f.udpSize = binary.BigEndian.Uint16(q[off+3:])
	f.do = q[off+7]&0x80 != 0
	return f, true
}

// lookup finds the packed answer for the parsed name and type in key.
// kind is the rate limit account kind; nil when the name is in none of
// the zones.
func (w *wireIndex) lookup(key []byte, f fastQuery) (a *wireAnswer, kind byte) {
	name := key[:f.nameLen]
	if ws := w.names[string(name)]; ws != nil {
		for i := 0; i < ws.n; i++ {
			if ws.types[i] == f.qtype {
				return ws.answers[i], rrlAnswer
			}
		}
		return ws.zone.nodata, rrlAnswer
	}
	for off := 0; name[off] != 0; off += 1 + int(name[off]) {
		if z := w.zones[string(name[off:])]; z != nil {
			return z.nx, rrlNX
		}
	}
	return nil, 0
}

// write writes the answer a to query q into out and returns its length,
// 0 when it does not fit the client's size (the general path then
// truncates).
func (w *wireIndex) write(out, q []byte, f fastQuery, a *wireAnswer, udpSize uint16) int {
	limit := mdns.MinMsgSize
	if f.edns {
		limit = max(limit, int(min(f.udpSize, udpSize)))
	}
	n := f.qend + len(a.body)
	if f.edns {
		n += optLen
	}
	if n > limit || n > len(out) {
		return 0
	}
	out[0], out[1] = q[0], q[1]
	out[2] = 0x80 | q[2]&0x01 // QR, RD copied
	if a.aa {
		out[2] |= 0x04
	}
	out[3] = q[3]&0x10 | a.rcode // CD copied
	if w.ra {
		out[3] |= 0x80
	}
	ar := a.ar
	if f.edns {
		ar++
	}
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], a.an)
	binary.BigEndian.PutUint16(out[8:], a.ns)
	binary.BigEndian.PutUint16(out[10:], ar)
	copy(out[12:], q[12:f.qend])
	p := f.qend + copy(out[f.qend:], a.body)
	if f.edns {
		o := out[p : p+optLen]
		o[0], o[1], o[2] = 0, 0, byte(mdns.TypeOPT)
		binary.BigEndian.PutUint16(o[3:], udpSize)
		o[5], o[6], o[7], o[8], o[9], o[10] = 0, 0, 0, 0, 0, 0
		if f.do {
			o[7] = 0x80
		}
	}
	return n
}
