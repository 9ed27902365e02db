package rolefiles_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/rolefiles"
)

func roleFilesPresent(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, f := range []string{rolefiles.MN, rolefiles.SN} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			out = append(out, f)
		}
	}
	return out
}

func TestSyncRoleFilesFollowsTheMasterRecord(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *pool.Store) {
		ctx := context.Background()
		storetest.Seed(t, s, 0)
		roots := map[string]string{}
		for _, m := range []string{"mn1", "sn1", "sn2", "outsider"} {
			roots[m] = t.TempDir()
		}
		sync := func(want map[string][]string) {
			t.Helper()
			for m, root := range roots {
				_, err := rolefiles.Sync(ctx, s, m, root)
				require.NoError(t, err)
				require.Equal(t, want[m], roleFilesPresent(t, root), m)
			}
		}
		sync(map[string][]string{"mn1": {rolefiles.MN}, "sn1": {rolefiles.SN}, "sn2": {rolefiles.SN}})
		rf, err := rolefiles.Sync(ctx, s, "sn1", roots["sn1"])
		require.NoError(t, err)
		require.Equal(t, rolefiles.Report{Role: pool.RoleSN, Epoch: 1}, rf, "a second sync changes nothing")

		// The master record moves to sn1 (as makemn does it: a conditional
		// update of the record): the files follow.
		require.NoError(t, s.Tx(ctx, func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE master SET member = 'sn1', epoch = epoch + 1 WHERE id = 1 AND epoch = 1")
			return err
		}))
		sync(map[string][]string{"mn1": {rolefiles.SN}, "sn1": {rolefiles.MN}, "sn2": {rolefiles.SN}})
		rf, err = rolefiles.Sync(ctx, s, "sn1", roots["sn1"])
		require.NoError(t, err)
		require.Equal(t, rolefiles.Report{Role: pool.RoleMN, Epoch: 2}, rf)

		// A member that leaves loses both files.
		require.NoError(t, s.RemoveMember(ctx, "sn2"))
		sync(map[string][]string{"mn1": {rolefiles.SN}, "sn1": {rolefiles.MN}})

		_, err = rolefiles.Sync(ctx, s, "bad name", roots["mn1"])
		require.ErrorIs(t, err, pool.ErrInvalid)
	})
}

func TestWriteRoleFiles(t *testing.T) {
	root := t.TempDir()
	changed, err := rolefiles.Write(root, pool.RoleMN)
	require.NoError(t, err)
	require.True(t, changed)
	info, err := os.Stat(filepath.Join(root, rolefiles.MN))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), info.Mode().Perm())
	changed, err = rolefiles.Write(root, pool.RoleMN)
	require.NoError(t, err)
	require.False(t, changed)
	changed, err = rolefiles.Write(root, pool.RoleNone)
	require.NoError(t, err)
	require.True(t, changed)
	require.Empty(t, roleFilesPresent(t, root))
	_, err = rolefiles.Write("", pool.RoleSN)
	require.ErrorIs(t, err, pool.ErrInvalid)
}
