package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/ntp"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func newNTPCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ntp",
		Short: "Time: chrony.conf for nodes and members, clock checks",
	}
	cmd.AddCommand(newNTPChronyCmd(g), newNTPCheckCmd(g))
	return cmd
}

func newNTPChronyCmd(g *globals) *cobra.Command {
	var member, output string
	var check bool
	cmd := &cobra.Command{
		Use:   "chrony NODERANGE | --member NAME",
		Short: "Print the chrony.conf of compute nodes or of a pool member",
		Long: `For a compute node: a server line (iburst) for each of its servicenodes that
runs ntp, in the order of its servicenode list.

For a member (--member): the site's external servers (site.extntpservers) when
set, then the MN and two more members (three other members on the MN), so a
member never depends on one source; "local stratum 10 orphan" so that the pool
keeps one time when cut off from the external servers; and "allow" for the
networks the member serves.

--check parses the result with chronyd -p first (package chrony). --output
writes the file atomically (the old one kept as FILE.bak).`,
		Example: `  mnpool ntp chrony cn001
  mnpool ntp chrony --member sn1 --check --output /etc/chrony/chrony.conf
  mnpool site set extntpservers=ntp1.example.org,ntp2.example.org`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFlag(cmd, "output"); err != nil {
				return err
			}
			var checker func(context.Context, []byte) error
			if check {
				checker = func(ctx context.Context, data []byte) error { return ntp.CheckConfig(ctx, "", data) }
			}
			return g.renderFor(cmd.Context(), args, member, output,
				func(st *pool.State, n pool.Node) (any, []byte, error) {
					c, err := ntp.NodeConf(st, n)
					return renderConf(c, err)
				},
				func(st *pool.State, m string) (any, []byte, error) {
					c, err := ntp.MemberConf(st, m, ntp.MemberOptions{})
					return renderConf(c, err)
				}, checker)
		},
	}
	cmd.Flags().StringVar(&member, "member", "", "render for this pool member instead of nodes")
	cmd.Flags().StringVar(&output, "output", "", "write the file here instead of printing it (one target)")
	cmd.Flags().BoolVar(&check, "check", false, "parse the result with chronyd -p before printing or writing")
	g.addJSON(cmd)
	return cmd
}

func newNTPCheckCmd(g *globals) *cobra.Command {
	var servers []string
	var external bool
	var timeout, maxSkew time.Duration
	cmd := &cobra.Command{
		Use:   "check [--server HOST[:PORT]]...",
		Short: "Ask the members' NTP servers for the time and warn about clock skew",
		Long: `check asks every member that runs ntp (by the address this member reaches it
by) for the time, once, in parallel, and prints each one's stratum, offset from
the local clock, round trip and reference. It then compares the members' clocks
with each other (all measured against this host's clock in the same round) and
warns when two differ by more than --max-skew beyond the measurement error.

The exit status is 1 when a server gives no usable time (no answer,
kiss-of-death, unsynchronized) or the skew is too large.`,
		Example: `  mnpool ntp check
  mnpool ntp check --external --max-skew 10ms
  mnpool ntp check --server 10.0.0.2 --server ntp1.example.org --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			names, addrs, err := ntpCheckTargets(ctx, g, servers, external)
			if err != nil {
				return err
			}
			if len(addrs) == 0 {
				return fmt.Errorf("%w: no member runs ntp; give --server", ntp.ErrNoServers)
			}
			res, err := ntp.Check(ctx, addrs, ntp.CheckOptions{Timeout: timeout})
			if err != nil {
				return err
			}
			named := make([]ntp.Result, len(res))
			for i, r := range res {
				named[i] = r
				if names[i] != r.Server {
					named[i].Server = names[i] + " (" + r.Server + ")"
				}
			}
			a := ntp.Assess(named, maxSkew)
			if err := printNTPCheck(g, named, a); err != nil {
				return err
			}
			if len(a.Warnings) > 0 {
				return fmt.Errorf("%d warnings", len(a.Warnings))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&servers, "server", nil, "check this server instead of the members (repeat for several)")
	cmd.Flags().BoolVar(&external, "external", false, "also check site.extntpservers")
	cmd.Flags().DurationVar(&timeout, "timeout", ntp.DefaultCheckTimeout, "wait this long for each server")
	cmd.Flags().DurationVar(&maxSkew, "max-skew", ntp.DefaultMaxSkew, "largest allowed difference between two clocks")
	g.addJSON(cmd)
	return cmd
}

// ntpCheckTargets returns the servers ntp check asks, each with the name
// it is shown by: --server when given, else the members that run ntp (by
// the address this member reaches them by), and with --external
// site.extntpservers.
func ntpCheckTargets(ctx context.Context, g *globals, servers []string, external bool) (names, addrs []string, err error) {
	if len(servers) > 0 {
		return servers, servers, nil
	}
	st, err := g.loadState(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range ntp.MemberTargets(st, g.selfName()) {
		names, addrs = append(names, t.Member), append(addrs, t.Addr)
	}
	if external {
		ext, err := ntp.ParseExtServers(st.Site[siteschema.ExtNTPServers])
		if err != nil {
			return nil, nil, err
		}
		names, addrs = append(names, ext...), append(addrs, ext...)
	}
	return names, addrs, nil
}

// printNTPCheck prints the results of ntp check and the assessment's
// warnings (as JSON with --json).
func printNTPCheck(g *globals, named []ntp.Result, a ntp.Assessment) error {
	if g.json {
		var warnings []string
		for _, w := range a.Warnings {
			warnings = append(warnings, w.String())
		}
		type out struct {
			Results  []ntp.Result `json:"results"`
			Spread   float64      `json:"spread_s"`
			Warnings []string     `json:"warnings"`
		}
		return printJSON(g.io.Out, out{named, a.Spread.Seconds(), warnings})
	}
	t := newTable(g.io.Out, "server", "stratum", "offset", "rtt", "refid", "status")
	for _, r := range named {
		status := "ok"
		if r.Err != nil {
			status = r.Err.Error()
		}
		if r.Err != nil && r.Stratum == 0 && r.KissCode == "" {
			t.row(r.Server, "", "", "", "", status)
			continue
		}
		t.row(r.Server, strconv.Itoa(int(r.Stratum)), r.Offset.Round(time.Microsecond).String(), r.RTT.Round(time.Microsecond).String(), r.RefID, status)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if a.Answered >= 2 {
		fmt.Fprintf(g.io.Out, "spread %v (±%v) between %s and %s\n", a.Spread.Round(time.Microsecond), a.Uncertainty.Round(time.Microsecond), a.Earliest, a.Latest)
	}
	for _, w := range a.Warnings {
		fmt.Fprintf(g.io.Err, "warning: %s\n", w)
	}
	return nil
}
