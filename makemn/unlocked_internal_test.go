package makemn

import (
	"net/netip"
	"testing"

	"github.com/mnpool/mnpool/pool"
	"github.com/stretchr/testify/require"
)

func TestReplicaOf(t *testing.T) {
	cluster := pool.Health{
		Backend:  "galera",
		Replicas: []string{"127.0.0.11:4401", "127.0.0.12:4402", "192.0.2.7:3306", "[2001:db8::5]:3306"},
		Nodes: []pool.NodeHealth{
			{Node: "127.0.0.12:4402", Healthy: true, ClusterSize: 3},
			{Node: "127.0.0.11:4401", Problem: "wsrep_local_state_comment=Donor/Desynced (want Synced)"},
		},
	}
	tests := map[string]struct {
		hosts []string
		ok    bool
		msg   string
	}{
		"configured and Synced":  {hosts: []string{"10.0.0.2", "127.0.0.12"}, ok: true, msg: "Synced replica at 127.0.0.12:4402 (cluster size 3)"},
		"configured, not Synced": {hosts: []string{"127.0.0.11"}, msg: "the replica at 127.0.0.11:4401 is in the cluster but not Primary and Synced (wsrep_local_state_comment=Donor/Desynced (want Synced))"},
		"in the cluster only":    {hosts: []string{"192.0.2.7"}, ok: true, msg: "replica at 192.0.2.7:3306 is in the Primary component (not among this store's DSNs, so its state is not checked)"},
		"IPv6":                   {hosts: []string{"2001:db8::5"}, ok: true, msg: "replica at [2001:db8::5]:3306 is in the Primary component (not among this store's DSNs, so its state is not checked)"},
		"absent":                 {hosts: []string{"10.0.0.3"}, msg: "no database replica at 10.0.0.3 among the cluster's nodes (127.0.0.11:4401, 127.0.0.12:4402, 192.0.2.7:3306, [2001:db8::5]:3306)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			msg, ok := replicaOf(cluster, tc.hosts)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.msg, msg)
		})
	}
}

func TestMakeMNDBAddresses(t *testing.T) {
	m := pool.Member{Name: "sn1", Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.2"), "db": netip.MustParseAddr("127.0.0.12")}}
	r := &makemnRun{}
	require.Equal(t, []string{"127.0.0.12", "10.0.0.2"}, r.dbAddrs(m), "every pool address, by network name")
	r.o.DBAddresses = map[string]netip.Addr{"sn1": netip.MustParseAddr("::ffff:192.0.2.9")}
	require.Equal(t, []string{"192.0.2.9"}, r.dbAddrs(m), "an explicit mapping wins")
}
