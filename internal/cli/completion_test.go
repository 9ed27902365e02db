package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
)

// complete runs the shell completion of a program (what bash, zsh and fish
// call) and returns the offered words.
func complete(t *testing.T, main program, args ...string) []string {
	t.Helper()
	var out, errb bytes.Buffer
	code := main(context.Background(), append([]string{"__complete"}, args...), cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	require.Equal(t, 0, code, errb.String())
	var words []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, ":") {
			words = append(words, l)
		}
	}
	return words
}

func TestCompletionFromThePool(t *testing.T) {
	db := newPool(t)
	mustRun(t, db, "node", "add", "cn001", "--ip", "10.0.1.1", "--groups", "rack1,compute")
	mustRun(t, db, "node", "add", "cn002", "--ip", "10.0.1.2", "--groups", "rack2,compute")
	cases := []struct {
		name string
		main program
		args []string
		want []string
	}{
		{"node list", cli.Mnpool, []string{"node", "list", ""}, []string{"all", "cn001", "cn002", "compute", "rack1", "rack2"}},
		{"noderange list element", cli.Mnpool, []string{"node", "remove", "cn001,ra"}, []string{"cn001,rack1", "cn001,rack2"}},
		{"assign", cli.Mnpool, []string{"assign", "cn00"}, []string{"cn001", "cn002"}},
		{"route", cli.Mnpool, []string{"route", "r"}, []string{"rack1", "rack2"}},
		{"member set", cli.Mnpool, []string{"member", "set", ""}, []string{"mn1", "sn1", "sn2"}},
		{"network remove", cli.Mnpool, []string{"network", "remove", ""}, []string{"mgmt"}},
		{"site set", cli.Mnpool, []string{"site", "set", "d"}, []string{"disjointdhcps=", "domain="}},
		{"member add --ip", cli.Mnpool, []string{"member", "add", "sn3", "--ip", ""}, []string{"mgmt="}},
		{"node add --servicenodes", cli.Mnpool, []string{"node", "add", "cn3", "--servicenodes", "sn1,"}, []string{"sn1,mn1", "sn1,sn1", "sn1,sn2"}},
		{"node add --groups", cli.Mnpool, []string{"node", "add", "cn3", "--groups", "c"}, []string{"compute"}},
		{"--self", cli.Mnpool, []string{"--self", "s"}, []string{"sn1", "sn2"}},
		{"snmove nodes", cli.Snmove, []string{"cn"}, []string{"cn001", "cn002"}},
		{"snmove -d", cli.Snmove, []string{"-d", "s"}, []string{"sn1", "sn2"}},
		{"snmove -s", cli.Snmove, []string{"-s", ""}, []string{"mn1", "sn1", "sn2"}},
		{"makedhcp", cli.Makedhcp, []string{"rack"}, []string{"rack1", "rack2"}},
		{"makemn --self", cli.Makemn, []string{"--self", "sn"}, []string{"sn1", "sn2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--db", db}, c.args...)
			require.Equal(t, c.want, complete(t, c.main, args...))
		})
	}
	// No database: nothing offered, quickly, and nothing created.
	require.Empty(t, complete(t, cli.Mnpool, "--db", "sqlite:"+t.TempDir()+"/none.db", "node", "list", ""))
}
