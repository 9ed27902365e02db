package sshkeys

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/internal/golden"
)

// handLines is an existing root authorized_keys with lines an administrator
// wrote, one of them the compute key (as a pre-mnpool xCAT setup has it).
func handLines(t testing.TB) string {
	k := fixedKeys(t)
	return strings.Join([]string{
		"# root's keys, maintained by hand",
		authLine(k["admin"], "alice@laptop"),
		`from="10.0.0.0/8",no-pty ` + authLine(k["admin"], "alice-restricted"),
		authLine(k["compute"], "old-xcat-common-key"),
		"",
		"ssh-ed25519 this-is-not-base64 broken",
	}, "\n") + "\n"
}

func TestRenderAuthorizedKeysGolden(t *testing.T) {
	k := fixedKeys(t)
	tests := map[string]struct {
		existing string
		spec     AuthorizedKeysSpec
	}{
		"member_new": {"", AuthorizedKeysSpec{Target: TargetMember, Name: "sn1", Keys: fixedPublicKeys(t, false)}},
		"member_hand_lines": {handLines(t), AuthorizedKeysSpec{Target: TargetMember, Name: "mn",
			Keys: fixedPublicKeys(t, false), Extra: []string{authLine(k["admin"], "alice@laptop"), "  " + authLine(k["host-mn"], "ops") + " "}}},
		"member_rotating": {"", AuthorizedKeysSpec{Target: TargetMember, Name: "sn1", Keys: fixedPublicKeys(t, true)}},
		"node_new":        {"", AuthorizedKeysSpec{Target: TargetNode, Name: "cn001", Keys: fixedPublicKeys(t, false)}},
		"node_rotating":   {handLines(t), AuthorizedKeysSpec{Target: TargetNode, Keys: fixedPublicKeys(t, true)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, _, err := RenderAuthorizedKeys([]byte(tc.existing), tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "authorized_keys."+name), got)
			again, _, err := RenderAuthorizedKeys(got, tc.spec)
			if err != nil || string(again) != string(got) {
				t.Errorf("re-rendering the output changed it (err %v)", err)
			}
		})
	}
}

func TestMemberFileNeverAcceptsComputeKey(t *testing.T) {
	k := fixedKeys(t)
	keys := fixedPublicKeys(t, true)
	existing := handLines(t) + `command="/bin/true" ` + authLine(k["compute-previous"], "hidden") + "\n"
	out, removed, err := RenderAuthorizedKeys([]byte(existing), AuthorizedKeysSpec{Target: TargetMember, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range keys.Compute {
		mustContainKey(t, out, c, false, "member file: compute key "+ssh.FingerprintSHA256(c))
	}
	for _, p := range keys.Pool {
		mustContainKey(t, out, p, true, "member file: pool key")
	}
	var gotLines []int
	for _, f := range removed {
		if f.Kind != FindingComputeKeyOnMember {
			t.Errorf("removed finding of kind %s", f.Kind)
		}
		gotLines = append(gotLines, f.Line)
	}
	if diff := cmp.Diff([]int{4, 7}, gotLines); diff != "" {
		t.Errorf("removed lines (-want +got):\n%s", diff)
	}
	// The node file, from the same input, keeps both.
	node, _, err := RenderAuthorizedKeys([]byte(existing), AuthorizedKeysSpec{Target: TargetNode, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range append(keys.Pool, keys.Compute...) {
		mustContainKey(t, node, key, true, "node file")
	}
	// The compute key cannot come in as an extra either.
	_, _, err = RenderAuthorizedKeys(nil, AuthorizedKeysSpec{Target: TargetMember, Keys: keys,
		Extra: []string{"restrict " + authLine(k["compute"], "sneaky")}})
	if !errors.Is(err, ErrComputeKeyOnMember) {
		t.Fatalf("compute key as extra: %v, want ErrComputeKeyOnMember", err)
	}
}

func TestHandLinesSurviveRerendering(t *testing.T) {
	k := fixedKeys(t)
	before := "# top\n" + authLine(k["admin"], "alice") + "\n"
	after := "\n# bottom, no final newline\r\n" + authLine(k["host-mn"], "bob") + "  "
	spec := AuthorizedKeysSpec{Target: TargetNode, Name: "cn1", Keys: fixedPublicKeys(t, true)}
	first, _, err := RenderAuthorizedKeys([]byte(before), spec)
	if err != nil {
		t.Fatal(err)
	}
	// The admin adds lines after the block too; then the keys change.
	edited := string(first) + after
	spec.Keys = fixedPublicKeys(t, false)
	second, _, err := RenderAuthorizedKeys([]byte(edited), spec)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := ReadAuthorizedKeys(second)
	if err != nil {
		t.Fatal(err)
	}
	var hand, managed []string
	for _, l := range lines {
		if l.Managed {
			managed = append(managed, l.Text)
		} else {
			hand = append(hand, l.Text)
		}
	}
	wantHand := append(strings.Split(strings.TrimSuffix(before, "\n"), "\n"), strings.Split(after, "\n")...)
	if diff := cmp.Diff(wantHand, hand); diff != "" {
		t.Errorf("hand-added lines (-want +got):\n%s", diff)
	}
	wantManaged := []string{BeginMarker, "# Rendered by mnpool for node cn1; lines inside this block are replaced on every render.",
		authLine(k["pool"], "mnpool-pool"), authLine(k["compute"], "mnpool-compute"), EndMarker}
	if diff := cmp.Diff(wantManaged, managed); diff != "" {
		t.Errorf("managed block (-want +got):\n%s", diff)
	}
}

func TestRenderAuthorizedKeysRefusesBadInput(t *testing.T) {
	k := fixedKeys(t)
	good := fixedPublicKeys(t, false)
	tests := map[string]struct {
		existing string
		spec     AuthorizedKeysSpec
		want     error
	}{
		"no target":         {"", AuthorizedKeysSpec{Keys: good}, ErrInvalidTarget},
		"name with space":   {"", AuthorizedKeysSpec{Target: TargetNode, Name: "cn 1", Keys: good}, ErrInvalidName},
		"name with newline": {"", AuthorizedKeysSpec{Target: TargetNode, Name: "cn1\nssh-rsa", Keys: good}, ErrInvalidName},
		"no keys":           {"", AuthorizedKeysSpec{Target: TargetMember}, ErrNotInitialized},
		"same key":          {"", AuthorizedKeysSpec{Target: TargetNode, Keys: PublicKeys{Pool: good.Pool, Compute: good.Pool}}, ErrSameKey},
		"extra garbage":     {"", AuthorizedKeysSpec{Target: TargetMember, Keys: good, Extra: []string{"ssh-ed25519 AAAA"}}, ErrInvalidKey},
		"extra two lines":   {"", AuthorizedKeysSpec{Target: TargetMember, Keys: good, Extra: []string{authLine(k["admin"], "a") + "\n" + authLine(k["compute"], "b")}}, ErrInvalidKey},
		"extra comment":     {"", AuthorizedKeysSpec{Target: TargetMember, Keys: good, Extra: []string{"# hello"}}, ErrInvalidKey},
		"unclosed block":    {BeginMarker + "\nx\n", AuthorizedKeysSpec{Target: TargetMember, Keys: good}, ErrBadBlock},
		"end without begin": {EndMarker + "\n", AuthorizedKeysSpec{Target: TargetMember, Keys: good}, ErrBadBlock},
		"two blocks":        {BeginMarker + "\n" + EndMarker + "\n" + BeginMarker + "\n" + EndMarker + "\n", AuthorizedKeysSpec{Target: TargetMember, Keys: good}, ErrBadBlock},
		"nested begin":      {BeginMarker + "\n" + BeginMarker + "\n" + EndMarker + "\n", AuthorizedKeysSpec{Target: TargetMember, Keys: good}, ErrBadBlock},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, _, err := RenderAuthorizedKeys([]byte(tc.existing), tc.spec)
			if !errors.Is(err, tc.want) || out != nil {
				t.Fatalf("err = %v, output %d bytes; want %v and no output", err, len(out), tc.want)
			}
		})
	}
}

func TestReadAuthorizedKeys(t *testing.T) {
	k := fixedKeys(t)
	data := strings.Join([]string{
		"# c",
		"   ",
		`no-agent-forwarding,from="a,b" ` + authLine(k["admin"], "alice at home"),
		BeginMarker,
		authLine(k["pool"], "p"),
		"ssh-rsa AAAAB3NzaC1yc2E= short",
		EndMarker,
		"restrict",
	}, "\n")
	lines, err := ReadAuthorizedKeys([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Num     int
		Kind    LineKind
		Managed bool
		Options []string
		Comment string
		HasErr  bool
	}
	var got []row
	for _, l := range lines {
		got = append(got, row{l.Num, l.Kind, l.Managed, l.Options, l.Comment, l.Err != nil})
	}
	want := []row{
		{1, LineComment, false, nil, "", false},
		{2, LineBlank, false, nil, "", false},
		{3, LineKey, false, []string{"no-agent-forwarding", `from="a,b"`}, "alice at home", false},
		{4, LineBegin, true, nil, "", false},
		{5, LineKey, true, nil, "p", false},
		{6, LineInvalid, true, nil, "", true},
		{7, LineEnd, true, nil, "", false},
		{8, LineInvalid, false, nil, "", true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if !keyEqual(lines[2].Key, k["admin"]) {
		t.Error("line 3 key is not the admin key")
	}
	var be *BlockError
	if _, err := ReadAuthorizedKeys([]byte("x\n" + EndMarker)); !errors.As(err, &be) || be.Line != 2 {
		t.Errorf("END without BEGIN: err %v, want a BlockError on line 2", err)
	}
}

func TestUpdateAuthorizedKeysFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "root", ".ssh", "authorized_keys")
	spec := AuthorizedKeysSpec{Target: TargetMember, Keys: fixedPublicKeys(t, false)}
	changed, _, err := UpdateAuthorizedKeysFile(ctx, path, spec)
	if err != nil || !changed {
		t.Fatalf("first update: changed %v, err %v", changed, err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("new file mode %04o, want 0600", m)
	}
	if m := mode(t, filepath.Dir(path)); m != 0o700 {
		t.Errorf("new .ssh mode %04o, want 0700", m)
	}
	if changed, _, err := UpdateAuthorizedKeysFile(ctx, path, spec); err != nil || changed {
		t.Fatalf("second update: changed %v, err %v; want no write", changed, err)
	}
	os.Chmod(path, 0o664)
	if changed, _, _ := UpdateAuthorizedKeysFile(ctx, path, spec); !changed || mode(t, path) != 0o600 {
		t.Errorf("group-writable file not fixed: changed %v, mode %04o", changed, mode(t, path))
	}
	os.Chmod(path, 0o644)
	if changed, _, _ := UpdateAuthorizedKeysFile(ctx, path, spec); changed || mode(t, path) != 0o644 {
		t.Errorf("0644 file rewritten: changed %v, mode %04o", changed, mode(t, path))
	}
	os.WriteFile(path, []byte(BeginMarker+"\n"), 0o600)
	if _, _, err := UpdateAuthorizedKeysFile(ctx, path, spec); !errors.Is(err, ErrBadBlock) {
		t.Fatalf("broken block: %v, want ErrBadBlock", err)
	}
	if got, _ := os.ReadFile(path); string(got) != BeginMarker+"\n" {
		t.Error("a file with a broken block was rewritten")
	}
	os.WriteFile(path, []byte(authLine(fixedKeys(t)["compute"], "x")+"\n"), 0o600)
	_, removed, err := UpdateAuthorizedKeysFile(ctx, path, spec)
	if err != nil || len(removed) != 1 || removed[0].Path != path || removed[0].Line != 1 {
		t.Fatalf("removed = %+v, err %v; want one finding at %s:1", removed, err, path)
	}
}

// BenchmarkRenderAuthorizedKeys renders a member's file that holds 1,000
// hand-added keys, the case where every line must be checked for the
// compute key.
func BenchmarkRenderAuthorizedKeys(b *testing.B) {
	k := fixedKeys(b)
	var sb strings.Builder
	for i := range 1000 {
		sb.WriteString(authLine(k["admin"], "user"+strconv.Itoa(i)) + "\n")
	}
	existing := []byte(sb.String())
	spec := AuthorizedKeysSpec{Target: TargetMember, Name: "sn1", Keys: fixedPublicKeys(b, true)}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := RenderAuthorizedKeys(existing, spec); err != nil {
			b.Fatal(err)
		}
	}
}
