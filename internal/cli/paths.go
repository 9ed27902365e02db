package cli

import (
	"os"
	"path/filepath"

	"github.com/mnpool/mnpool/console"
)

// mnpoolProgram is the path of the mnpool program that other programs
// (conserver's exec consoles) should run: this very binary when it is an
// installed mnpool (/usr/bin/mnpool from the package, PREFIX/bin/mnpool
// from `make install`), so the path written into conserver.cf always
// agrees with the one in the systemd units; else console.DefaultProgram.
func mnpoolProgram() string {
	exe, err := os.Executable()
	if err != nil || filepath.Base(exe) != "mnpool" {
		return console.DefaultProgram
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil && filepath.Base(p) == "mnpool" {
		exe = p
	}
	return exe
}
