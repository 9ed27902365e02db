// Package console lets more than one pool member serve a node's console,
// with at most one connection to the console at a time, and any member
// usable as the entry point.
//
// # Who serves a console
//
// The members allowed to serve a node's console are its servicenode list
// (or the console's own Servers list), keeping members that exist, are
// enabled and run the console service (Allowed). The member serving it now
// is the one holding the node's console lease; when nobody holds it, the
// first usable member of the list (alive, or not yet known to be dead)
// takes it on the first request (ServerNow). Leases are sticky: a console
// does not move back when an earlier member returns.
//
// # Leases
//
// A console lease (Leaser, implemented by LeaseTable) is a cluster-wide
// lock of package locking named "console:<node>" (LeaseName), so console
// leases and all other locks share one implementation of the lease rules.
// The lock carries the holding member, a token that only grows (the
// fencing token) and a renewal counter that the holder moves three times
// per TTL. A contender takes a lease over only after it saw the counter
// unchanged for the whole TTL on its own monotonic clock
// (locking.Locker.Contend), with one conditional UPDATE on that counter,
// so no wall clocks of different hosts are compared. A holder whose
// renewals have not succeeded for TTL minus the safety margin (4/5 of the
// TTL) gives the lease up on its own clock and closes the console first.
//
// # The broker
//
// Every member runs a Broker (mnpool console serve). A client connects to
// any member's broker and asks for a node's console; the broker attaches
// it to the console it holds, or proxies to the holder, or — when the
// holder is dead or nobody holds the lease — to the first usable allowed
// member, which takes the lease (waiting for a dead holder's lease to go
// stale) and opens the console. Several clients may watch; one writes at a
// time (a second writer watches unless it forces). Recent output (64 KiB
// by default) is replayed to each new client, so it sees the last screen.
// A client further behind than its queue (256 chunks of up to 4 KiB) is
// disconnected rather than allowed to slow the console; its client
// reconnects and sees the recent output again. When the holder dies, its
// clients and proxies lose their connections, reconnect, and reach the
// next member, which reopens the console.
//
// # Protocol
//
// TLS 1.3 over TCP, or a local Unix socket. The client sends one JSON
// line, a Hello ({"node":"cn001","mode":"watch"|"write","force":false}).
// The broker answers with JSON lines: notices ({"notice":"..."}) while it
// works, then one final Reply ({"ok":true,"server":"sn1","token":7,
// "mode":"write"} or {"ok":false,"code":"not-found","error":"..."}).
// After an ok reply the connection carries raw bytes: console output to
// the client, keyboard input from the writer to the console. Brokers
// proxy with the same Hello, Hops incremented (at most MaxHops brokers)
// and User set to the user they authenticated.
//
// # Who may connect
//
// Nobody is trusted by address. On TCP a client certificate of the pool
// CA (package pki) is required: a user certificate names a user and
// groups; a member certificate names a member, accepted only while that
// member is enabled and runs the console service, and only members may
// proxy for users. On the Unix socket (ListenUnix) the kernel's peer
// credentials admit root and the members of WithSocketGroup. What a user
// may do (watch, write, force) is site.consoleacl (SiteACL, ParseACL).
// The name others see and the log and audit log record is the
// authenticated Identity; a Hello naming anyone else is refused. Each
// attach is audited (ActionAttach) by the broker the user connected to.
//
// # Endpoints
//
// A console endpoint (Spec) is a TCP terminal-server port (KindTCP) or a
// command run under a pseudo-terminal (KindCommand, such as ipmitool's
// sol activate): argv only, no shell, values validated, a clean
// environment, the process group ended when the console closes. Opener
// is the interface; Endpoints the implementation.
//
// # Clients and conserver
//
// Attach and Interact are the client (mnpool console NODE): raw terminal,
// conserver's escape ^Ec. to leave, reconnection. RenderConserver renders
// conserver.cf for a member, listing the consoles it serves now, each
// attached through the member's broker's Unix socket (mnpool console
// --raw --socket), so sites
// that run conserver keep its logging and commands without a second
// connection to the console.
package console
