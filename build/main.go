// Command build makes what `make install` and `make packages` ship that
// the Go toolchain does not: man pages and shell completion files
// generated from the cobra commands, and the .deb and .rpm packages
// (with nfpm, as a library). It lives in its own module so that nfpm and
// its dependencies never reach programs that embed mnpool.
//
//	go run . man DIR                     section 1 pages, gzipped
//	go run . completion DIR              DIR/{bash,zsh,fish}/...
//	go run . package -stage DIR -out DIR -version V [-arch amd64] [-formats deb,rpm]
//
// The Makefile calls it; run `make packages` rather than this directly.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/internal/cli"
)

// programs are the five mnpool programs, each a cobra command tree.
func programs() []*cobra.Command {
	io := cli.IO{In: strings.NewReader(""), Out: os.Stdout, Err: os.Stderr}
	return []*cobra.Command{cli.NewMnpool(io), cli.NewSnmove(io), cli.NewMakedhcp(io), cli.NewMakemn(io), cli.NewMnpoold(io)}
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		var ue usageErr
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageErr struct{ error }

func run(args []string) error {
	if len(args) == 0 {
		return usageErr{errors.New("usage: build man DIR | completion DIR | package -stage DIR -out DIR -version V")}
	}
	switch args[0] {
	case "man":
		if len(args) != 2 {
			return usageErr{errors.New("usage: build man DIR")}
		}
		return genMan(args[1], programs())
	case "completion":
		if len(args) != 2 {
			return usageErr{errors.New("usage: build completion DIR")}
		}
		return genCompletion(args[1], programs())
	case "package":
		fs := flag.NewFlagSet("package", flag.ContinueOnError)
		var o pkgOptions
		fs.StringVar(&o.stage, "stage", "", "tree made by `make install DESTDIR=... PREFIX=/usr`")
		fs.StringVar(&o.out, "out", "dist", "directory for the packages")
		fs.StringVar(&o.version, "version", "", "version (a git describe string or a tag)")
		fs.StringVar(&o.arch, "arch", "amd64", "GOARCH the programs were built for")
		fs.StringVar(&o.formats, "formats", "deb,rpm", "package formats")
		if err := fs.Parse(args[1:]); err != nil {
			return usageErr{err}
		}
		if o.stage == "" || o.version == "" || fs.NArg() != 0 {
			return usageErr{errors.New("package needs -stage DIR and -version V")}
		}
		return buildPackages(o)
	}
	return usageErr{fmt.Errorf("unknown command %q: want man, completion or package", args[0])}
}
