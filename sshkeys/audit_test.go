package sshkeys

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type findingRow struct {
	Kind FindingKind
	Path string
	Line int
}

func rows(fs []Finding) []findingRow {
	out := []findingRow{}
	for _, f := range fs {
		out = append(out, findingRow{f.Kind, f.Path, f.Line})
	}
	return out
}

// writeTree makes home/.ssh/authorized_keys with the given modes.
func writeTree(t *testing.T, content string, homeMode, sshMode, fileMode os.FileMode) (home, sshDir, file string) {
	t.Helper()
	home = filepath.Join(t.TempDir(), "root")
	sshDir = filepath.Join(home, ".ssh")
	file = filepath.Join(sshDir, "authorized_keys")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for p, m := range map[string]os.FileMode{home: homeMode, sshDir: sshMode, file: fileMode} {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	return home, sshDir, file
}

func TestAuditCraftedBadMemberFile(t *testing.T) {
	k := fixedKeys(t)
	content := strings.Join([]string{
		"# hand-made",                                        // 1
		authLine(k["compute"], "xcat-common"),                // 2 compute key on a member
		"ssh-ed25519 AAAA-not-base64 broken",                 // 3 does not parse
		BeginMarker,                                          // 4 never closed
		`no-pty ` + authLine(k["compute-previous"], "old"),   // 5 previous compute key
		authLine(k["pool-previous"], "mnpool-pool-previous"), // 6 only the previous pool key
		"from=\"10.0.0.1\"",                                  // 7 options without a key
	}, "\n") + "\n"
	home, sshDir, file := writeTree(t, content, 0o775, 0o777, 0o666)
	opts := AuditOptions{Target: TargetMember, Keys: fixedPublicKeys(t, true), Owner: os.Getuid() + 1}
	got, err := Audit(context.Background(), opts, file)
	if err != nil {
		t.Fatal(err)
	}
	want := []findingRow{
		{FindingOwner, home, 0},
		{FindingDirMode, home, 0},
		{FindingOwner, sshDir, 0},
		{FindingDirMode, sshDir, 0},
		{FindingFileMode, file, 0},
		{FindingOwner, file, 0},
		{FindingMissingPoolKey, file, 0},
		{FindingComputeKeyOnMember, file, 2},
		{FindingBadLine, file, 3},
		{FindingBadBlock, file, 4},
		{FindingComputeKeyOnMember, file, 5},
		{FindingBadLine, file, 7},
	}
	if diff := cmp.Diff(want, rows(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	for _, f := range got {
		s := f.String()
		if f.Message == "" || !strings.HasPrefix(s, f.Path) || !strings.Contains(s, f.Kind.String()) {
			t.Errorf("finding without a clear message: %q", s)
		}
	}
	msgs := map[FindingKind]string{}
	for _, f := range got {
		msgs[f.Kind] = f.Message
	}
	for kind, want := range map[FindingKind]string{
		FindingFileMode:       "mode 0666, want 0600 or 0644",
		FindingDirMode:        "writable by group or others",
		FindingMissingPoolKey: "SHA256:",
		FindingBadBlock:       "never closed",
	} {
		if !strings.Contains(msgs[kind], want) {
			t.Errorf("%s message %q does not say %q", kind, msgs[kind], want)
		}
	}
}

func TestAuditGoodFilesAreClean(t *testing.T) {
	ctx := context.Background()
	for _, target := range []Target{TargetMember, TargetNode} {
		t.Run(target.String(), func(t *testing.T) {
			keys := fixedPublicKeys(t, true)
			out, _, err := RenderAuthorizedKeys([]byte(handLines(t)), AuthorizedKeysSpec{Target: target, Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			// handLines has one unparsable line (6); drop it for a clean file.
			clean := strings.Replace(string(out), "ssh-ed25519 this-is-not-base64 broken\n", "", 1)
			_, _, file := writeTree(t, clean, 0o755, 0o700, 0o644)
			got, err := Audit(ctx, AuditOptions{Target: target, Keys: keys, Owner: os.Getuid()}, file)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]findingRow{}, rows(got)); diff != "" {
				t.Errorf("findings on a rendered file (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuditNodeAndMissingFiles(t *testing.T) {
	ctx := context.Background()
	k := fixedKeys(t)
	keys := fixedPublicKeys(t, false)
	_, _, file := writeTree(t, authLine(k["pool"], "p")+"\n", 0o755, 0o700, 0o600)
	missing := filepath.Join(filepath.Dir(file), "nope")
	got, err := Audit(ctx, AuditOptions{Target: TargetNode, Keys: keys, Owner: os.Getuid()}, file, missing)
	if err != nil {
		t.Fatal(err)
	}
	want := []findingRow{
		{FindingMissingComputeKey, file, 0},
		{FindingUnreadable, missing, 0},
	}
	if diff := cmp.Diff(want, rows(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if _, err := Audit(ctx, AuditOptions{Keys: keys}, file); !errors.Is(err, ErrInvalidTarget) {
		t.Errorf("no target: %v, want ErrInvalidTarget", err)
	}
	if _, err := Audit(ctx, AuditOptions{Target: TargetNode}, file); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("no keys: %v, want ErrNotInitialized", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Audit(cctx, AuditOptions{Target: TargetNode, Keys: keys}, file); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestAuditKeyDir(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := Init(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	uid := os.Getuid()
	got, err := AuditKeyDir(ctx, dir, uid)
	if err != nil || len(got) != 0 {
		t.Fatalf("fresh key dir: findings %v, err %v", got, err)
	}
	os.Chmod(dir, 0o777)
	os.Chmod(KeyPath(dir, KindCompute), 0o640)
	pool, _ := os.ReadFile(KeyPath(dir, KindPool))
	os.WriteFile(KeyPath(dir, KindCompute)+".old", pool, 0o600)
	got, err = AuditKeyDir(ctx, dir, uid)
	if err != nil {
		t.Fatal(err)
	}
	want := []findingRow{
		{FindingDirMode, dir, 0},
		{FindingSameKey, dir, 0},
		{FindingFileMode, KeyPath(dir, KindCompute), 0},
	}
	if diff := cmp.Diff(want, rows(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	os.Remove(KeyPath(dir, KindCompute))
	got, _ = AuditKeyDir(ctx, dir, uid)
	if !containsRow(rows(got), findingRow{FindingUnreadable, KeyPath(dir, KindCompute), 0}) {
		t.Errorf("missing compute key not reported: %v", got)
	}
}

func containsRow(rs []findingRow, r findingRow) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}
