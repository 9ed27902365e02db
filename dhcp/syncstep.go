package dhcp

import (
	"context"
	"errors"
	"fmt"

	"github.com/mnpool/mnpool/pool"
)

// SyncStep returns a pool.SyncStep that renders this member's DHCP
// configuration and applies it with a (check, atomic write, reload). It
// renders the dynamic range only when the sync says the member may serve
// it (pool.SyncInput.ServeDynamic, which the MN guard decides), so the old
// MN drops its range at its next sync and the new MN gains it. A member
// that is no DHCP server (ErrNotServer) is left alone.
//
// o.ServeDynamic is ignored: the sync input decides.
func SyncStep(a *Applier, o Options) pool.SyncStep {
	return pool.SyncStepFunc("dhcp", func(ctx context.Context, in *pool.SyncInput) (pool.SyncChange, error) {
		ro := o
		ro.Format = a.Format
		ro.ServeDynamic = in.ServeDynamic
		if ro.ServeDynamic && in.StillServe != nil && !in.StillServe() {
			// The MN guard's confirmation expired while the sync ran.
			ro.ServeDynamic = false
		}
		cfg, err := Render(in.State, in.Self, ro)
		if errors.Is(err, ErrNotServer) {
			return pool.SyncChange{Detail: "not a DHCP server: " + err.Error()}, nil
		}
		if err != nil {
			return pool.SyncChange{}, err
		}
		res, err := a.Apply(ctx, cfg.Data)
		if err != nil {
			return pool.SyncChange{}, err
		}
		dyn := "no dynamic range"
		if cfg.Dynamic {
			dyn = fmt.Sprintf("dynamic range (epoch %d)", in.DynamicEpoch)
		}
		if !res.Changed {
			return pool.SyncChange{Detail: fmt.Sprintf("%s unchanged (%d hosts, %s)", res.Path, cfg.Hosts, dyn)}, nil
		}
		return pool.SyncChange{Changed: true, Detail: fmt.Sprintf("wrote %s (%d hosts, %s)", res.Path, cfg.Hosts, dyn)}, nil
	})
}
