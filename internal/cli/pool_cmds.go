package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/gateway"
	"github.com/mnpool/mnpool/ntp"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// parseAddrs parses NETWORK=IP pairs.
func parseAddrs(pairs []string) (map[string]netip.Addr, error) {
	out := map[string]netip.Addr{}
	for _, p := range pairs {
		for _, one := range strings.Split(p, ",") {
			k, v, ok := strings.Cut(one, "=")
			if !ok {
				return nil, usagef("--ip %q: want NETWORK=IP, such as mgmt=10.0.0.2", one)
			}
			a, err := netip.ParseAddr(strings.TrimSpace(v))
			if err != nil {
				return nil, usagef("--ip %q: %q is not an IP address", one, v)
			}
			out[strings.TrimSpace(k)] = a
		}
	}
	return out, nil
}

func parseServices(list string) ([]service.Service, error) {
	if strings.TrimSpace(list) == "" || list == "none" {
		return []service.Service{}, nil
	}
	if list == "all" {
		return service.All(), nil
	}
	var out []service.Service
	for _, s := range strings.Split(list, ",") {
		v, err := service.Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func parseKV(pairs []string, what string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usagef("%s %q: want KEY=VALUE", what, p)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

func newInitCmd(g *globals) *cobra.Command {
	var mn string
	var ips, site []string
	var services string
	cmd := &cobra.Command{
		Use:   "init --mn NAME [--ip NETWORK=IP] [--site KEY=VALUE]...",
		Short: "Create the pool schema, write site defaults and name the first MN",
		Long: `init applies the schema (idempotent, safe from several members at once),
writes the site defaults (disjointdhcps=0, sharedtftp=0, domain=cluster) and
makes --mn the MN of epoch 1. Running it again with the same MN changes nothing;
to change the MN later use makemn.`,
		Example: `  mnpool --db sqlite:/var/lib/mnpool/pool.db init --mn mn1
  mnpool init --mn mn1 --site domain=hpc.example --site forwarders=192.0.2.53`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mn == "" {
				mn = g.selfName()
			}
			addrs, err := parseAddrs(ips)
			if err != nil {
				return err
			}
			svcs, err := parseServices(services)
			if err != nil {
				return err
			}
			kv, err := parseKV(site, "--site")
			if err != nil {
				return err
			}
			s, err := g.openPool(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			m, err := s.Init(cmd.Context(), pool.InitOptions{MN: pool.Member{Name: mn, Addresses: addrs, Services: svcs}, Site: kv})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "pool initialized: MN %s, epoch %d\n", m.Member, m.Epoch)
			return nil
		},
	}
	cmd.Flags().StringVar(&mn, "mn", "", "name of the first MN (default: --self)")
	cmd.Flags().StringArrayVar(&ips, "ip", nil, "the MN's address on a network, NETWORK=IP (repeatable; the network must exist)")
	cmd.Flags().StringVar(&services, "services", "all", "services the MN runs: comma list of dhcp,dns,ntp,tftp,console,db, or all")
	cmd.Flags().StringArrayVar(&site, "site", nil, "site setting KEY=VALUE (repeatable)")
	return cmd
}

func newMemberCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Add, change, list and remove pool members (MN and SNs)",
	}
	cmd.AddCommand(newMemberAddCmd(g), newMemberSetCmd(g), newMemberListCmd(g), newMemberRemoveCmd(g))
	return cmd
}

func newMemberAddCmd(g *globals) *cobra.Command {
	var ips []string
	var services string
	var disabled bool
	add := &cobra.Command{
		Use:     "add NAME [--ip NETWORK=IP]... [--services LIST]",
		Short:   "Add a service node to the pool",
		Example: `  mnpool member add sn1 --ip mgmt=10.0.0.2 --services dhcp,dns,ntp,tftp,console`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addrs, err := parseAddrs(ips)
			if err != nil {
				return err
			}
			svcs, err := parseServices(services)
			if err != nil {
				return err
			}
			s, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.AddMember(cmd.Context(), pool.Member{Name: args[0], Addresses: addrs, Services: svcs, Disabled: disabled}, false); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "member %s added\n", args[0])
			return nil
		},
	}
	add.Flags().StringArrayVar(&ips, "ip", nil, "address on a network, NETWORK=IP (repeatable)")
	add.Flags().StringVar(&services, "services", "all", "services it runs: comma list of dhcp,dns,ntp,tftp,console,db, all, or none")
	add.Flags().BoolVar(&disabled, "disabled", false, "add it disabled (no nodes are assigned or moved to it)")
	return add
}

// memberSetFlags are the flags of member set.
type memberSetFlags struct {
	ips             []string
	services        string
	disable, enable bool
}

func newMemberSetCmd(g *globals) *cobra.Command {
	var f memberSetFlags
	set := &cobra.Command{
		Use:   "set NAME [--ip NETWORK=IP]... [--services LIST] [--disable|--enable]",
		Short: "Change a member's addresses, services or state; what is not given is kept",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.disable && f.enable {
				return usagef("--disable and --enable exclude each other")
			}
			s, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			m, err := s.Member(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := f.apply(&m, cmd.Flags().Changed("services")); err != nil {
				return err
			}
			if err := s.AddMember(cmd.Context(), m, true); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "member %s updated\n", m.Name)
			return nil
		},
	}
	set.Flags().StringArrayVar(&f.ips, "ip", nil, "address on a network, NETWORK=IP (repeatable)")
	set.Flags().StringVar(&f.services, "services", "", "services it runs: comma list, all, or none")
	set.Flags().BoolVar(&f.disable, "disable", false, "disable the member")
	set.Flags().BoolVar(&f.enable, "enable", false, "enable the member")
	return set
}

// apply changes m as the flags of member set say; what is not given is kept.
// servicesGiven says whether --services was given.
func (f *memberSetFlags) apply(m *pool.Member, servicesGiven bool) error {
	addrs, err := parseAddrs(f.ips)
	if err != nil {
		return err
	}
	for k, v := range addrs {
		m.Addresses[k] = v
	}
	if servicesGiven {
		if m.Services, err = parseServices(f.services); err != nil {
			return err
		}
	}
	if f.disable {
		m.Disabled = true
	}
	if f.enable {
		m.Disabled = false
	}
	return nil
}

func newMemberListCmd(g *globals) *cobra.Command {
	list := &cobra.Command{
		Use:   "list",
		Short: "List the members",
		Args:  cobra.NoArgs,
		RunE: g.withStore(func(cmd *cobra.Command, _ []string, s *pool.Store) error {
			st, err := s.LoadState(cmd.Context())
			if err != nil {
				return err
			}
			sum := pool.Summarize(st)
			if g.json {
				return printJSON(g.io.Out, sum.Members)
			}
			t := newTable(g.io.Out, "name", "role", "state", "addresses", "services", "primary", "listed")
			for _, m := range sum.Members {
				role, state := "SN", "enabled"
				if m.IsMN {
					role = fmt.Sprintf("MN (epoch %d)", st.Master.Epoch)
				}
				if m.Disabled {
					state = "disabled"
				}
				t.row(m.Name, role, state, formatAddrs(m.Addresses), servicesText(m.Services), strconv.Itoa(m.Primary), strconv.Itoa(m.Listed))
			}
			return t.flush()
		}),
	}
	g.addJSON(list)
	return list
}

func newMemberRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a member that is not the MN and serves no node",
		Args:  cobra.ExactArgs(1),
		RunE: g.withStore(func(cmd *cobra.Command, args []string, s *pool.Store) error {
			if err := s.RemoveMember(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "member %s removed\n", args[0])
			return nil
		}),
	}
}

func formatAddrs(m map[string]netip.Addr) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k].String()
	}
	return strings.Join(parts, ",")
}

func servicesText(s []service.Service) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = string(v)
	}
	return strings.Join(parts, ",")
}

func newNetworkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Add, list and remove the networks the pool serves"}
	cmd.AddCommand(newNetworkAddCmd(g), newNetworkListCmd(g), newNetworkRemoveCmd(g))
	return cmd
}

// networkAddFlags are the flags of network add.
type networkAddFlags struct {
	gws                 []string
	dyn, domain, ifname string
	replace             bool
}

// network builds the network NAME CIDR from the arguments and flags.
func (f *networkAddFlags) network(name, cidr string) (pool.Network, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return pool.Network{}, usagef("CIDR %q: want ADDRESS/BITS, such as 10.0.0.0/16", cidr)
	}
	n := pool.Network{Name: name, Prefix: p, Domain: f.domain, MgtIfName: f.ifname}
	for _, gw := range f.gws {
		for _, one := range strings.Split(gw, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(one))
			if err != nil {
				return pool.Network{}, usagef("--gateway %q is not an IP address", one)
			}
			n.Gateways = append(n.Gateways, a)
		}
	}
	if n.DynamicStart, n.DynamicEnd, err = pool.ParseRange(f.dyn); err != nil {
		return pool.Network{}, err
	}
	return n, nil
}

func newNetworkAddCmd(g *globals) *cobra.Command {
	var f networkAddFlags
	add := &cobra.Command{
		Use:     "add NAME CIDR [--gateway IP]... [--dynamic-range START-END] [--domain D]",
		Short:   "Add (or with --replace, change) a network",
		Example: `  mnpool network add mgmt 10.0.0.0/16 --gateway 10.0.0.254 --gateway 10.0.0.253 --dynamic-range 10.0.255.1-10.0.255.254`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := f.network(args[0], args[1])
			if err != nil {
				return err
			}
			// Setting up a pool may start with its networks (so that init
			// can give the MN its addresses): network add creates the
			// database like init does.
			s, err := g.openPool(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.AddNetwork(cmd.Context(), n, f.replace); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "network %s (%s) saved\n", n.Name, n.Prefix)
			return nil
		},
	}
	add.Flags().StringArrayVar(&f.gws, "gateway", nil, "gateway address, in order of preference (repeatable)")
	add.Flags().StringVar(&f.dyn, "dynamic-range", "", "dynamic range START-END (only the MN hands it out)")
	add.Flags().StringVar(&f.domain, "domain", "", "DNS domain of the network (default: site.domain)")
	add.Flags().StringVar(&f.ifname, "mgtifname", "", "management interface name on the members")
	add.Flags().BoolVar(&f.replace, "replace", false, "change the network if it exists")
	return add
}

func newNetworkListCmd(g *globals) *cobra.Command {
	list := &cobra.Command{
		Use:   "list",
		Short: "List the networks",
		Args:  cobra.NoArgs,
		RunE: g.withStore(func(cmd *cobra.Command, _ []string, s *pool.Store) error {
			nets, err := s.Networks(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, nets)
			}
			t := newTable(g.io.Out, "name", "cidr", "gateways", "dynamic range", "domain")
			for _, n := range nets {
				var gw []string
				for _, a := range n.Gateways {
					gw = append(gw, a.String())
				}
				dr := ""
				if n.HasDynamicRange() {
					dr = n.DynamicStart.String() + "-" + n.DynamicEnd.String()
				}
				t.row(n.Name, n.Prefix.String(), strings.Join(gw, ","), dr, n.Domain)
			}
			return t.flush()
		}),
	}
	g.addJSON(list)
	return list
}

func newNetworkRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a network no node or member uses",
		Args:  cobra.ExactArgs(1),
		RunE: g.withStore(func(cmd *cobra.Command, args []string, s *pool.Store) error {
			if err := s.RemoveNetwork(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "network %s removed\n", args[0])
			return nil
		}),
	}
}

func newSiteCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "site", Short: "Show and change site settings (xCAT's site table)"}
	list := &cobra.Command{
		Use:   "list",
		Short: "Show every site setting",
		Args:  cobra.NoArgs,
		RunE: g.withStore(func(cmd *cobra.Command, _ []string, s *pool.Store) error {
			site, err := s.Site(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, site)
			}
			keys := make([]string, 0, len(site))
			for k := range site {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			t := newTable(g.io.Out, "key", "value")
			for _, k := range keys {
				t.row(k, site[k])
			}
			return t.flush()
		}),
	}
	g.addJSON(list)
	cmd.AddCommand(list, newSiteSetCmd(g), newSiteUnsetCmd(g), newSiteKeysCmd(g))
	return cmd
}

func newSiteSetCmd(g *globals) *cobra.Command {
	var custom bool
	set := &cobra.Command{
		Use:   "set KEY=VALUE... [--custom]",
		Short: "Change site settings (all are checked against the site schema before any is written)",
		Long: `set changes site settings. Every key must be one of the schema (see
mnpool site keys) and its value must follow the key's rule; the error names the
rule. Keys mnpool does not know are refused unless --custom is given (they are
then stored as they are and used by nothing in mnpool).`,
		Example: "  mnpool site set domain=hpc.example forwarders=192.0.2.53,192.0.2.54\n  mnpool site set --custom installdir=/install",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kv, err := parseKV(args, "setting")
			if err != nil {
				return err
			}
			s, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.SetSiteWith(cmd.Context(), kv, pool.SiteOptions{Custom: custom}); err != nil {
				return err
			}
			keys := make([]string, 0, len(kv))
			for k := range kv {
				keys = append(keys, k+"="+kv[k])
			}
			sort.Strings(keys)
			fmt.Fprintf(g.io.Out, "site updated: %s\n", strings.Join(keys, " "))
			return nil
		},
	}
	set.Flags().BoolVar(&custom, "custom", false, "allow keys the site schema does not know")
	return set
}

func newSiteUnsetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unset KEY...",
		Short: "Remove site settings (the keys fall back to their defaults)",
		Args:  cobra.MinimumNArgs(1),
		RunE: g.withStore(func(cmd *cobra.Command, args []string, s *pool.Store) error {
			if err := s.UnsetSite(cmd.Context(), args); err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "site keys removed: %s\n", strings.Join(args, " "))
			return nil
		}),
	}
}

func newSiteKeysCmd(g *globals) *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "List every site key mnpool knows, with its type, range, default and meaning",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks := siteschema.Keys()
			if g.json {
				return printJSON(g.io.Out, ks)
			}
			t := newTable(g.io.Out, "key", "type", "range", "default", "meaning")
			for _, k := range ks {
				m := k.Meaning
				if k.ReadOnly {
					m += " (read-only)"
				}
				t.row(k.Name, k.Type, k.Range, k.Default, m)
			}
			return t.flush()
		},
	}
	g.addJSON(keys)
	return keys
}

// statusReport is what `mnpool status` prints: the pool's status plus the
// warnings that need more than the database (clock skew, gateways).
type statusReport struct {
	pool.Status
	Clock    *clockReport `json:"clock,omitempty"`
	Warnings []string     `json:"warnings"`
}

type clockReport struct {
	Answered      int     `json:"answered"`
	SpreadSeconds float64 `json:"spread_seconds"`
	Earliest      string  `json:"earliest,omitempty"`
	Latest        string  `json:"latest,omitempty"`
}

const statusLong = `status shows the MN and its epoch, every member with its liveness and node
counts, where the database replicas are and how each Galera node is doing.
With --ntp it also asks every member's NTP server for the time and warns when
their clocks disagree by more than --max-skew (each answer is measured
against this host's clock in the same round; no two hosts' timestamps are
compared).`

// statusFlags are the flags of status.
type statusFlags struct {
	lf       livenessFlags
	checkNTP bool
	maxSkew  time.Duration
}

func newStatusCmd(g *globals) *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the MN and epoch, the members, node counts and database health",
		Long:  statusLong,
		Args:  cobra.NoArgs,
		RunE: g.withStore(func(cmd *cobra.Command, _ []string, s *pool.Store) error {
			rep, err := readStatus(cmd.Context(), g, s, &f)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, rep)
			}
			return printStatus(g, rep)
		}),
	}
	cmd.Flags().BoolVar(&f.checkNTP, "ntp", false, "query every member's NTP server and warn about clock skew")
	cmd.Flags().DurationVar(&f.maxSkew, "max-skew", ntp.DefaultMaxSkew, "clock difference between members that --ntp warns about")
	f.lf.add(cmd)
	g.addJSON(cmd)
	return cmd
}

// readStatus reads what status prints: the pool's status with the liveness
// the flags ask for, and the warnings.
func readStatus(ctx context.Context, g *globals, s *pool.Store, f *statusFlags) (statusReport, error) {
	lf := &f.lf
	status := func() (pool.Status, error) { return s.StatusAged(ctx, lf.ageOptions()) }
	if lf.sample > 0 {
		status = func() (pool.Status, error) { return s.Status(ctx) }
	}
	st, err := status()
	if err != nil {
		return statusReport{}, err
	}
	if lf.sample > 0 {
		v, _, err := lf.view(ctx, s)
		if err != nil {
			return statusReport{}, err
		}
		applyLiveness(&st, v)
	}
	rep := statusReport{Status: st, Warnings: []string{}}
	snap, err := s.LoadState(ctx)
	if err != nil {
		return statusReport{}, err
	}
	for _, w := range gateway.Warnings(snap) {
		rep.Warnings = append(rep.Warnings, "gateway: "+w.Error())
	}
	for _, a := range st.Addresses {
		rep.Warnings = append(rep.Warnings, "node "+a.Node+" "+a.Problem)
	}
	if f.checkNTP {
		addClockReport(ctx, g, snap, f.maxSkew, &rep)
	}
	return rep, nil
}

// addClockReport asks every member's NTP server for the time and adds the
// result (or the failure) to rep.
func addClockReport(ctx context.Context, g *globals, snap *pool.State, maxSkew time.Duration, rep *statusReport) {
	_, _, a, err := ntp.CheckMembers(ctx, snap, g.selfName(), ntp.CheckOptions{}, maxSkew)
	if err != nil {
		rep.Warnings = append(rep.Warnings, "ntp: "+err.Error())
		return
	}
	rep.Clock = &clockReport{Answered: a.Answered, SpreadSeconds: a.Spread.Seconds(), Earliest: a.Earliest, Latest: a.Latest}
	for _, w := range a.Warnings {
		rep.Warnings = append(rep.Warnings, "ntp: "+w.String())
	}
}

func printStatus(g *globals, rep statusReport) error {
	st := rep.Status
	w := g.io.Out
	mn := st.Master.Member
	if mn == "" {
		mn = "(none: run mnpool init)"
	}
	fmt.Fprintf(w, "MN:        %s (epoch %d)\n", mn, st.Master.Epoch)
	db := st.DB.Backend + " via " + st.DB.Node
	if st.DB.Backend == "galera" {
		db += fmt.Sprintf(", cluster %s, size %d", st.DB.ClusterStatus, st.DB.ClusterSize)
	}
	if !st.DB.Healthy {
		db += ", UNHEALTHY: " + st.DB.Problem
	}
	fmt.Fprintf(w, "Database:  %s\n", db)
	if len(st.DB.Replicas) > 0 {
		fmt.Fprintf(w, "Replicas:  %s\n", strings.Join(st.DB.Replicas, ", "))
	}
	fmt.Fprintf(w, "Nodes:     %d (%d without servicenodes), %d networks\n\n", st.Nodes, st.Unassigned, st.Networks)
	t := newTable(w, "member", "role", "state", "liveness", "primary", "listed", "services")
	for _, m := range st.Members {
		role, state := "SN", "enabled"
		if m.IsMN {
			role = "MN"
		}
		if m.Disabled {
			state = "disabled"
		}
		t.row(m.Name, role, state, livenessText(m.Liveness), strconv.Itoa(m.Primary), strconv.Itoa(m.Listed), servicesText(m.Services))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if st.DB.Backend == "galera" {
		fmt.Fprintln(w)
		t := newTable(w, "db node", "healthy", "status", "state", "size", "problem")
		for _, n := range st.DB.Nodes {
			size := ""
			if n.ClusterSize > 0 {
				size = strconv.Itoa(n.ClusterSize)
			}
			t.row(n.Node, strconv.FormatBool(n.Healthy), n.ClusterStatus, n.State, size, n.Problem)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if rep.Clock != nil {
		fmt.Fprintf(w, "\nClocks:    %d members answered, spread %v\n", rep.Clock.Answered, time.Duration(rep.Clock.SpreadSeconds*float64(time.Second)).Round(time.Microsecond))
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(w)
		for _, x := range rep.Warnings {
			fmt.Fprintln(w, "WARNING:", x)
		}
	}
	return nil
}

func newAuditCmd(g *globals) *cobra.Command {
	var limit int
	var check bool
	cmd := &cobra.Command{
		Use:   "audit [--limit N] [--check]",
		Short: "Show the newest records of the audit log, or check the pool against today's rules",
		Long: `audit shows the newest records of the audit log. With --check it reads the
whole pool and reports what breaks the rules the store enforces on new data:
names that collide (nodes, members and groups share one case-insensitive name
space; "all" is reserved), site values that break the site schema, networks
that break the network rules, and nodes with a MAC but no IP (or the reverse).
Nothing is changed. The exit status is 1 when a rule is broken.`,
		Args: cobra.NoArgs,
		RunE: g.withStore(func(cmd *cobra.Command, _ []string, s *pool.Store) error {
			if check {
				return runAuditCheck(cmd, g, s)
			}
			log, err := s.AuditLog(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, log)
			}
			t := newTable(g.io.Out, "at", "member", "actor", "action", "target")
			for _, e := range log {
				t.row(e.At.Local().Format(time.DateTime), e.Member, e.Actor, e.Action, e.Target)
			}
			return t.flush()
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many records")
	cmd.Flags().BoolVar(&check, "check", false, "check the pool's names, site values, networks and node addresses; change nothing")
	g.addJSON(cmd)
	return cmd
}

// errCheckFailed is returned (exit 1) when audit --check found problems.
var errCheckFailed = errors.New("the pool breaks rules (see above); nothing was changed")

func runAuditCheck(cmd *cobra.Command, g *globals, s *pool.Store) error {
	r, err := s.Check(cmd.Context())
	if err != nil {
		return err
	}
	if g.json {
		if err := printJSON(g.io.Out, r); err != nil {
			return err
		}
	} else {
		w := g.io.Out
		for _, p := range r.Names {
			fmt.Fprintf(w, "name %s: %s: %s\n", p.Name, p.Problem, strings.Join(p.Kinds, ", "))
		}
		for _, p := range r.Site {
			fmt.Fprintf(w, "site %s: %s\n", p.Key, p.Problem)
		}
		for _, p := range r.Networks {
			fmt.Fprintf(w, "network: %s\n", p)
		}
		for _, a := range r.Addresses {
			fmt.Fprintf(w, "warning: node %s %s\n", a.Node, a.Problem)
		}
		if len(r.CustomSiteKeys) > 0 {
			fmt.Fprintf(w, "custom site keys (kept, not used by mnpool): %s\n", strings.Join(r.CustomSiteKeys, ", "))
		}
		if r.OK() {
			fmt.Fprintln(w, "check: the pool follows the rules")
		}
	}
	if !r.OK() {
		return errCheckFailed
	}
	return nil
}
