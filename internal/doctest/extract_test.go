package doctest

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExtract(t *testing.T) {
	md := "# T\n\n```sh\n$ not run\n```\n\n<!-- doctest -->\n```sh\n# a comment\n$ export MNPOOL_DB=sqlite:/var/lib/mnpool/pool.db\n" +
		"$ mnpool network add mgmt 10.0.0.0/16 \\\n    --gateway 10.0.0.254   # the way out\nnetwork mgmt (10.0.0.0/16) saved\n" +
		"$ mnpool node add \"cn 1\"\nmnpool: invalid value...\n[exit 2]\n```\n"
	steps, err := Extract([]byte(md))
	require.NoError(t, err)
	require.Equal(t, []Step{
		{Line: 10, Args: []string{"export", "MNPOOL_DB=sqlite:/var/lib/mnpool/pool.db"}},
		{Line: 12, Args: []string{"mnpool", "network", "add", "mgmt", "10.0.0.0/16", "--gateway", "10.0.0.254"}, Output: []string{"network mgmt (10.0.0.0/16) saved"}},
		{Line: 14, Args: []string{"mnpool", "node", "add", "cn 1"}, Exit: 2, Output: []string{"mnpool: invalid value..."}},
	}, steps)
	s := Script("X.md", steps)
	require.Contains(t, s, "env MNPOOL_DB=sqlite:$WORK/pool.db\n")
	require.Contains(t, s, "doc 0 mnpool network add mgmt 10.0.0.0/16 --gateway 10.0.0.254\nstdout ")
	require.Contains(t, s, "doc 2 mnpool node add 'cn 1'\nstderr '")

	for _, bad := range []string{
		"<!-- doctest -->\n```sh\n$ mnpool node list | wc -l\n```\n",
		"<!-- doctest -->\n```sh\noutput first\n```\n",
		"<!-- doctest -->\n```go\nx\n```\n",
		"<!-- doctest -->\n```sh\n$ mnpool status\n",
	} {
		_, err := Extract([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestLineRegexp(t *testing.T) {
	re := regexp.MustCompile(LineRegexp("MEMBER  ROLE   STATE"))
	require.True(t, re.MatchString("x\nMEMBER    ROLE STATE  \ny"))
	require.False(t, re.MatchString("MEMBER ROLE STATE EXTRA"))
	re = regexp.MustCompile(LineRegexp("mnpool: invalid (value)..."))
	require.True(t, re.MatchString("mnpool: invalid (value) and more"))
	require.False(t, re.MatchString("mnpool: invalid value"))
}
