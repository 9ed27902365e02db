package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
)

type program func(context.Context, []string, cli.IO) int

func runProgram(main program, args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := main(context.Background(), args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, errb.String()
}

// Every program answers a wrong command line with 2, an operation that
// fails with 1: unknown flags, values that do not parse and names that
// are not in the pool alike.
func TestExitCodesAreTheSameEverywhere(t *testing.T) {
	db := newPool(t)
	mustRun(t, db, "node", "add", "cn1", "--ip", "10.0.1.1", "--servicenodes", "sn1,sn2")
	cases := []struct {
		name    string
		main    program
		args    []string
		code    int
		mention string
	}{
		{"mnpool unknown flag", cli.Mnpool, []string{"node", "list", "--nope"}, cli.ExitUsage, "--nope"},
		{"mnpool extra argument", cli.Mnpool, []string{"status", "x", "y", "z"}, cli.ExitUsage, ""},
		{"mnpool bad IP", cli.Mnpool, []string{"node", "add", "cn2", "--ip", "10.0.1.x"}, cli.ExitUsage, "10.0.1.x"},
		{"mnpool unknown network", cli.Mnpool, []string{"member", "add", "sn3", "--ip", "nosuch=10.0.0.9"}, cli.ExitUsage, "nosuch"},
		{"mnpool unknown member", cli.Mnpool, []string{"member", "set", "sn9", "--services", "dns"}, cli.ExitUsage, "sn9"},
		{"mnpool unknown network remove", cli.Mnpool, []string{"network", "remove", "nosuch"}, cli.ExitUsage, "nosuch"},
		{"mnpool unknown member for ntp", cli.Mnpool, []string{"ntp", "chrony", "--member", "sn9"}, cli.ExitUsage, "sn9"},
		{"mnpool unknown zone", cli.Mnpool, []string{"dns", "zone", "nosuch.example"}, cli.ExitUsage, "nosuch.example"},
		{"mnpool unknown node for console", cli.Mnpool, []string{"console", "list", "cn999"}, cli.ExitUsage, "cn999"},
		{"mnpool operation fails", cli.Mnpool, []string{"member", "remove", "mn1"}, cli.ExitFailed, "makemn"},
		{"mnpool no database", cli.Mnpool, []string{"status", "--db", "sqlite:/nonexistent/pool.db"}, cli.ExitFailed, "mnpool init"},
		{"snmove unknown flag", cli.Snmove, []string{"--nope"}, cli.ExitUsage, "--nope"},
		{"snmove bad -D", cli.Snmove, []string{"cn1", "-d", "sn2", "-D", "10.0.0.x"}, cli.ExitUsage, "10.0.0.x"},
		{"snmove unknown dest", cli.Snmove, []string{"cn1", "-d", "sn9", "-i"}, cli.ExitUsage, "sn9"},
		{"makedhcp unknown node", cli.Makedhcp, []string{"--self", "sn1", "--check", "--out", "/nonexistent/dhcpd.conf", "cn9"}, cli.ExitUsage, "cn9"},
		{"makedhcp unknown flag", cli.Makedhcp, []string{"--nope"}, cli.ExitUsage, "--nope"},
		{"makemn unknown flag", cli.Makemn, []string{"--nope"}, cli.ExitUsage, "--nope"},
		{"mnpoold bad log level", cli.Mnpoold, []string{"--self", "sn1", "--log-level", "loud"}, cli.ExitUsage, "loud"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if !strings.Contains(strings.Join(args, " "), "--db") {
				args = append([]string{"--db", db}, args...)
			}
			code, errs := runProgram(c.main, args...)
			require.Equal(t, c.code, code, errs)
			require.Contains(t, errs, c.mention)
		})
	}
}

// A command that acts as a member refuses to run as a host that is not
// one, naming the host and --self; read-only commands still work, and
// what such a host changes is audited without a member.
func TestNotAMember(t *testing.T) {
	db := newPool(t)
	acting := []struct {
		name string
		main program
		args []string
	}{
		{"makedhcp", cli.Makedhcp, []string{"-n", "--check", "--out", "/nonexistent/dhcpd.conf"}},
		{"makemn", cli.Makemn, nil},
		{"mnpoold", cli.Mnpoold, []string{"--metrics-addr", ""}},
		{"sync", cli.Mnpool, []string{"sync"}},
		{"heartbeat", cli.Mnpool, []string{"heartbeat", "--count", "1"}},
		{"console serve", cli.Mnpool, []string{"console", "serve"}},
		{"dns serve", cli.Mnpool, []string{"dns", "serve", "--listen", "127.0.0.1:0"}},
	}
	for _, c := range acting {
		t.Run(c.name, func(t *testing.T) {
			code, errs := runProgram(c.main, append([]string{"--db", db, "--self", "ws1"}, c.args...)...)
			require.Equal(t, cli.ExitUsage, code, errs)
			require.Contains(t, errs, "ws1 is not a member of the pool")
			require.Contains(t, errs, "--self")
			require.Contains(t, errs, "mn1, sn1, sn2")
		})
	}
	t.Setenv(cli.EnvSelf, "ws2")
	code, errs := runProgram(cli.Mnpool, "--db", db, "sync")
	require.Equal(t, cli.ExitUsage, code)
	require.Contains(t, errs, "ws2 is not a member of the pool (the name is from $MNPOOL_SELF")

	require.Contains(t, mustRun(t, db, "--self", "ws1", "status"), "mn1")
	mustRun(t, db, "--self", "ws1", "node", "add", "cn1", "--ip", "10.0.1.1")
	mustRun(t, db, "--self", "sn1", "node", "add", "cn2", "--ip", "10.0.1.2")
	var log []struct{ Member, Actor, Action, Target string }
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "audit", "--json")), &log))
	got := map[string][2]string{}
	for _, e := range log {
		got[e.Action+" "+e.Target] = [2]string{e.Member, e.Actor}
	}
	require.Equal(t, "", got["node.add cn1"][0], "a non-member is not audited as a member")
	require.True(t, strings.HasSuffix(got["node.add cn1"][1], "@ws1"), "actor %q names the host", got["node.add cn1"][1])
	require.Equal(t, "sn1", got["node.add cn2"][0])
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	code := cli.Mnpool(context.Background(), []string{"version", "--json"}, cli.IO{In: strings.NewReader(""), Out: &out, Err: &out})
	require.Equal(t, 0, code, out.String())
	var v struct{ Version, Commit, Go string }
	require.NoError(t, json.Unmarshal(out.Bytes(), &v))
	require.NotEmpty(t, v.Version)
	require.True(t, strings.HasPrefix(v.Go, "go"), v.Go)
	for _, main := range []program{cli.Mnpool, cli.Snmove, cli.Makedhcp, cli.Makemn, cli.Mnpoold} {
		out.Reset()
		require.Equal(t, 0, main(context.Background(), []string{"--version"}, cli.IO{In: strings.NewReader(""), Out: &out, Err: &out}))
		require.Contains(t, out.String(), "version "+v.Version)
	}
}
