package makemn_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

// Make sn1 the MN of a pool in a temporary SQLite database: the run takes
// the cluster-wide makemn lock, checks, promotes, waits the hold and
// syncs the role files.
func ExampleRun() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "makemn-example-")
	defer os.RemoveAll(dir)
	s, err := pool.Open(ctx, "sqlite:"+filepath.Join(dir, "pool.db"), pool.WithMigrate(), pool.WithSelf("sn1"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	_ = s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false)
	_, _ = s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}}})
	_ = s.AddMember(ctx, pool.Member{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.2")}}, false)

	rep, err := makemn.Run(ctx, s, makemn.Options{MakeMN: makemn.Request{
		Target: "sn1",
		Guard:  []mnguard.Option{mnguard.WithHold(0)},
		Sync:   poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(dir)}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range rep.Steps {
		fmt.Println(st.Name, st.Status)
	}
	fmt.Printf("%s is the MN of epoch %d (was %s); makemn lock token %d\n", rep.Master.Member, rep.Master.Epoch, rep.Previous.Member, rep.Lock.Token)
	// Output:
	// lock ok
	// db ok
	// target ok
	// replica skipped
	// old-mn info
	// promote ok
	// hold ok
	// sync info
	// sync/role-files ok
	// sn1 is the MN of epoch 2 (was mn1); makemn lock token 1
}
