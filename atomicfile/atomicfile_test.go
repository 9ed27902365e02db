package atomicfile_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/atomicfile"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	require.NoError(t, err)
	return st.Mode()
}

func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	st, err := os.Lstat(path)
	require.NoError(t, err)
	s := st.Sys().(*syscall.Stat_t)
	return s.Uid, s.Gid
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestNewFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.conf")
	changed, err := atomicfile.Write(p, []byte("one\n"), atomicfile.Options{Backup: ".bak"})
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, "one\n", read(t, p))
	require.Equal(t, fs.FileMode(0o644), mode(t, p))
	require.NoFileExists(t, p+".bak", "nothing to back up")

	q := filepath.Join(dir, "key")
	_, err = atomicfile.Write(q, []byte("secret"), atomicfile.Options{Mode: 0o640})
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o640), mode(t, q))

	changed, err = atomicfile.Write(p, []byte("one\n"), atomicfile.Options{Backup: ".bak", SkipUnchanged: true})
	require.NoError(t, err)
	require.False(t, changed)
	require.NoFileExists(t, p+".bak")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary file left behind")
}

// TestSymlinkRefused: `ln -s /etc/shadow evil.conf` must not make a write
// read or replace the target, nor copy it into evil.conf.bak.
func TestSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "shadow")
	require.NoError(t, os.WriteFile(secret, []byte("root:$6$hash\n"), 0o600))
	evil := filepath.Join(dir, "evil.conf")
	require.NoError(t, os.Symlink(secret, evil))

	for _, o := range []atomicfile.Options{{Backup: ".bak"}, {Backup: ".bak", SkipUnchanged: true}, {}} {
		_, err := atomicfile.Write(evil, []byte("new\n"), o)
		require.ErrorIs(t, err, atomicfile.ErrSymlink)
		require.ErrorContains(t, err, evil)
	}
	require.NoFileExists(t, evil+".bak")
	require.Equal(t, "root:$6$hash\n", read(t, secret))
	require.Equal(t, fs.FileMode(0o600), mode(t, secret))
	require.Equal(t, fs.ModeSymlink, mode(t, evil).Type(), "the link itself is left alone")

	_, err := atomicfile.ReadFile(evil)
	require.ErrorIs(t, err, atomicfile.ErrSymlink)
	require.ErrorIs(t, atomicfile.CheckPath(evil), atomicfile.ErrSymlink)
}

// TestBackupSymlinkReplaced: a symlink planted at FILE.bak is replaced by
// the backup, never written through.
func TestBackupSymlinkReplaced(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("victim\n"), 0o600))
	p := filepath.Join(dir, "dhcpd.conf")
	require.NoError(t, os.WriteFile(p, []byte("old\n"), 0o600))
	require.NoError(t, os.Symlink(victim, p+".bak"))

	_, err := atomicfile.Write(p, []byte("new\n"), atomicfile.Options{Backup: ".bak"})
	require.NoError(t, err)
	require.Equal(t, "victim\n", read(t, victim))
	require.True(t, mode(t, p+".bak").IsRegular())
	require.Equal(t, "old\n", read(t, p+".bak"))
	require.Equal(t, "new\n", read(t, p))
}

// TestModeKept: a 0600 file (a dhcpd.conf with a TSIG key) stays 0600,
// and so does its backup.
func TestModeKept(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "dhcpd.conf")
	require.NoError(t, os.WriteFile(p, []byte("key tsig { secret \"abc\"; }\n"), 0o600))
	require.NoError(t, os.Chmod(p, 0o600))
	_, err := atomicfile.Write(p, []byte("new\n"), atomicfile.Options{Mode: 0o644, Backup: ".bak"})
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), mode(t, p))
	require.Equal(t, fs.FileMode(0o600), mode(t, p+".bak"))
	require.Equal(t, "key tsig { secret \"abc\"; }\n", read(t, p+".bak"))

	// ForceMode sets the mode; Private makes it 0600 whatever it was.
	_, err = atomicfile.Write(p, []byte("pub\n"), atomicfile.Options{Mode: 0o644, ForceMode: true})
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o644), mode(t, p))
	_, err = atomicfile.Write(p, []byte("private\n"), atomicfile.Options{Private: true, Backup: ".bak"})
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), mode(t, p))
	require.Equal(t, fs.FileMode(0o600), mode(t, p+".bak"), "the backup of a private file is private too")
	require.Equal(t, "pub\n", read(t, p+".bak"))
}

// TestOwnerKept: a 0640 nobody:nogroup file comes back 0640
// nobody:nogroup, and so does its backup. Needs root (to chown).
func TestOwnerKept(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("MNPOOL_REQUIRE_TOOLS") == "1" {
			t.Fatal("TestOwnerKept needs root (MNPOOL_REQUIRE_TOOLS=1 is set)")
		}
		t.Skip("needs root to chown")
	}
	const nobody, nogroup = 65534, 65534
	dir := t.TempDir()
	p := filepath.Join(dir, "chrony.conf")
	require.NoError(t, os.WriteFile(p, []byte("old\n"), 0o640))
	require.NoError(t, os.Chown(p, nobody, nogroup))
	require.NoError(t, os.Chmod(p, 0o640))

	_, err := atomicfile.Write(p, []byte("new\n"), atomicfile.Options{Backup: ".bak"})
	require.NoError(t, err)
	require.Equal(t, "new\n", read(t, p))
	require.Equal(t, fs.FileMode(0o640), mode(t, p))
	uid, gid := owner(t, p)
	require.Equal(t, [2]uint32{nobody, nogroup}, [2]uint32{uid, gid})
	require.Equal(t, fs.FileMode(0o640), mode(t, p+".bak"))
	uid, gid = owner(t, p+".bak")
	require.Equal(t, [2]uint32{nobody, nogroup}, [2]uint32{uid, gid})
	require.Equal(t, "old\n", read(t, p+".bak"))
}

func TestBadPaths(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, tc := range []struct {
		path string
		want error
	}{
		{"", atomicfile.ErrEmptyPath},
		{dir, atomicfile.ErrDirectory},
		{filepath.Join(dir, "new") + "/", atomicfile.ErrDirectory},
		{fifo, atomicfile.ErrNotRegular},
	} {
		_, err := atomicfile.Write(tc.path, []byte("x"), atomicfile.Options{})
		require.ErrorIs(t, err, tc.want, "%q", tc.path)
		require.ErrorIs(t, atomicfile.CheckPath(tc.path), tc.want, "%q", tc.path)
	}
	_, err := atomicfile.ReadFile(fifo)
	require.ErrorIs(t, err, atomicfile.ErrNotRegular)
	_, err = atomicfile.ReadFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// TestSkipUnchangedFixesMode: unchanged content is still rewritten when
// the mode must change (a private file found 0644).
func TestSkipUnchangedFixesMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "id_ed25519")
	require.NoError(t, os.WriteFile(p, []byte("key"), 0o644))
	require.NoError(t, os.Chmod(p, 0o644))
	changed, err := atomicfile.Write(p, []byte("key"), atomicfile.Options{Private: true, SkipUnchanged: true})
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, fs.FileMode(0o600), mode(t, p))
	changed, err = atomicfile.Write(p, []byte("key"), atomicfile.Options{Private: true, SkipUnchanged: true})
	require.NoError(t, err)
	require.False(t, changed)
}
