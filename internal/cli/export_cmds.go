package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/xcat"
)

func newExportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export DIR",
		Short: "Write the pool as xCAT tabdump files (a backup import-xcat reads back)",
		Long: `export writes the pool into DIR as the CSV files xCAT's tabdump writes:
site.csv, networks.csv, nodelist.csv, noderes.csv, servicenode.csv, mac.csv and
hosts.csv, plus mnpool_members.csv (each member's services, addresses and
disabled flag) and mnpool_nodes.csv (each node's network and whether its
servicenode list was set by hand), which xCAT's tables cannot hold. Rows are
sorted: the same pool gives the same bytes, so two exports can be compared with
diff. Each file is replaced atomically (mode 0640: the files hold every node's
address and MAC).

Restore into a new pool with mnpool import-xcat DIR, or into this pool with
mnpool import-xcat DIR --merge. Runtime state (epoch, heartbeats, locks,
console leases, the audit log) is not exported.`,
		Example: `  mnpool export /var/backups/mnpool/$(date +%F)
  diff -r /var/backups/mnpool/2026-12-05 /var/backups/mnpool/2026-12-06`,
		Args: cobra.ExactArgs(1),
		RunE: g.withStore(func(cmd *cobra.Command, args []string, s *pool.Store) error {
			names, err := xcat.Export(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, names)
			}
			for _, n := range names {
				fmt.Fprintln(g.io.Out, filepath.Join(args[0], n))
			}
			return nil
		}),
	}
	g.addJSON(cmd)
	return cmd
}
