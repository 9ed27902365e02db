// Package buildinfo tells which source a binary was built from: the
// release tag, the commit and whether the work tree had uncommitted
// changes. The Makefile sets them with
//
//	go build -ldflags "-X github.com/mnpool/mnpool/internal/buildinfo.version=v1.2.0
//	    -X github.com/mnpool/mnpool/internal/buildinfo.commit=0123abcd...
//	    -X github.com/mnpool/mnpool/internal/buildinfo.dirty=false"
//
// Without them (go install, go run, a program that embeds the library)
// the Go toolchain's build information is used: the module version and,
// when the build stamped it, vcs.revision and vcs.modified.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Module is the module path of mnpool.
const Module = "github.com/mnpool/mnpool"

// Set by the linker (-X); empty when not.
var (
	version string
	commit  string
	dirty   string
	date    string
)

// Info describes one build.
type Info struct {
	// Version is the release tag (v1.2.0), a `git describe` string
	// (v1.2.0-3-g0123abc), or "(devel)" when unknown.
	Version string `json:"version"`
	// Commit is the full commit hash, "" when unknown.
	Commit string `json:"commit"`
	// Dirty is true when the work tree had uncommitted changes.
	Dirty bool `json:"dirty"`
	// Date is the build or commit time (RFC 3339), "" when unknown.
	Date string `json:"date,omitempty"`
	// GoVersion is the Go toolchain the binary was built with.
	GoVersion string `json:"go"`
}

// Get returns the build information of the running binary.
func Get() Info {
	in := Info{Version: version, Commit: commit, Dirty: dirty == "true", Date: date, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return finish(in)
	}
	if in.Version == "" {
		in.Version = moduleVersion(bi)
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if in.Commit == "" {
				in.Commit = s.Value
			}
		case "vcs.modified":
			if dirty == "" {
				in.Dirty = s.Value == "true"
			}
		case "vcs.time":
			if in.Date == "" {
				in.Date = s.Value
			}
		}
	}
	return finish(in)
}

// moduleVersion is mnpool's module version: the main module's when the
// binary is one of ours, the dependency's when a program embeds mnpool.
func moduleVersion(bi *debug.BuildInfo) string {
	if bi.Main.Path == Module {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == Module {
			if d.Replace != nil && d.Replace.Version != "" {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}

func finish(in Info) Info {
	if in.Version == "" {
		in.Version = "(devel)"
	}
	return in
}

// ShortCommit is the first 12 characters of the commit.
func (i Info) ShortCommit() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// String is the one-line form --version prints:
// "v1.2.0 (commit 0123456789ab, dirty, go1.26.8)".
func (i Info) String() string {
	s := i.Version + " ("
	if i.Commit != "" {
		s += "commit " + i.ShortCommit() + ", "
	} else {
		s += "commit unknown, "
	}
	if i.Dirty {
		s += "dirty, "
	}
	return s + i.GoVersion + ")"
}
