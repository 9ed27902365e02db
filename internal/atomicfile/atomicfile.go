// Package atomicfile forwards to github.com/mnpool/mnpool/atomicfile, the
// one atomic writer, so that code written against the old internal path
// keeps building. New code imports the public package.
package atomicfile

import "github.com/mnpool/mnpool/atomicfile"

// Options is atomicfile.Options.
type Options = atomicfile.Options

// Write is atomicfile.Write.
func Write(path string, data []byte, o Options) (bool, error) { return atomicfile.Write(path, data, o) }
