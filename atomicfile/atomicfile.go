// Package atomicfile is the one way mnpool (and programs that embed its
// packages) replaces a file on disk: a reader sees the old content or the
// new one, never a mix, and a crash leaves one of the two.
//
// Write never reads or writes through a symbolic link: a path whose last
// component is a symlink is refused with ErrSymlink (give the real path),
// so `ln -s /etc/shadow x.conf` cannot make a write or a backup of x.conf
// touch or copy /etc/shadow. Directories, devices and FIFOs are refused too.
//
// The new file keeps the old file's permission bits and owner (unless
// Options.ForceMode or Options.Private say otherwise); a new file gets
// Options.Mode and the caller's owner. The backup (Options.Backup) is the
// old file itself, hard-linked under the backup name before the new file
// is renamed into place, so it keeps the old mode, owner and content
// without being read. Where a hard link is not allowed, the old file is
// copied through a descriptor opened with O_NOFOLLOW, mode and owner
// included.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Errors, matched with errors.Is.
var (
	// ErrEmptyPath: the path is empty.
	ErrEmptyPath = errors.New("atomicfile: empty path")
	// ErrDirectory: the path is (or ends in "/" like) a directory.
	ErrDirectory = errors.New("atomicfile: path is a directory")
	// ErrSymlink: the path is a symbolic link, which Write does not follow.
	ErrSymlink = errors.New("atomicfile: path is a symbolic link")
	// ErrNotRegular: the path is a device, FIFO or socket.
	ErrNotRegular = errors.New("atomicfile: not a regular file")
)

// DefaultMode is the mode of a new file when Options.Mode is zero.
const DefaultMode fs.FileMode = 0o644

// PrivateMode is the mode of a file written with Options.Private.
const PrivateMode fs.FileMode = 0o600

// Options tune Write. The zero value writes a new file 0644, keeps an
// existing file's mode and owner, and keeps no backup.
type Options struct {
	// Mode of a new file (default DefaultMode). An existing file keeps
	// its own permission bits unless ForceMode is set.
	Mode fs.FileMode
	// ForceMode gives the file Mode even when it exists (the owner is
	// still kept).
	ForceMode bool
	// Private marks a file that holds a secret (a private key, a
	// password, a TSIG key): it is PrivateMode (0600), whatever Mode says
	// or the old file had, and so is its backup.
	Private bool
	// Backup, when set, keeps the previous file as path+Backup (for
	// example ".bak") when Write replaces it.
	Backup string
	// SkipUnchanged leaves the file alone (no write, no backup) when its
	// content is already data and its mode already the one Write would
	// give it; Write then reports changed=false.
	SkipUnchanged bool
}

// CheckPath returns an error wrapping ErrEmptyPath, ErrDirectory,
// ErrSymlink or ErrNotRegular when Write would refuse path; a path that
// does not exist yet is fine.
func CheckPath(path string) error {
	_, err := check(path)
	return err
}

// check validates path and returns the existing file's lstat (nil when
// there is none).
func check(path string) (fs.FileInfo, error) {
	switch {
	case path == "":
		return nil, ErrEmptyPath
	case strings.HasSuffix(path, "/"):
		return nil, fmt.Errorf("%w: %s", ErrDirectory, path)
	}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("atomicfile: %w", err)
	case st.IsDir():
		return nil, fmt.Errorf("%w: %s", ErrDirectory, path)
	case st.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%w: %s (refusing to write through it; give the file it points to)", ErrSymlink, path)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s is %v", ErrNotRegular, path, st.Mode().Type())
	}
	return st, nil
}

// ReadFile reads path without following a symbolic link: it fails with
// ErrSymlink on a link and ErrNotRegular on anything but a regular file,
// and otherwise behaves like os.ReadFile (fs.ErrNotExist included).
func ReadFile(path string) ([]byte, error) {
	if path == "" {
		return nil, ErrEmptyPath
	}
	f, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// openNoFollow opens a regular file for reading, refusing a symlink.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%w: %s", ErrSymlink, path)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrDirectory, path)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is %v", ErrNotRegular, path, st.Mode().Type())
	}
	return f, nil
}

// Write replaces path with data: it writes a temporary file in the same
// directory (created 0600, given its final mode and owner before any byte
// is written), fsyncs it, links the old file to the backup name, renames
// the temporary file over path and fsyncs the directory. See the package
// documentation for symlinks, modes, owners and backups.
func Write(path string, data []byte, o Options) (changed bool, err error) {
	old, err := check(path)
	if err != nil {
		return false, err
	}
	mode, uid, gid := target(old, o)
	if o.SkipUnchanged && old != nil && old.Mode().Perm() == mode.Perm() {
		if cur, err := ReadFile(path); err == nil && bytes.Equal(cur, data) {
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
	if err = prepare(tmp, data, mode, uid, gid); err != nil {
		tmp.Close()
		return false, fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return false, fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if o.Backup != "" && old != nil {
		if err = backup(path, path+o.Backup, o.Private); err != nil {
			return false, err
		}
	}
	if err = os.Rename(name, path); err != nil {
		return false, fmt.Errorf("atomicfile: %w", err)
	}
	if err := SyncDir(dir); err != nil {
		return true, fmt.Errorf("atomicfile: %w", err)
	}
	return true, nil
}

// target is the new file's mode and owner (-1: leave as created).
func target(old fs.FileInfo, o Options) (mode fs.FileMode, uid, gid int) {
	mode, uid, gid = o.Mode, -1, -1
	if mode == 0 {
		mode = DefaultMode
	}
	if old != nil {
		if !o.ForceMode {
			mode = old.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		}
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if o.Private {
		mode = PrivateMode
	}
	return mode, uid, gid
}

// prepare gives the temporary file its owner and mode, then its content.
func prepare(f *os.File, data []byte, mode fs.FileMode, uid, gid int) error {
	if uid >= 0 {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if s, ok := st.Sys().(*syscall.Stat_t); ok && (int(s.Uid) != uid || int(s.Gid) != gid) {
			if err := f.Chown(uid, gid); err != nil {
				return fmt.Errorf("keeping owner %d:%d: %w", uid, gid, err)
			}
		}
	}
	// After Chown, which clears set-id bits.
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// backup makes bak the old file at path: a hard link (same inode: mode,
// owner and content kept, nothing read), else a copy through an
// O_NOFOLLOW descriptor. A symlink or file already at bak is replaced,
// never followed.
func backup(path, bak string, private bool) error {
	dir := filepath.Dir(bak)
	tmp := filepath.Join(dir, "."+filepath.Base(bak)+".tmp-link")
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		if err := copyFile(path, tmp); err != nil {
			return fmt.Errorf("atomicfile: backing up %s: %w", path, err)
		}
	}
	if private {
		if err := chmodNoFollow(tmp, PrivateMode); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("atomicfile: backing up %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, bak); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: backing up %s: %w", path, err)
	}
	return nil
}

// copyFile copies the regular file src (not followed if a symlink) to a
// new file dst with src's mode and owner.
func copyFile(src, dst string) (err error) {
	in, err := openNoFollow(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := out.Chown(int(s.Uid), int(s.Gid)); err != nil && os.Geteuid() == 0 {
			return err
		}
	}
	if err := out.Chmod(st.Mode().Perm()); err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

func chmodNoFollow(path string, mode fs.FileMode) error {
	f, err := openNoFollow(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(mode)
}

// SyncDir makes a rename or removal in dir durable. A file system that
// cannot sync a directory (EINVAL) is not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
