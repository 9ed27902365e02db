package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/gateway"
	"github.com/mnpool/mnpool/pool"
)

func newGatewayCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Ways out of the networks: gateways, VRRP groups, keepalived",
		Long: `Networks may list several gateways (mnpool network add --gateway A,B); nodes
and DHCP get all of them, first preferred. Members that forward traffic can
share a virtual gateway address with VRRP (keepalived), set per network in the
site table:

  vrrp.NET.members  members that forward, highest priority first (two or more)
  vrrp.NET.vips     the virtual gateway address(es), each one of NET's gateways
  vrrp.NET.vrid     the VRRP router ID, 1-255 (default 51)

The members must also forward (net.ipv4.ip_forward=1, and NAT or routes to the
outside); keepalived only moves the address.`,
	}
	cmd.AddCommand(newGatewayKeepalivedCmd(g), newGatewayListCmd(g))
	return cmd
}

const gatewayKeepalivedLong = `keepalived renders one VRRP instance per group the member is in: state
BACKUP with the group's priority (the first member highest, 150, then 140,
...), unicast advertisements to the other members of the group, VRRP version 3,
preempt_delay 30.

The interface of each network is --interface NETWORK=IF; when rendering for
this host (--member omitted or equal to --self) the interface holding the
member's address is found by itself; else the network's mgtifname.
--check runs keepalived -t on the result (it checks the interfaces exist here).`

const gatewayKeepalivedExample = `  mnpool site set vrrp.mgmt.members=sn1,sn2,mn1 vrrp.mgmt.vips=10.0.255.254
  mnpool gateway keepalived
  mnpool gateway keepalived --member sn2 --interface mgmt=eth0
  mnpool gateway keepalived --check --output /etc/keepalived/keepalived.conf`

// keepalivedFlags are the flags of mnpool gateway keepalived.
type keepalivedFlags struct {
	member, output string
	ifaces         []string
	check          bool
}

func newGatewayKeepalivedCmd(g *globals) *cobra.Command {
	var f keepalivedFlags
	cmd := &cobra.Command{
		Use:     "keepalived [--member NAME] [--interface NETWORK=IF]...",
		Short:   "Print the keepalived.conf of a member that forwards traffic",
		Long:    gatewayKeepalivedLong,
		Example: gatewayKeepalivedExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutputFlag(cmd, "output"); err != nil {
				return err
			}
			return runGatewayKeepalived(cmd.Context(), g, &f)
		},
	}
	cmd.Flags().StringVar(&f.member, "member", "", "the member to render for (default: --self)")
	cmd.Flags().StringArrayVar(&f.ifaces, "interface", nil, "NETWORK=IF: the member's interface on a network (repeat)")
	cmd.Flags().StringVar(&f.output, "output", "", "write the file here instead of printing it")
	cmd.Flags().BoolVar(&f.check, "check", false, "check the result with keepalived -t first")
	g.addJSON(cmd)
	return cmd
}

// runGatewayKeepalived renders (and checks) the member's keepalived.conf,
// then writes or prints it.
func runGatewayKeepalived(ctx context.Context, g *globals, f *keepalivedFlags) error {
	member := f.member
	if member == "" {
		member = g.selfName()
	}
	given, err := parseKV(f.ifaces, "--interface")
	if err != nil {
		return err
	}
	st, err := g.loadState(ctx)
	if err != nil {
		return err
	}
	ifs, err := keepalivedInterfaces(g, st, member, given)
	if err != nil {
		return err
	}
	c, err := gateway.Keepalived(st, member, gateway.KeepalivedOptions{Interfaces: ifs})
	if err != nil {
		return err
	}
	data, err := c.Render()
	if err != nil {
		return err
	}
	if f.check {
		if err := gateway.CheckConfig(ctx, "", data); err != nil {
			return err
		}
	}
	if f.output != "" {
		return g.writeFile(f.output, data)
	}
	if g.json {
		return printJSON(g.io.Out, c)
	}
	_, err = g.io.Out.Write(data)
	return err
}

// keepalivedInterfaces returns member's interface per network: found
// from the local addresses when member is this host, then the
// --interface NETWORK=IF flags (given) over them.
func keepalivedInterfaces(g *globals, st *pool.State, member string, given map[string]string) (map[string]string, error) {
	m, ok := st.Member(member)
	if !ok {
		return nil, fmt.Errorf("%w: member %q", gateway.ErrNotFound, member)
	}
	out := map[string]string{}
	if member == g.selfName() {
		local, err := gateway.LocalInterfaces()
		if err != nil {
			return nil, err
		}
		for nw, a := range m.Addresses {
			if ifc, ok := local[a]; ok {
				out[nw] = ifc
			}
		}
	}
	for nw, ifc := range given {
		if _, ok := st.Network(nw); !ok {
			return nil, usagef("--interface %s=%s: no network %q", nw, ifc, nw)
		}
		out[nw] = ifc
	}
	return out, nil
}

func newGatewayListCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List each network's gateways and VRRP group, and warn when the way out is the MN alone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.loadState(cmd.Context())
			if err != nil {
				return err
			}
			rows, warnings := gatewayRows(st)
			if g.json {
				var ws []string
				for _, w := range warnings {
					ws = append(ws, w.Error())
				}
				return printJSON(g.io.Out, map[string]any{"networks": rows, "warnings": ws})
			}
			if err := printGatewayRows(g, rows); err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintf(g.io.Err, "warning: %v\n", w)
			}
			return nil
		},
	}
	g.addJSON(cmd)
	return cmd
}

// gatewayRow is one network of mnpool gateway list.
type gatewayRow struct {
	Network  string         `json:"network"`
	Gateways []netip.Addr   `json:"gateways"`
	VRRP     *gateway.Group `json:"vrrp,omitempty"`
}

// gatewayRows pairs each network with its VRRP group, and returns the
// pool's gateway warnings.
func gatewayRows(st *pool.State) ([]gatewayRow, []error) {
	groups, _ := gateway.Groups(st) // an error is among the warnings
	byNet := map[string]gateway.Group{}
	for _, gr := range groups {
		byNet[gr.Network] = gr
	}
	var rows []gatewayRow
	for _, nw := range st.Networks {
		r := gatewayRow{Network: nw.Name, Gateways: nw.Gateways}
		if gr, ok := byNet[nw.Name]; ok {
			r.VRRP = &gr
		}
		rows = append(rows, r)
	}
	return rows, gateway.Warnings(st)
}

func printGatewayRows(g *globals, rows []gatewayRow) error {
	t := newTable(g.io.Out, "network", "gateways", "vrrp members", "vips", "vrid")
	for _, r := range rows {
		var gws []string
		for _, a := range r.Gateways {
			gws = append(gws, a.String())
		}
		if r.VRRP == nil {
			t.row(r.Network, strings.Join(gws, ","), "", "", "")
			continue
		}
		var vips []string
		for _, a := range r.VRRP.VIPs {
			vips = append(vips, a.String())
		}
		t.row(r.Network, strings.Join(gws, ","), strings.Join(r.VRRP.Members, ","), strings.Join(vips, ","), fmt.Sprint(r.VRRP.VRID))
	}
	return t.flush()
}
