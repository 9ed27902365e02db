package console_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/mnpool/mnpool/console"
)

// BenchmarkLeaseAcquireRelease measures taking a free lease and giving it
// back (two transactions).
func BenchmarkLeaseAcquireRelease(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			lt, err := console.NewLeaseTable(openStore(b, be.dsns(b, 1)[0], "sn1"), "sn1", time.Hour, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer lt.Close(ctx)
			for b.Loop() {
				l, err := lt.TryAcquire(ctx, "cn001")
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Release(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKeystrokeEcho measures a keystroke's round trip: client to
// broker to console endpoint and the echo back, attached to the holding
// member directly and through a proxying member.
func BenchmarkKeystrokeEcho(b *testing.B) {
	ep1, ep2 := newFakeEndpoint(b, "cn001"), newFakeEndpoint(b, "cn002")
	dsns := backends()[0].dsns(b, 3)
	seedPool(b, openStore(b, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(b, dsns, members3)
	for name, addr := range map[string]string{"direct": c.addrs["sn1"], "proxied": c.addrs["mn1"], "socket": c.socks["sn1"]} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			conn, _, err := console.Dial(ctx, userDial(b, ""), addr, console.Hello{Node: "cn001", Mode: console.ModeWrite, Force: true}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			buf := make([]byte, 64<<10)
			// Drain the replay and the banner.
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			for {
				if _, err := conn.Read(buf); err != nil {
					break
				}
			}
			conn.SetReadDeadline(time.Time{})
			key := []byte{'k'}
			for b.Loop() {
				if _, err := conn.Write(key); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, buf[:1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAttach measures connecting to the holder's broker until the
// console's first bytes arrive: TLS 1.3 with a user certificate (ECDSA
// P-256) or the Unix socket. Each attach also writes an audit record
// (in the background).
func BenchmarkAttach(b *testing.B) {
	ep1, ep2 := newFakeEndpoint(b, "cn001"), newFakeEndpoint(b, "cn002")
	dsns := backends()[0].dsns(b, 1)
	seedPool(b, openStore(b, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(b, dsns, []string{"sn1"}, console.WithIdleClose(-1))
	for name, addr := range map[string]string{"tls": c.addrs["sn1"], "socket": c.socks["sn1"]} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			dial := userDial(b, "")
			buf := make([]byte, 1)
			for b.Loop() {
				conn, _, err := console.Dial(ctx, dial, addr, console.Hello{Node: "cn001", Mode: console.ModeWatch}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
		})
	}
}
