package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/rolefiles"
)

// ExampleNew runs the agent of member mn1 inside a program, as a product
// does instead of running mnpoold: a heartbeat, the MN guard, a sync step
// (here the xCAT role files) on every change of the pool, failover when
// the site enables it, and the node reconfiguration after a failover
// (here off: the example's nodes do not exist).
func ExampleNew() {
	dir, err := os.MkdirTemp("", "mnpool-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()

	s, err := pool.Open(ctx, "sqlite:"+filepath.Join(dir, "pool.db"), pool.WithSelf("mn1"), pool.WithMigrate())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	if err := s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1",
		Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}}}); err != nil {
		fmt.Println(err)
		return
	}

	synced := make(chan struct{}, 1)
	a, err := agent.New(s,
		agent.WithSteps(rolefiles.Step(dir)),
		agent.WithNodeConfig(agent.NodeConfig{Disabled: true}),
		agent.WithEvents(func(e agent.Event) {
			if e.Kind == agent.EventSynced {
				select {
				case synced <- struct{}{}:
				default:
				}
			}
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	select {
	case <-synced:
	case <-ctx.Done():
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		fmt.Println("run:", err)
	}
	_, err = os.Stat(filepath.Join(dir, "etc/xCATMN"))
	fmt.Println("agent for", a.Self(), "wrote etc/xCATMN:", err == nil)
	// Output: agent for mn1 wrote etc/xCATMN: true
}
