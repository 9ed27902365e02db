package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/internal/buildinfo"
)

// version is the one-line build description every program prints for
// --version: tag, commit, dirty, Go version.
func version() string {
	return buildinfo.Get().String()
}

func newVersionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version this mnpool was built from",
		Long: `version prints the release tag (or git describe string), the commit and
whether the work tree had uncommitted changes when this binary was built,
and the Go version. The same information is in --version of every mnpool
program and in mnpoold's mnpool_build_info metric. Give the output when you
report a problem.`,
		Example: "  mnpool version\n  mnpool version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := buildinfo.Get()
			if g.json {
				return printJSON(g.io.Out, in)
			}
			dirty := "no"
			if in.Dirty {
				dirty = "yes"
			}
			commit := in.Commit
			if commit == "" {
				commit = "unknown"
			}
			_, err := fmt.Fprintf(g.io.Out, "version: %s\ncommit:  %s\ndirty:   %s\ngo:      %s\n", in.Version, commit, dirty, in.GoVersion)
			if err == nil && in.Date != "" {
				_, err = fmt.Fprintf(g.io.Out, "date:    %s\n", in.Date)
			}
			return err
		},
	}
	g.addJSON(cmd)
	return cmd
}
