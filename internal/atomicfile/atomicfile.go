// Package atomicfile writes files so that a reader sees the old content or
// the new one, never a mix, and a crash leaves one of the two on disk.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Options tune Write.
type Options struct {
	// Mode of the new file (default 0644).
	Mode fs.FileMode
	// Backup, when set, keeps the previous content as path+Backup (for
	// example ".bak") before the new file replaces it.
	Backup string
	// SkipUnchanged leaves the file alone (no write, no backup) when its
	// content is already data; Write then reports changed=false.
	SkipUnchanged bool
}

// Write replaces path with data: it writes a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory.
func Write(path string, data []byte, o Options) (changed bool, err error) {
	if o.Mode == 0 {
		o.Mode = 0o644
	}
	if o.SkipUnchanged {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return false, nil
		}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("atomicfile: %w", err)
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			os.Remove(name)
		}
	}()
	if err = tmp.Chmod(o.Mode); err != nil {
		tmp.Close()
		return false, fmt.Errorf("atomicfile: %w", err)
	}
	if _, err = tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("atomicfile: syncing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return false, fmt.Errorf("atomicfile: %w", err)
	}
	if o.Backup != "" {
		if old, rerr := os.ReadFile(path); rerr == nil {
			if _, err = Write(path+o.Backup, old, Options{Mode: o.Mode}); err != nil {
				return false, err
			}
		} else if !errors.Is(rerr, fs.ErrNotExist) {
			return false, fmt.Errorf("atomicfile: reading %s for backup: %w", path, rerr)
		}
	}
	if err = os.Rename(name, path); err != nil {
		return false, fmt.Errorf("atomicfile: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return true, nil
}
