// Package farmcluster builds a whole test pool on an sshfarm: pool and
// compute keys, a known_hosts file, an SQLite pool database whose nodes
// and members are farm endpoints on loopback, and the command-line flags
// that point mnpool xdsh, pdsh and clush at them. The xdsh tests and the
// xdshbench benchmark share it.
package farmcluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/dispatch/sshfarm"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/sshkeys"
)

// Options describe the cluster.
type Options struct {
	// Dir holds the keys, files and database (required, e.g. t.TempDir()).
	Dir string
	// Nodes is the number of compute nodes, cn00001 and on, at 127.1.0.1
	// and on (NodeBase).
	Nodes    int
	NodeBase netip.Addr
	// Members are the pool members; the first is the MN. They are farm
	// endpoints at 127.2.0.1 and on (MemberBase) unless listed in
	// External (a member served by something else, e.g. a real sshd, at
	// that address on the farm's port).
	Members    []string
	MemberBase netip.Addr
	External   map[string]netip.Addr
	// ServiceNodes gives node i (0-based) its servicenode list (default:
	// the first two members).
	ServiceNodes func(i int) []string
	// Mnpool is the mnpool binary members run as relay (may be empty
	// when nothing is relayed).
	Mnpool string
	// Port of the farm (0: picked).
	Port int
}

// Cluster is a running test pool.
type Cluster struct {
	Farm       *sshfarm.Farm
	Dir        string
	DB         string
	KeyDir     string
	KnownHosts string
	SSHConfig  string
	// HostsFile lists the node addresses, one per line (pdsh -w ^FILE,
	// clush --hostfile FILE).
	HostsFile string
	Nodes     []string
	Members   map[string]netip.Addr
	Mnpool    string
}

// NodeName is the name of node i (0-based).
func NodeName(i int) string { return fmt.Sprintf("cn%05d", i+1) }

// Start builds the cluster.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if !o.NodeBase.IsValid() {
		o.NodeBase = netip.MustParseAddr("127.1.0.1")
	}
	if !o.MemberBase.IsValid() {
		o.MemberBase = netip.MustParseAddr("127.2.0.1")
	}
	if len(o.Members) < 2 {
		return nil, fmt.Errorf("farmcluster: want 2 or more members, have %v", o.Members)
	}
	c := &Cluster{Dir: o.Dir, KeyDir: filepath.Join(o.Dir, "keys"), Members: map[string]netip.Addr{}, Mnpool: o.Mnpool}
	if _, err := sshkeys.Init(ctx, c.KeyDir, sshkeys.Options{}); err != nil {
		return nil, err
	}
	pub, err := sshkeys.LoadPublicKeys(ctx, c.KeyDir)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	a := o.MemberBase
	for _, m := range o.Members {
		if ext, ok := o.External[m]; ok {
			c.Members[m] = ext
			continue
		}
		c.Members[m] = a
		addrs = append(addrs, a)
		a = a.Next()
	}
	a = o.NodeBase
	for i := range o.Nodes {
		c.Nodes = append(c.Nodes, NodeName(i))
		addrs = append(addrs, a)
		a = a.Next()
	}
	f, err := sshfarm.Start(sshfarm.Options{Addrs: addrs, Port: o.Port, Authorized: append(pub.Pool, pub.Compute...)})
	if err != nil {
		return nil, err
	}
	c.Farm = f
	if err := c.writeFiles(o); err != nil {
		f.Close()
		return nil, err
	}
	if err := c.writePool(ctx, o); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// Close stops the farm.
func (c *Cluster) Close() error { return c.Farm.Close() }

func (c *Cluster) writeFiles(o Options) error {
	c.KnownHosts = filepath.Join(c.Dir, "known_hosts")
	if err := os.WriteFile(c.KnownHosts, c.Farm.KnownHosts(), 0o600); err != nil {
		return err
	}
	c.SSHConfig = filepath.Join(c.Dir, "ssh_config")
	if err := os.WriteFile(c.SSHConfig, c.Farm.SSHConfig(sshkeys.KeyPath(c.KeyDir, sshkeys.KindCompute), c.KnownHosts), 0o600); err != nil {
		return err
	}
	var b strings.Builder
	a := o.NodeBase
	for range o.Nodes {
		b.WriteString(a.String() + "\n")
		a = a.Next()
	}
	c.HostsFile = filepath.Join(c.Dir, "hosts")
	return os.WriteFile(c.HostsFile, []byte(b.String()), 0o600)
}

// AddKnownHost appends a known_hosts line for another server (a real
// sshd) at addr on the farm's port.
func (c *Cluster) AddKnownHost(addr netip.Addr, key ssh.PublicKey) error {
	f, err := os.OpenFile(c.KnownHosts, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "[%s]:%d %s", addr, c.Farm.Port(), ssh.MarshalAuthorizedKey(key))
	return err
}

func (c *Cluster) writePool(ctx context.Context, o Options) error {
	c.DB = "sqlite:" + filepath.Join(c.Dir, "pool.db")
	s, err := pool.Open(ctx, c.DB, pool.WithSelf(o.Members[0]), pool.WithLoopbackNetworks())
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	if err := s.AddNetwork(ctx, pool.Network{Name: "lo", Prefix: netip.MustParsePrefix("127.0.0.0/8")}, false); err != nil {
		return err
	}
	member := func(m string) pool.Member {
		return pool.Member{Name: m, Addresses: map[string]netip.Addr{"lo": c.Members[m]}, Services: service.All()}
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: member(o.Members[0])}); err != nil {
		return err
	}
	for _, m := range o.Members[1:] {
		if err := s.AddMember(ctx, member(m), false); err != nil {
			return err
		}
	}
	nodes := make([]pool.Node, o.Nodes)
	a := o.NodeBase
	for i := range nodes {
		sns := o.Members[:2]
		if o.ServiceNodes != nil {
			sns = o.ServiceNodes(i)
		}
		nodes[i] = pool.Node{Name: NodeName(i), IP: a, Network: "lo", ServiceNodes: sns, Groups: []string{"compute"}, Manual: true}
		a = a.Next()
	}
	return s.AddNodes(ctx, nodes, pool.AddOptions{})
}

// RelayCommand is the command members run as relay: the mnpool binary
// with the cluster's keys and known_hosts, itself given as the next
// hop's relay command.
func (c *Cluster) RelayCommand() string {
	base := c.Mnpool + " xdsh-relay --key-dir " + c.KeyDir + " --known-hosts " + c.KnownHosts
	return "MNPOOL_RELAY_COMMAND='" + base + "' " + base
}

// XdshArgs are the mnpool arguments up to and including "xdsh" and the
// connection flags, run as member self.
func (c *Cluster) XdshArgs(self string) []string {
	return []string{"--db", c.DB, "--self", self, "xdsh", "--ssh-port", strconv.Itoa(c.Farm.Port()),
		"--key-dir", c.KeyDir, "--known-hosts", c.KnownHosts, "--relay-command", c.RelayCommand()}
}
