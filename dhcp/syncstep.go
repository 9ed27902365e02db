package dhcp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mnpool/mnpool/atomicfile"
	"github.com/mnpool/mnpool/poolsync"
)

// SyncStep returns the poolsync.Step of c: it renders this member's DHCP
// configuration exactly as Make does (every node the member serves except
// those removed with makedhcp -d) and applies it (check, atomic write,
// reload; Kea without a reload command through its control socket).
// makemn's sync and the agent run it.
func (c ApplierConfig) SyncStep() poolsync.Step {
	c = c.WithDefaults()
	return SyncStep(c.Applier(), c.RenderOptions())
}

// SyncStep returns a poolsync.Step that renders this member's DHCP
// configuration with Render options o and applies it with a. It renders
// the dynamic range only when the sync says the member may serve it
// (poolsync.Input.ServeDynamic, which the MN guard decides), so the old
// MN drops its range at its next sync and the new MN gains it. The nodes
// removed with makedhcp -d (Excluded) stay out; when the database cannot
// be read (a cached snapshot) the last set read is used. A member that is
// no DHCP server (ErrNotServer) is left alone.
//
// o.ServeDynamic and o.Select are ignored. ApplierConfig.SyncStep builds
// a and o from one configuration.
func SyncStep(a *Applier, o Options) poolsync.Step {
	var mu sync.Mutex
	var lastExcl map[string]bool
	return poolsync.StepFunc("dhcp", func(ctx context.Context, in *poolsync.Input) (poolsync.Change, error) {
		mu.Lock()
		defer mu.Unlock()
		if in.Store != nil {
			excl, err := Excluded(ctx, in.Store)
			if err != nil {
				return poolsync.Change{}, err
			}
			lastExcl = excl
		}
		ro := o
		ro.Format = a.Format
		serve, still := in.ServeDynamic, in.StillServe
		if serve && still == nil && in.Store != nil {
			// A one-shot sync without the MN guard (mnpool sync):
			// decide as makedhcp does.
			d, err := oneShotDynamic(ctx, in.Store, in.Self, in.State.Master, installedFor(a.Path, in.Self), nil)
			if err != nil {
				return poolsync.Change{}, err
			}
			serve, still = d.serve, d.still
		}
		if serve && still != nil && !still() {
			// The MN guard's confirmation expired while the sync ran.
			serve = false
		}
		cfg, _, err := renderFor(in.State, in.Self, lastExcl, ro, serve)
		if errors.Is(err, ErrNotServer) {
			return poolsync.Change{Detail: "not a DHCP server: " + err.Error()}, nil
		}
		if err != nil {
			return poolsync.Change{}, err
		}
		if cfg.Dynamic && still != nil && !still() {
			if cfg, _, err = renderFor(in.State, in.Self, lastExcl, ro, false); err != nil {
				return poolsync.Change{}, err
			}
		}
		res, err := a.Apply(ctx, cfg.Data)
		if err != nil {
			return poolsync.Change{}, err
		}
		dyn := "no dynamic range"
		if cfg.Dynamic {
			dyn = fmt.Sprintf("dynamic range (epoch %d)", in.DynamicEpoch)
		}
		if n := len(lastExcl); n > 0 {
			dyn += fmt.Sprintf(", %d node(s) removed with makedhcp -d", n)
		}
		switch {
		case !res.Changed:
			return poolsync.Change{Detail: fmt.Sprintf("%s unchanged (%d hosts, %s)", res.Path, cfg.Hosts, dyn)}, nil
		case res.NotReloaded != "":
			dyn += "; not reloaded: " + res.NotReloaded
		case res.Reloaded != "":
			dyn += "; reloaded (" + res.Reloaded + ")"
		}
		return poolsync.Change{Changed: true, Detail: fmt.Sprintf("wrote %s (%d hosts, %s)", res.Path, cfg.Hosts, dyn)}, nil
	})
}

// installedFor parses the file at path when it was written for member.
func installedFor(path, member string) *Installed {
	b, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil
	}
	in, err := Parse(b)
	if err != nil || in.Member != member {
		return nil
	}
	return in
}
