package console_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
)

func TestACL(t *testing.T) {
	acl, err := console.ParseACL("user:alice=watch, group:ops=write group:leads=force\t*=watch user:eve=none")
	require.NoError(t, err)
	cases := map[string]struct {
		id   console.Identity
		want console.Perm
	}{
		"user entry wins over groups": {console.Identity{User: "alice", Groups: []string{"leads"}}, console.PermWatch},
		"best group":                  {console.Identity{User: "bob", Groups: []string{"ops", "leads"}}, console.PermForce},
		"one group":                   {console.Identity{User: "carol", Groups: []string{"ops"}}, console.PermWrite},
		"everyone else":               {console.Identity{User: "dave"}, console.PermWatch},
		"denied by name":              {console.Identity{User: "eve", Groups: []string{"ops"}}, console.PermNone},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { require.Equal(t, c.want, acl.Perm(c.id)) })
	}

	unset, err := console.ParseACL("  ")
	require.NoError(t, err)
	require.Equal(t, console.PermForce, unset.Perm(console.Identity{User: "anyone"}), "unset: every authenticated user may force")
	noStar, err := console.ParseACL("user:alice=write")
	require.NoError(t, err)
	require.Equal(t, console.PermNone, noStar.Perm(console.Identity{User: "bob"}), "set without *: nobody else")

	for _, bad := range []string{"alice=write", "user:alice", "user:alice=admin", "user:=watch", "host:x=watch", "user:a b=watch", "group:o;ps=force"} {
		_, err := console.ParseACL(bad)
		require.ErrorIs(t, err, console.ErrInvalid, bad)
		require.Contains(t, err.Error(), console.SiteACL)
	}
}
