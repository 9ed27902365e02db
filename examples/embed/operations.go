package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

// operations runs what an administrator does with makemn, snmove and
// makedhcp, through the packages, on the demo pool, and prints each
// report as JSON under a heading:
//
//  1. makemn: sn1 becomes the MN (makemn.RunUnlocked);
//  2. snmove -s mn1: the nodes mn1 serves move to sn1 (pool.Store.Move),
//     then their resolv.conf, chrony, rsyslog and route files are pushed
//     (nodecfg.Reconfigure) through printPusher instead of SSH;
//  3. makedhcp -n -a on sn1: its dhcpd.conf under out (dhcp.Make).
func operations(ctx context.Context, w io.Writer, dsn, out string) error {
	s, err := pool.Open(ctx, dsn, pool.WithSelf("sn1"), pool.WithActor("product"))
	if err != nil {
		return err
	}
	defer s.Close()

	mm, err := makemn.RunUnlocked(ctx, s, makemn.Request{
		Target: "sn1",
		// The demo has no agents, so nothing says sn1 is alive.
		Force:  true,
		Reason: "embed example",
		// A short hold for the demo; production keeps the default.
		Guard: []mnguard.Option{mnguard.WithTiming(50*time.Millisecond, 200*time.Millisecond), mnguard.WithHold(300 * time.Millisecond)},
		Sync:  poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(filepath.Join(out, "sn1"))}},
	})
	if err := report(w, "makemn sn1 (makemn.RunUnlocked)", mm, err); err != nil {
		return err
	}

	mv, err := s.Move(ctx, pool.MoveRequest{Source: "mn1"})
	if err := report(w, "snmove -s mn1 (pool.Store.Move)", mv, err); err != nil {
		return err
	}
	nc, err := nodecfg.Reconfigure(ctx, s, mv, nodecfg.Options{Pusher: printPusher{w: w}})
	if err := report(w, "snmove: node reconfiguration (nodecfg.Reconfigure)", nc, err); err != nil {
		return err
	}
	if !nc.OK() {
		return fmt.Errorf("%d nodes not reconfigured", nc.Failed)
	}

	dh, err := makedhcp(ctx, s, "sn1", filepath.Join(out, "dhcpd.conf"))
	return report(w, "makedhcp on sn1 (dhcp)", dh, err)
}

// makedhcp renders and installs member's DHCP configuration at path with
// dhcp.Make, the operation behind `makedhcp -n -a`. The file is not
// checked with dhcpd and no daemon is reloaded (a demo); the MN guard's
// hold is shortened as for makemn above.
func makedhcp(ctx context.Context, s *pool.Store, member, path string) (*dhcp.MakeReport, error) {
	return dhcp.Make(ctx, s, dhcp.MakeOptions{
		Self:    member,
		New:     true,
		All:     true,
		Applier: dhcp.ApplierConfig{Path: path, Check: dhcp.CheckNever, Backup: "-"},
		Guard:   []mnguard.Option{mnguard.WithTiming(50*time.Millisecond, 200*time.Millisecond), mnguard.WithHold(300 * time.Millisecond)},
	})
}

// report prints one operation's report; err ends the demo.
func report(w io.Writer, title string, rep any, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", title, err)
	}
	b, merr := json.MarshalIndent(rep, "", "  ")
	if merr != nil {
		return merr
	}
	_, werr := fmt.Fprintf(w, "== %s\n%s\n", title, b)
	return werr
}

// printPusher is a nodecfg.Pusher that prints what it would write on each
// node instead of connecting to it: the demo nodes do not exist. A product
// with its own transport to the nodes implements Pusher the same way.
type printPusher struct{ w io.Writer }

func (p printPusher) Push(_ context.Context, t nodecfg.Target, files []nodecfg.File) nodecfg.Result {
	r := nodecfg.Result{Node: t.Node, Addr: t.Addr}
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "   would write %s on %s (%s): %d bytes\n", f.Kind.Path(), t.Node, t.Addr, len(f.Data))
		r.Files = append(r.Files, nodecfg.FileResult{Kind: f.Kind, Changed: true})
	}
	r.Changed = len(files) > 0
	// One write per node: Push runs for several nodes at once.
	_, r.Err = io.WriteString(p.w, b.String())
	return r
}
