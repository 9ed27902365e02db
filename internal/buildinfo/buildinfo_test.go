package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestString(t *testing.T) {
	in := Info{Version: "v1.2.0", Commit: "0123456789abcdef0123", Dirty: true, GoVersion: "go1.26.8"}
	require.Equal(t, "v1.2.0 (commit 0123456789ab, dirty, go1.26.8)", in.String())
	in = Info{Version: "(devel)", GoVersion: "go1.26.8"}
	require.Equal(t, "(devel) (commit unknown, go1.26.8)", in.String())
}

func TestModuleVersion(t *testing.T) {
	own := &debug.BuildInfo{Main: debug.Module{Path: Module, Version: "v1.0.0"}}
	require.Equal(t, "v1.0.0", moduleVersion(own))
	embed := &debug.BuildInfo{Main: debug.Module{Path: "example.com/tool", Version: "v9.9.9"},
		Deps: []*debug.Module{{Path: "other", Version: "v2.0.0"}, {Path: Module, Version: "v1.3.0"}}}
	require.Equal(t, "v1.3.0", moduleVersion(embed))
	require.Equal(t, "", moduleVersion(&debug.BuildInfo{Main: debug.Module{Path: "x"}}))
}

func TestGetNeverEmpty(t *testing.T) {
	in := Get()
	require.NotEmpty(t, in.Version)
	require.NotEmpty(t, in.GoVersion)
}
